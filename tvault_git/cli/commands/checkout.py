"""``git tvault checkout REF [DIR]``: a worktree holding the exact code an entry was trained with. Torch-free."""

from __future__ import annotations

import click

from tvault_git.cli.app import repo_from_ctx


@click.command("checkout")
@click.argument("ref")
@click.argument("path", metavar="[DIR]", required=False)
@click.pass_context
def checkout_cmd(ctx: click.Context, ref: str, path: str | None) -> None:
    """Create a linked worktree (default ../REPO-NAME-vN) at REF's training commit with its uncommitted changes applied."""
    from tvault_git.api import checkout

    c = checkout.checkout(repo_from_ctx(ctx), ref, path)
    how = " + the uncommitted changes it was trained with" if c.patched else ""
    src = f", fetched from {c.fetched_from}" if c.fetched_from else ""
    click.echo(f"{c.label}: code in {c.path} (commit {c.commit[:10]}{how}{src})")
    if c.untracked:
        click.echo(
            f"not recorded (untracked at training time): {', '.join(c.untracked[:10])}{' ...' if len(c.untracked) > 10 else ''}"
        )
    click.echo(
        f"load its weights there: cd {c.path} && python -c \"import tvault_git as tv; sd = tv.load('{c.entry}')\""
    )
    click.echo(f"   or into your model:  tv.load_into(model, '{c.entry}')")
