"""``git tvault install`` / ``uninstall``: hooks and git config for a repository. Torch-free."""

from __future__ import annotations

import click

from . import hooks
from .cli import _repo, cli


@cli.command("install")
@click.pass_context
def install_cmd(ctx: click.Context) -> None:
    """Install the post-commit/post-rewrite hooks (chaining yours) and set notes.displayRef/rewriteRef."""
    for line in hooks.install(_repo(ctx)):
        click.echo(line)


@cli.command("uninstall")
@click.pass_context
def uninstall_cmd(ctx: click.Context) -> None:
    """Remove what 'git tvault install' set up, restoring your own hooks."""
    for line in hooks.uninstall(_repo(ctx)):
        click.echo(line)
