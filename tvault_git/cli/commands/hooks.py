"""``git tvault install`` / ``uninstall``: hooks and git config for a repository. Torch-free."""

from __future__ import annotations

import click

from tvault_git import hooks
from tvault_git.cli.app import repo_from_ctx


@click.command("install")
@click.pass_context
def install_cmd(ctx: click.Context) -> None:
    """Install the post-commit/post-rewrite hooks (chaining yours) and set notes.displayRef/rewriteRef."""
    for line in hooks.install(repo_from_ctx(ctx)):
        click.echo(line)


@click.command("uninstall")
@click.pass_context
def uninstall_cmd(ctx: click.Context) -> None:
    """Remove what 'git tvault install' set up, restoring your own hooks."""
    for line in hooks.uninstall(repo_from_ctx(ctx)):
        click.echo(line)
