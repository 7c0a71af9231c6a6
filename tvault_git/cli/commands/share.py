"""``git tvault push / pull / fetch [REMOTE] [REF]``: share a registry over git remotes. Torch-free."""

from __future__ import annotations

import click

from tvault_git.cli.app import repo_from_ctx
from tvault_git.share import sync
from tvault_git.textfmt import printable


def _warn(t: sync.Transfer) -> None:
    for w in t.warnings:
        click.echo(f"tvault: warning: {printable(w, newlines=False)}", err=True)


def _summary(t: sync.Transfer, what: str) -> str:
    _warn(t)
    n = len(t.new_entries)
    parts = [f"{n} new entr{'y' if n == 1 else 'ies'}"]
    if t.notes_merged:
        parts.append("index merged")
    if t.aliases_merged:
        parts.append("aliases merged")
    return f"{what} {t.remote}: " + ", ".join(parts)


@click.command("fetch")
@click.argument("remote", required=False)
@click.argument("ref", required=False)
@click.option("-q", "--quiet", is_flag=True, help="No progress.")
@click.pass_context
def fetch_cmd(ctx: click.Context, remote: str | None, ref: str | None, quiet: bool) -> None:
    """Download the remote's entries and index (into refs/tvault-remote/REMOTE/*), or just one entry REF.

    With REF (an id, COMMIT:N, NAME@N, NAME@alias, NAME@latest, NAME@best as the
    remote reads it) only that entry's objects are transferred, and it is indexed
    here. Without REF, run 'git tvault pull' to merge the fetched index into yours.
    """
    repo = repo_from_ctx(ctx)
    progress = False if quiet else None
    if ref is not None:
        where = sync.check_remote_name(remote or sync.default_remote(repo))
        e = sync.fetch_one(repo, where, ref, progress)
        click.echo(printable(f"fetched {e.id[:10]} ({e.ref}{', ' + e.name if e.name else ''}) from {where}"))
        return
    t = sync.fetch(repo, remote and sync.check_remote_name(remote), progress)
    click.echo(_summary(t, "fetched from") + ("; run 'git tvault pull' to index them" if t.new_entries else ""))


@click.command("pull")
@click.argument("remote", required=False)
@click.option("-q", "--quiet", is_flag=True, help="No progress.")
@click.pass_context
def pull_cmd(ctx: click.Context, remote: str | None, quiet: bool) -> None:
    """Fetch the remote's entries and merge its index and aliases into yours (a union: nothing is dropped)."""
    t = sync.pull(repo_from_ctx(ctx), remote and sync.check_remote_name(remote), False if quiet else None)
    click.echo(_summary(t, "pulled from"))


@click.command("push")
@click.argument("remote", required=False)
@click.option("-q", "--quiet", is_flag=True, help="No progress.")
@click.option(
    "--max-bytes",
    metavar="SIZE",
    help="Push entries in batches under SIZE (1500m, 1g; default: git config tvault.maxPushBytes, else 1.5g).",
)
@click.option(
    "--prune",
    is_flag=True,
    help="Also delete on the remote the entries removed here (git tvault rm) and publish the removals.",
)
@click.pass_context
def push_cmd(ctx: click.Context, remote: str | None, quiet: bool, max_bytes: str | None, prune: bool) -> None:
    """Pull, then publish your entries, index and aliases (never forced; retried if someone pushed meanwhile).

    Entries go in batches under tvault.maxPushBytes (hosts refuse big pushes: GitHub at 2 GiB),
    oldest first, the index last; after a failure, running it again pushes only what the remote
    lacks. Removals (git tvault rm) stay local unless you pass --prune.
    """
    limit = sync.parse_size(max_bytes) if max_bytes is not None else None
    say = None if quiet else (lambda line: click.echo(printable(line, newlines=False), err=True))
    t = sync.push(
        repo_from_ctx(ctx),
        remote and sync.check_remote_name(remote),
        False if quiet else None,
        max_bytes=limit,
        prune=prune,
        say=say,
    )
    _warn(t)
    if not t.pushed:
        click.echo("nothing to push: no entries yet (log one with tvault_git.log_all)")
        return
    click.echo(
        f"pushed to {t.remote}"
        + (f" in {t.batches} batches" if t.batches > 1 else "")
        + (f" (after merging {len(t.new_entries)} new entries from it)" if t.new_entries else "")
        + (f"; pruned {len(t.pruned)} removed entr{'y' if len(t.pruned) == 1 else 'ies'}" if t.pruned else "")
    )
