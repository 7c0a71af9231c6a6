"""``git tvault gc``: reclaim the space killed writers left (presentation only; see storage/reclaim.py)."""

from __future__ import annotations

import click

from tvault_git.cli.app import repo_from_ctx
from tvault_git.storage.reclaim import MIN_AGE_S, reclaim
from tvault_git.textfmt import human_bytes


@click.command("gc")
@click.option("--dry-run", "-n", is_flag=True, help="Only say what would be removed.")
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
@click.pass_context
def gc_cmd(ctx: click.Context, dry_run: bool, wait: float, min_age: float) -> None:
    """Remove weight packs nothing references and temp files of killed writers."""
    r = reclaim(repo_from_ctx(ctx), dry_run=dry_run, wait=wait, min_age=min_age)
    verb = "would free" if dry_run else "freed"
    click.echo(
        f"{verb} {human_bytes(r.bytes)}: {r.packs} unreferenced weight pack(s), "
        f"{r.temp_files} temp file(s), {r.keep_files} stray .keep file(s)"
    )
