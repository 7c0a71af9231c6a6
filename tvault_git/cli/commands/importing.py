"""``git tvault import-tvault DIR`` (an original tvault registry, torch-free) and ``git tvault import``
(checkpoint files; torch only when it runs)."""

from __future__ import annotations

import contextlib
import os

import click

from tvault_git.cli.app import repo_from_ctx


@click.command("import-tvault")
@click.argument("path", metavar="DIR", type=click.Path(file_okay=False))
@click.pass_context
def import_tvault_cmd(ctx: click.Context, path: str) -> None:
    """Import the original tvault's model_log/ folder: one entry per record (no weights: it stored none)."""
    from tvault_git.api import seedimport

    done = seedimport.import_dir(repo_from_ctx(ctx), path)
    new = [d for d in done if d.entry]
    for d in new:
        where = (
            "" if d.on_recorded_commit else f" (commit not in this repository: on HEAD, tag {seedimport.COMMIT_TAG})"
        )
        click.echo(f"imported {d.file} model {d.index} -> {d.entry[:10]} {d.ref}{where}")  # type: ignore[index]
    skipped = len(done) - len(new)
    click.echo(
        f"{len(new)} entr{'y' if len(new) == 1 else 'ies'} imported"
        + (f", {skipped} already imported" if skipped else "")
        + "; the original tvault stored no weights, so these entries have none"
    )


def _tag_pairs(values: tuple[str, ...]) -> dict[str, object]:
    from tvault_git.errors import InvalidInput
    from tvault_git.registry.query import parse_tag_value

    out: dict[str, object] = {}
    for v in values:
        k, eq, raw = v.partition("=")
        if not eq or not k:
            raise InvalidInput(f"bad --tag {v!r}: write KEY=VALUE, e.g. --tag lr=0.01")
        out[k] = parse_tag_value(raw)
    return out


@click.command("import")
@click.argument("paths", metavar="FILE...|DIR", nargs=-1, required=True, type=click.Path())
@click.option("--name", default=None, help="Model name (default: the folder the checkpoints are in).")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A tag on every entry (repeatable; typed).")
@click.option("--result", type=float, default=None, metavar="X", help="The result to record on every entry.")
@click.option(
    "--commit", "commit", default=None, metavar="REV", help="The training commit to attach them to (default: HEAD)."
)
@click.option("-m", "--message", default=None, help="The entries' message (default: 'imported from FILE').")
@click.option("--progress/--no-progress", default=None, help="A progress bar on stderr (default: on a terminal).")
@click.pass_context
def import_cmd(
    ctx: click.Context,
    paths: tuple[str, ...],
    name: str | None,
    tags: tuple[str, ...],
    result: float | None,
    commit: str | None,
    message: str | None,
    progress: bool | None,
) -> None:
    """Import .safetensors / .pt / .pth / .bin / .ckpt state_dicts: one version per file, in natural order.

    Files load without running code (torch.load(weights_only=True), safetensors); anything else is
    refused (exit 11) and nothing is imported. Tensors unchanged between checkpoints are stored once.
    """
    import sys

    from tvault_git.api import ckptimport
    from tvault_git.textfmt import human_bytes, printable

    repo = repo_from_ctx(ctx)
    files = ckptimport.checkpoint_files(paths)
    tty = sys.stderr.isatty()
    show = tty if progress is None else progress
    bar_ctx = (
        click.progressbar(length=len(files), label="importing", file=sys.stderr)
        if show and tty
        else contextlib.nullcontext(None)
    )
    count = [0]

    def step(f: str) -> None:
        count[0] += 1
        if bar is not None:
            bar.update(1)
        elif show:  # --progress without a terminal (CI logs): one line per file
            click.echo(f"importing {count[0]}/{len(files)} {printable(os.path.basename(f), newlines=False)}", err=True)

    with bar_ctx as bar:
        rep = ckptimport.import_checkpoints(
            repo, files, name=name, tags=_tag_pairs(tags), result=result, commit=commit, message=message, progress=step
        )
    for f in rep.files:
        shown = printable(os.path.basename(f.file), newlines=False)
        if f.entry is None:
            click.echo(f"skipped  {shown} (already imported as a version of {rep.name})")
            continue
        how = f" (its {f.unwrapped!r}: a training checkpoint; the rest of it is not imported)" if f.unwrapped else ""
        click.echo(
            f"imported {shown} -> {rep.name}@{f.version} {f.entry.id[:10]}"
            f" ({human_bytes(f.logical_bytes)}, {human_bytes(f.new_bytes)} new){how}"
        )
    n = sum(1 for f in rep.files if f.entry is not None)
    ratio = rep.dedup_ratio
    dedup = (
        f"{ratio:.1f}x dedup" if ratio is not None else "nothing new to write"
    ) + f": {human_bytes(rep.logical_bytes)} of tensors, {human_bytes(rep.new_bytes)} written"
    click.echo(f"{n} checkpoint{'s' * (n != 1)} imported as {rep.name}; {dedup}")
