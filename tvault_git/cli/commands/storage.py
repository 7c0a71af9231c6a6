"""``git tvault gc``: reclaim the space killed writers left, and apply a retention policy.

Presentation only: registry/retention.py decides, registry/remove.py removes (as ``git tvault rm``),
storage/reclaim.py frees the packs and measures what it freed.
"""

from __future__ import annotations

import click

from tvault_git.cli.app import repo_from_ctx
from tvault_git.storage.reclaim import MIN_AGE_S, entry_objects, reclaim
from tvault_git.textfmt import fmt_value, human_bytes, printable


@click.command("gc")
@click.option("--dry-run", "-n", is_flag=True, help="Only say what would be removed (and the bytes it would free).")
@click.option(
    "--wait", default=60.0, show_default=True, metavar="SECONDS", help="How long to wait for running writers."
)
@click.option(
    "--min-age",
    default=MIN_AGE_S,
    show_default=True,
    metavar="SECONDS",
    help="Spare packs modified more recently (0: reclaim now, when no multi-process log is under way).",
)
@click.option(
    "--keep-best", type=int, metavar="N", help="Retention: keep the N best versions of each model --by METRIC."
)
@click.option(
    "--by", "metric", metavar="METRIC", help="What --keep-best ranks by: result, or a metric (loss-like: lower)."
)
@click.option("--keep-last", type=int, metavar="K", help="Retention: keep the K latest versions of each model.")
@click.option("--name", metavar="NAME", help="Apply the retention policy to this model only (default: every model).")
@click.option("--yes", "-y", is_flag=True, help="Remove without asking.")
@click.pass_context
def gc_cmd(
    ctx: click.Context,
    dry_run: bool,
    wait: float,
    min_age: float,
    keep_best: int | None,
    metric: str | None,
    keep_last: int | None,
    name: str | None,
    yes: bool,
) -> None:
    """Remove weight packs nothing references and temp files of killed writers; with --keep-best
    and/or --keep-last, first remove the versions the policy does not keep (aliased versions are
    always kept; unnamed entries are never touched), then free their space."""
    repo = repo_from_ctx(ctx)
    if keep_best is None and keep_last is None and metric is None and name is None:
        r = reclaim(repo, dry_run=dry_run, wait=wait, min_age=min_age)
        verb = "would free" if dry_run else "freed"
        click.echo(
            f"{verb} {human_bytes(r.bytes)}: {r.packs} unreferenced weight pack(s), "
            f"{r.temp_files} temp file(s), {r.keep_files} stray .keep file(s)"
        )
        return
    from tvault_git.registry import remove, retention

    decisions = retention.decide(repo, keep_best, metric, keep_last, name)
    for d in decisions:
        for v, why in d.keep:
            click.echo(f"keep    {printable(d.name, newlines=False)}@{v.number}  {v.entry.short}  ({why})")
        for v in d.drop:
            x = retention.value(v, metric) if metric else None
            shown = f"  {metric}={fmt_value(x)}" if x is not None else ""
            click.echo(
                f"{'would remove' if dry_run else 'remove'}  {printable(d.name, newlines=False)}@{v.number}  {v.entry.short}{shown}"
            )
    ids = [v.entry.id for d in decisions for v in d.drop]
    released = frozenset(entry_objects(repo, ids))
    if dry_run:
        r = reclaim(repo, dry_run=True, wait=wait, min_age=min_age, released=released, without=ids)
        click.echo(f"would remove {len(ids)} version(s) and free {human_bytes(r.bytes)} of weights")
        return
    if not ids:
        click.echo("nothing to remove: the policy keeps every version")
        return
    if not yes:
        click.confirm(f"remove {len(ids)} version(s)?", abort=True, err=True)
    remove.remove_ids(repo, ids)
    r = reclaim(repo, wait=wait, min_age=min_age, released=released)
    click.echo(
        f"removed {len(ids)} version(s); freed {human_bytes(r.bytes)} (measured in the pack directory): "
        f"{r.packs} weight pack(s) deleted, {r.shrunk} rewritten without them; "
        "'git gc --prune=now' drops their small loose objects, 'git tvault push --prune' shares the removal"
    )
