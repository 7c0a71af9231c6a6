"""``git tvault import-tvault DIR``: bring an original tvault registry (``model_log/``) in. Torch-free."""

from __future__ import annotations

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
