"""``git tvault history NAME`` and ``git tvault alias``: named models and their versions. Torch-free."""

from __future__ import annotations

import json
from typing import Any

import click

from tvault_git.cli.app import repo_from_ctx
from tvault_git.cli.style import heading
from tvault_git.errors import InvalidInput
from tvault_git.registry import history, names
from tvault_git.registry.query import metric_direction
from tvault_git.spec.values import as_number
from tvault_git.textfmt import fmt_value, printable, printable_tree, short_date

_num = as_number


def version_rows(repo: Any, name: str) -> list[dict[str, Any]]:
    """Each version with its metadata and how result/metrics moved from the previous one (``--json`` rows)."""
    rows: list[dict[str, Any]] = []
    prev: dict[str, Any] | None = None
    for r in history.version_rows(repo, name):
        delta: dict[str, float] = {}
        if prev is not None:
            for k, val in [("result", r.result), *sorted(r.metrics.items())]:
                new, old = _num(val), _num(prev["result"] if k == "result" else prev["metrics"].get(k))
                if new is not None and old is not None:
                    delta[k] = new - old
        row = {
            "version": r.version.number,
            "id": r.entry.id,
            "ref": r.entry.ref,
            "commit": r.entry.commit,
            "index": r.entry.index,
            "aliases": r.version.aliases,
            "author": r.author,
            "email": r.email,
            "created": r.version.created,
            "result": r.result,
            "metrics": r.metrics,
            "delta": delta,
            "message": r.message,
            "dirty": r.dirty,
        }
        rows.append(row)
        prev = row
    return rows


def _moved(key: str, d: float | None) -> str:
    """The change from the previous version; green when it improved (loss-like names: when it fell)."""
    if d is None:
        return ""
    if d == 0:
        return click.style(" (=)", dim=True)
    better = (d < 0) if metric_direction(key) == "min" else (d > 0)
    return click.style(f" ({'+' if d > 0 else ''}{d:.4g})", fg="green" if better else "red")


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def models_cmd(ctx: click.Context, as_json: bool) -> None:
    """Named models: how many versions, the latest, the best (the stored best alias, else highest result), aliases."""
    _models(ctx, as_json)


def _models(ctx: click.Context, as_json: bool) -> None:
    rows = names.summaries(repo_from_ctx(ctx))
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        click.echo("no named models yet: log one with tvault_git.log_all(model, name=NAME, ...)")
        return
    for r in rows:
        latest = r["latest"]
        best = r["best"]
        parts = [
            heading(str(r["name"])),
            f"{r['versions']} version{'s' * (r['versions'] != 1)}",
            f"latest {r['name']}@{latest['version']} ({short_date(latest['created'])})",
        ]
        if best:
            res = "" if best["result"] is None else f"result={fmt_value(best['result'])}"
            if best.get("from") == "alias":  # the stored alias wins, as NAME@best resolves it
                ver = f"@{best['version']}" if best["version"] is not None else f" {best['id'][:10]} (not fetched)"
                parts.append(f"best {r['name']}{ver} (alias best" + (f", {res})" if res else ")"))
            else:
                parts.append(f"best {r['name']}@{best['version']} ({res}, highest)")
        if r["aliases"]:
            parts.append(
                click.style(", ".join(f"{a} -> @{v or '?'}" for a, v in sorted(r["aliases"].items())), fg="cyan")
            )
        click.echo("  ".join(parts))


@click.command("history")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def history_cmd(ctx: click.Context, name: str | None, as_json: bool) -> None:
    """Versions of a named model, oldest first, and how each metric moved (no NAME: the models)."""
    if name is None:
        _models(ctx, as_json)
        return
    rows = version_rows(repo_from_ctx(ctx), name)
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    name = printable(name, newlines=False)
    for r in printable_tree(rows):
        tag = f" [{', '.join(r['aliases'])}]" if r["aliases"] else ""
        click.echo(
            f"{heading(name + '@' + str(r['version']))}"
            f"{click.style(tag, fg='cyan')}  {click.style(r['id'][:10], fg='yellow')}  {r['ref']}"
            f"  {r['author'] or '-'}  {short_date(r['created'])}  commit {r['commit'][:10]}{' (dirty)' if r['dirty'] else ''}"
        )
        parts = []
        if r["result"] is not None:
            parts.append(f"result={fmt_value(r['result'])}{_moved('result', r['delta'].get('result'))}")
        for k, val in sorted(r["metrics"].items()):
            parts.append(f"{k}={fmt_value(val)}{_moved(k, r['delta'].get(k))}")
        if parts:
            click.echo("    " + "  ".join(parts))
        if r["message"]:
            click.echo(f"    {r['message']}")


@click.command("alias")
@click.argument("target", required=False)
@click.argument("alias", required=False)
@click.option("-d", "--delete", "delete", is_flag=True, help="Remove the alias: git tvault alias -d NAME ALIAS.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable listing.")
@click.pass_context
def alias_cmd(ctx: click.Context, target: str | None, alias: str | None, delete: bool, as_json: bool) -> None:
    """Set (NAME@3 production), remove (-d NAME production) or list (NAME, or nothing) aliases."""
    repo = repo_from_ctx(ctx)
    if delete:
        if not target or not alias:
            raise InvalidInput("usage: git tvault alias -d NAME ALIAS")
        names.remove_alias(repo, target.partition("@")[0], alias)
        click.echo(f"removed {target.partition('@')[0]}@{alias}")
        return
    if target and alias:
        if "@" not in target:
            raise InvalidInput(f"say which version: git tvault alias {target}@N {alias} (or NAME@latest, NAME@best)")
        name = target.rpartition("@")[0]
        v = names.set_alias(repo, name, target, alias)
        click.echo(f"{name}@{alias} -> version {v.number} ({v.entry.id[:10]}, {v.entry.ref})")
        return
    listing = []
    model_names = [target.partition("@")[0]] if target else names.names(repo)
    for n in model_names:
        vs = {v.entry.id: v.number for v in names.versions(repo, n)}
        for a, eid in sorted(names.aliases(repo, n).items()):
            listing.append({"name": n, "alias": a, "id": eid, "version": vs.get(eid)})
    if as_json:
        click.echo(json.dumps(listing, indent=1))
    elif not listing:
        click.echo("no aliases yet: git tvault alias NAME@N ALIAS")
    else:
        for x in listing:
            ver = f"version {x['version']}" if x["version"] else "not fetched"
            click.echo(printable(f"{x['name']}@{x['alias']} -> {ver} ({x['id'][:10]})", newlines=False))
