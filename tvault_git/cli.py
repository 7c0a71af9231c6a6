"""``git tvault``: a thin click layer over the Python API.

Errors from the one hierarchy in ``errors.py`` become a one-line message and
their exit code here, in ``main``; nothing else catches them. Commands that
need no tensor values never import torch.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from . import __version__, registry, series
from .errors import InvalidInput, TvaultError
from .format import ARCHITECTURE, OPTIMIZER, PATCH, SCHEDULER, SOURCE_INDEX
from .render import fmt_tags, fmt_value, heading, human_bytes, short_date
from .repo import open_repo


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tvault-git")
@click.option("-C", "repo_path", default=None, metavar="PATH", help="Run as if started in PATH (like git -C).")
@click.pass_context
def cli(ctx: click.Context, repo_path: str | None) -> None:
    """A PyTorch model registry inside your git repository."""
    ctx.obj = {"repo_path": repo_path}


def _repo(ctx: click.Context):
    return open_repo(ctx.obj.get("repo_path") if ctx.obj else None)


def entry_summary(e: registry.Entry) -> dict[str, Any]:
    m = e.manifest
    return {
        "id": e.id,
        "ref": f"{e.commit[:7]}:{e.index}",
        "commit": e.commit,
        "index": e.index,
        "name": m.get("name"),
        "result": m.get("result"),
        "metrics": m.get("metrics") or {},
        "tags": m.get("tags") or {},
        "author": (m.get("author") or {}).get("name"),
        "email": (m.get("author") or {}).get("email"),
        "created": m.get("created"),
        "branch": m.get("branch"),
        "dirty": m.get("dirty"),
        "message": m.get("message"),
    }


def log_line(s: dict[str, Any]) -> str:
    parts = [click.style(s["id"][:10], fg="yellow"), s["ref"]]
    if s["name"]:
        parts.append(click.style(s["name"], fg="cyan"))
    if s["result"] is not None:
        parts.append(f"result={fmt_value(s['result'])}")
    if s["metrics"]:
        parts.append(fmt_tags(s["metrics"]))
    if s["tags"]:
        parts.append(click.style(fmt_tags(s["tags"]), fg="green"))
    parts.append(f"<{s['author']}>")
    parts.append(short_date(s["created"]))
    return " ".join(parts)


@cli.command("log")
@click.option("-n", "--max-count", "limit", type=int, default=None, help="Show at most N entries.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def log_cmd(ctx: click.Context, limit: int | None, as_json: bool) -> None:
    """List entries, newest first."""
    if limit is not None and limit < 0:
        raise InvalidInput("-n must be zero or more")
    from . import query  # the derived cache answers this without reading every manifest

    rows = query.find(_repo(ctx), limit=limit)
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        click.echo("no entries yet: log one with tvault_git.log_all(model, ...)")
        return
    for s in rows:
        click.echo(log_line(s))


@cli.command("show")
@click.argument("ref")
@click.option("--source", "show_source", is_flag=True, help="Print the captured source code in full.")
@click.option("--patch", "show_patch", is_flag=True, help="Print the uncommitted changes the entry was trained with.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def show_cmd(ctx: click.Context, ref: str, show_source: bool, show_patch: bool, as_json: bool) -> None:
    """Show one entry: metadata, architecture, source, weights, optimizer."""
    repo = _repo(ctx)
    e = registry.resolve(repo, ref)
    m = e.manifest
    tree = e.tree()
    read = lambda p: registry.read_json(repo, e.id, p)  # noqa: E731
    src = read(SOURCE_INDEX) or {}
    weights = registry.weight_records(repo, e.id)
    opt = read(OPTIMIZER)
    sched = read(SCHEDULER)
    arch = (registry.read_blob(repo, tree, ARCHITECTURE) or b"").decode("utf-8", "replace")
    curves = series.read(repo, e.id)
    if as_json:
        out = entry_summary(e)
        out.update({"manifest": m, "architecture": arch, "source": src, "weights": weights, "optimizer": opt, "scheduler": sched})
        out["step_metrics"] = None if curves is None else {"steps": len(curves.steps), "metrics": curves.summary()}
        click.echo(json.dumps(out, indent=1))
        return
    s = entry_summary(e)
    a = m.get("author") or {}
    lines = [
        f"{heading('entry')}    {click.style(e.id, fg='yellow')}  ({s['ref']})",
        f"{heading('commit')}   {e.commit}" + (f" on {m['branch']}" if m.get("branch") else "") + (click.style(" (dirty work tree)", fg="red") if m.get("dirty") else ""),
        f"{heading('author')}   {a.get('name')} <{a.get('email')}>",
        f"{heading('date')}     {m.get('created')}",
    ]
    if m.get("name"):
        lines.insert(1, f"{heading('name')}     {m['name']}")
    if m.get("result") is not None:
        lines.append(f"{heading('result')}   {fmt_value(m['result'])}")
    if m.get("metrics"):
        lines.append(f"{heading('metrics')}  {fmt_tags(m['metrics'])}")
    if m.get("tags"):
        lines.append(f"{heading('tags')}     {fmt_tags(m['tags'])}")
    if m.get("message"):
        lines.append(f"{heading('message')}  {m['message']}")
    v = m.get("versions") or {}
    lines.append(f"{heading('versions')} " + ", ".join(f"{k} {val}" for k, val in sorted(v.items())))
    model = m.get("model") or {}
    lines.append(f"{heading('model')}    {model.get('class')} ({model.get('parameters', 0):,} parameters)")
    if curves is not None:
        lines += ["", heading(f"Step metrics ({len(curves.steps)} steps, {curves.steps[0]}..{curves.steps[-1]})")]
        summ = curves.summary()
        width = max([len(n) for n in summ] + [6])
        for n, d in summ.items():
            (ls, lv), (bs, bv) = d["last"], d["best"]
            lines.append(f"    {n:<{width}}  last {fmt_value(lv):>10} at step {ls:<8} best ({d['mode']}) {fmt_value(bv):>10} at step {bs}")
    lines += ["", heading("Architecture")] + ["    " + ln for ln in arch.rstrip("\n").splitlines()]
    objs = src.get("objects") or []
    files = sorted({o.get("file") for o in objs})
    lines += ["", heading(f"Source ({len(objs)} object{'s' * (len(objs) != 1)} in {len(files)} file{'s' * (len(files) != 1)})")]
    for o in objs:
        label = f"{o.get('module')}.{o.get('qualname')}"
        lines.append(f"    {o.get('kind', '?'):<9}{label:<36} {o.get('file')}:{o.get('line')}")
        if show_source:
            text = (registry.read_blob(repo, tree, o.get("path", "")) or b"").decode("utf-8", "replace")
            lines += ["        " + ln for ln in text.rstrip("\n").splitlines()] + [""]
    for x in src.get("external") or []:
        lines.append(f"    external {x.get('qualname')} ({x.get('package')} {x.get('version')})")
    for x in src.get("missing") or []:
        lines.append(f"    missing  {x.get('qualname')}: {x.get('reason')}")
    total = sum(int(r.get("nbytes", 0)) for r in weights.values())
    lines += ["", heading(f"Weights ({len(weights)} tensors, {human_bytes(total)})")]
    width = max([len(n) for n in weights] + [4])
    lines.append(f"    {'name':<{width}}  {'shape':<20} {'dtype':<10} {'size':>10}")
    for n, r in weights.items():
        lines.append(f"    {n:<{width}}  {str(tuple(r.get('shape', []))):<20} {r.get('dtype', '?'):<10} {human_bytes(int(r.get('nbytes', 0))):>10}")
    if opt:
        lines += ["", heading(f"Optimizer {opt.get('class')}")]
        for i, g in enumerate(opt.get("param_groups") or []):
            hp = " ".join(f"{k}={fmt_value(val)}" for k, val in sorted(g.items()) if k != "params")
            lines.append(f"    group {i} ({len(g.get('params') or [])} params): {hp}")
    if sched:
        lines += ["", heading(f"Scheduler {sched.get('class')}")]
        lines.append("    " + " ".join(f"{k}={fmt_value(val)}" for k, val in sorted((sched.get("state") or {}).items())))
    if show_patch and m.get("dirty"):
        lines += ["", heading("Uncommitted changes at training time")]
        lines += (registry.read_blob(repo, tree, PATCH) or b"").decode("utf-8", "replace").splitlines()
    click.echo("\n".join(lines))


@cli.command("export")
@click.argument("ref")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@click.pass_context
def export_cmd(ctx: click.Context, ref: str, path: str) -> None:
    """Write an entry's weights as .safetensors or .pt."""
    from . import api

    repo = _repo(ctx)
    api.export(ref, path, repo)
    click.echo(f"wrote {path}")


# Command modules register their commands on ``cli`` when imported; one line each.
# They must not import torch at module level (start-up time of log/show/find).
# --- command modules ---
from . import cli_find  # noqa: E402,F401
from . import cli_diff  # noqa: E402,F401
from . import cli_models  # noqa: E402,F401
from . import cli_share  # noqa: E402,F401
from . import cli_hooks  # noqa: E402,F401
from . import cli_web  # noqa: E402,F401

def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and an exit code."""
    try:
        cli.main(args=argv, prog_name="git tvault", standalone_mode=False)
    except TvaultError as e:
        click.echo(f"tvault: error: {e}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("tvault: aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(0)


if __name__ == "__main__":
    main()
