"""``git tvault stale [NAME]``: which registered models the work tree's code would build differently. Torch-free."""

from __future__ import annotations

import json
import sys

import click

from tvault_git.cli.app import repo_from_ctx
from tvault_git.cli.style import heading
from tvault_git.textfmt import printable


@click.command("stale")
@click.argument("name", required=False)
@click.option("--all", "all_versions", is_flag=True, help="Every version, not only each model's latest.")
@click.option("-v", "--verbose", is_flag=True, help="Also list the models that match the work tree.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--exit-code", "exit_code", is_flag=True, help="Exit with status 1 when a model is stale (as git diff).")
@click.pass_context
def stale_cmd(
    ctx: click.Context, name: str | None, all_versions: bool, verbose: bool, as_json: bool, exit_code: bool
) -> None:
    """Models whose captured classes, functions or constants differ from the work tree's (by definition, not file)."""
    from tvault_git.api import stale

    states = stale.stale(repo_from_ctx(ctx), name, all_versions)
    n_stale = sum(1 for s in states if s.state == "stale")
    if as_json:
        click.echo(json.dumps([s.as_json() for s in states], indent=1))
    else:
        for s in states:
            if s.state == "current" and not verbose:
                continue
            label = printable(f"{s.name}@{s.version}", newlines=False)
            what = {
                "stale": click.style("stale", fg="red"),
                "current": click.style("matches the work tree", fg="green"),
                "no-code": printable(s.note, newlines=False),
                "unavailable": printable(s.note, newlines=False),
            }[s.state]
            click.echo(f"{heading(label)}  {click.style(s.entry[:10], fg='yellow')}  trained on {s.commit[:7]}: {what}")
            for f in s.findings:
                click.echo(f"    {printable(f.phrase, newlines=False)}")
            if s.unchecked and (s.findings or verbose):
                click.echo(f"    not checked (no file holds them): {printable(', '.join(s.unchecked), newlines=False)}")
        models = len({s.name for s in states})
        what = "version" if all_versions else "model"
        total = len(states) if all_versions else models
        if n_stale:
            click.echo(f"{n_stale} of {total} {what}s would be built differently by the work tree's code")
        else:
            click.echo(f"no stale {what}s: {total} checked against the work tree")
    if exit_code and n_stale:
        sys.exit(1)
