"""``git tvault fsck`` and ``git tvault rm``: find damaged entries and take them out. Torch-free."""

from __future__ import annotations

import json

import click
import pygit2

from tvault_git.cli.app import repo_from_ctx
from tvault_git.errors import CorruptEntry, InvalidInput, RefNotFound, TvaultError, UnsupportedFormat
from tvault_git.textfmt import printable


def warn_damaged(repo: pygit2.Repository) -> None:
    """One stderr line when listings skipped entries that cannot be read (so nothing vanishes silently)."""
    from tvault_git.registry import cache, notes

    try:
        bad = cache.damaged(repo)
    except TvaultError:
        return
    skipped = notes.skipped()
    if not bad and not skipped:
        return
    parts = [f"{eid[:10]} ({printable(why, newlines=False)[:200]})" for eid, _, _, why in bad[:3]]
    parts += [f"note of {c[:10]} ({why})" for c, why in list(skipped.items())[:2]]
    more = len(bad) + len(skipped) - len(parts)
    n = len(bad) + len(skipped)
    click.echo(
        f"tvault: warning: skipped {n} damaged entr{'y' if n == 1 else 'ies'}: {'; '.join(parts)}"
        f"{f' and {more} more' if more > 0 else ''}; 'git tvault fsck' lists them, 'git tvault rm ID' removes one",
        err=True,
    )


@click.command("fsck")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--quick", is_flag=True, help="Manifests only; skip the tensor tables and chunk sizes.")
@click.pass_context
def fsck_cmd(ctx: click.Context, as_json: bool, quick: bool) -> None:
    """List every entry that cannot be read or verified here, and why (exit 4 if any is damaged)."""
    from tvault_git.registry import check

    n, problems = check.check(repo_from_ctx(ctx), tables=not quick)
    if as_json:
        click.echo(
            json.dumps([{"id": p.entry, "ref": p.ref, "kind": p.kind, "why": p.why} for p in problems], indent=1)
        )
    else:
        for p in problems:
            click.echo(f"{p.kind:<11} {p.entry[:10]}  {p.ref}  {printable(p.why, newlines=False)}")
    bad = [p for p in problems if p.kind in ("damaged", "note")]
    newer = [p for p in problems if p.kind == "unsupported"]
    if bad:
        raise CorruptEntry(f"{len(bad)} of {n} entries are damaged; remove one with 'git tvault rm ID'")
    if newer:
        raise UnsupportedFormat(
            f"{len(newer)} of {n} entries use a newer format; upgrade tvault-git (pip install -U tvault-git)"
        )
    if not as_json:
        missing = sum(p.kind == "missing" for p in problems)
        lost = sum(p.kind == "orphaned" for p in problems)
        click.echo(
            f"{n} entries checked: ok"
            + (f" ({missing} not fetched here)" if missing else "")
            + (f"; {lost} orphaned ('git tvault reattach' re-attaches them)" if lost else ""),
            err=True,
        )


@click.command("rm")
@click.argument("refs", metavar="REF...", nargs=-1, required=True)
@click.option("--yes", "-y", is_flag=True, help="Remove without asking (needed when stdin is not a terminal).")
@click.pass_context
def rm_cmd(ctx: click.Context, refs: tuple[str, ...], yes: bool) -> None:
    """Remove entries from the index, with their aliases (each keeps its slot: other indexes and
    versions do not shift).

    The removal is a note line. It stays in this clone until 'git tvault push --prune' carries it
    to the remote (a plain push never deletes anything for teammates). 'git tvault gc' then frees
    the space of weights no other entry uses.
    """
    from tvault_git.registry import remove

    repo = repo_from_ctx(ctx)
    found = remove.resolve_all(repo, list(refs))  # every REF resolves before anything is removed
    if not yes:
        if not click.get_text_stream("stdin").isatty():
            raise InvalidInput(
                f"refusing to remove {len(found)} entr{'y' if len(found) == 1 else 'ies'} without asking: pass --yes"
            )
        for e in found:
            click.echo(f"  {e.short}  {printable(e.name or '-', newlines=False)}", err=True)
        click.confirm(f"remove {len(found)} entr{'y' if len(found) == 1 else 'ies'}?", abort=True, err=True)
    done = remove.remove_ids(repo, [e.id for e in found])
    for e in found:
        if e.id not in done:
            click.echo(f"{e.short} is not listed in the index (already removed?)", err=True)
        elif not done[e.id]:
            click.echo(f"removed {e.short}, an orphan no note listed (its ref is deleted)")
        else:
            n = len(done[e.id])
            click.echo(f"removed {e.short} from {n} commit{'s' * (n != 1)}")
    if not done:
        raise RefNotFound("nothing was removed: every entry named is already removed")
    click.echo("'git tvault gc' frees their space; 'git tvault push --prune' shares the removal")
