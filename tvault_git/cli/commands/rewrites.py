"""``git tvault orphans`` and ``git tvault reattach``: entries a rewrite without hooks left behind.

Presentation only (registry/orphans.py finds them, hooks/rewrites.py matches and moves them).
A separate listing rather than ``log --orphaned``: ``log`` rows are index rows (``COMMIT:N``),
and an entry whose note was pruned has no index; orphans need other columns (why, where it was).
"""

from __future__ import annotations

import json

import click

from tvault_git.cli.app import repo_from_ctx
from tvault_git.textfmt import printable


@click.command("orphans")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def orphans_cmd(ctx: click.Context, as_json: bool) -> None:
    """List entries whose training commit is gone or on no branch, or that no note lists any more."""
    from tvault_git.registry import orphans

    found = orphans.find(repo_from_ctx(ctx), reachability=True)
    if as_json:
        rows = [
            {"id": o.entry, "commit": o.commit or None, "kind": o.kind, "name": o.line.name if o.line else None}
            for o in found
        ]
        click.echo(json.dumps(rows, indent=1))
        return
    for o in found:
        name = o.line.name if o.line and o.line.name else "-"
        click.echo(f"{o.kind:<11} {o.entry[:10]}  {printable(name, newlines=False)}  {o.why()}")
    if found:
        click.echo(f"{len(found)} orphaned; 'git tvault reattach' re-attaches them to the rewritten commits", err=True)
    else:
        click.echo("no orphaned entries", err=True)


@click.command("reattach")
@click.option("--dry-run", "-n", is_flag=True, help="Only say what would move where.")
@click.pass_context
def reattach_cmd(ctx: click.Context, dry_run: bool) -> None:
    """List orphaned entries on the commits that replaced theirs (same tree; else author, date and
    message or patch; else the reflog) and lists those it cannot match."""
    from tvault_git.hooks import rewrites

    repo = repo_from_ctx(ctx)
    p = rewrites.plan(repo)
    for o, new, how in p.matched:
        was = o.commit[:10] if o.commit else "no note"
        click.echo(f"{'would move' if dry_run else 'moved'} {o.entry[:10]}  {was} -> {new[:10]}  (by {how})")
    for o, why in p.unmatched:
        click.echo(f"unmatched  {o.entry[:10]}  {o.why()}: {why}")
    if not dry_run and p.matched:
        rewrites.apply(repo, p)
    if not p.matched and not p.unmatched:
        click.echo("no orphaned entries", err=True)
    elif p.unmatched:
        click.echo(
            f"{len(p.unmatched)} could not be matched; they stay loadable by id (git tvault show ID, tvault.load(ID))",
            err=True,
        )
