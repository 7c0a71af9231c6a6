"""``git tvault log / show / export``: list entries, show one, write its weights out. Torch-free at import."""

from __future__ import annotations

import json
from typing import Any

import click

from tvault_git.capture.live import capture_gaps
from tvault_git.capture.values import flat_configuration
from tvault_git.cli.app import repo_from_ctx
from tvault_git.cli.style import heading
from tvault_git.errors import InvalidInput
from tvault_git.registry import entries, series, summary
from tvault_git.registry.contents import load_contents
from tvault_git.textfmt import fmt_config, fmt_tags, fmt_value, human_bytes, printable, printable_tree, short_date


def model_label(s: summary.EntrySummary) -> str | None:
    """``NAME@N`` (what users type), ``NAME`` when unnumbered, None for unnamed entries."""
    if not s.get("name"):
        return None
    return f"{s['name']}@{s['version']}" if s.get("version") else s["name"]


def log_line(s: summary.EntrySummary) -> str:
    parts = [click.style(s["id"][:10], fg="yellow"), s["ref"]]
    label = model_label(s)
    if label:
        parts.append(click.style(label, fg="cyan"))
    if s.get("dirty"):
        parts.append(click.style("(dirty)", fg="red"))
    if s["result"] is not None:
        parts.append(f"result={fmt_value(s['result'])}")
    if s["metrics"]:
        parts.append(fmt_tags(s["metrics"]))
    if s["tags"]:
        parts.append(click.style(fmt_tags(s["tags"]), fg="green"))
    parts.append(f"<{s['author']}>")
    parts.append(short_date(s["created"]))
    if s.get("message"):
        first = s["message"].strip().splitlines()[0] if s["message"].strip() else ""
        parts.append(click.style(first if len(first) <= 72 else first[:71] + "…", dim=True))
    return " ".join(parts)


@click.command("log")
@click.option("-n", "--max-count", "limit", type=int, default=None, help="Show at most N entries.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def log_cmd(ctx: click.Context, limit: int | None, as_json: bool) -> None:
    """List entries, newest first."""
    if limit is not None and limit < 0:
        raise InvalidInput("-n must be zero or more")
    from tvault_git.cli.commands.check import warn_damaged
    from tvault_git.registry import query  # the derived cache answers this without reading every manifest

    repo = repo_from_ctx(ctx)
    rows = query.find(repo, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    if not rows and limit != 0:
        click.echo("no entries yet: log one with tvault_git.log_all(model, ...)")
    else:
        for s in printable_tree(rows):
            click.echo(log_line(s))
    warn_damaged(repo)


@click.command("show")
@click.argument("ref")
@click.option("--source", "show_source", is_flag=True, help="Print the captured source code in full.")
@click.option("--patch", "show_patch", is_flag=True, help="Print the uncommitted changes the entry was trained with.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def show_cmd(ctx: click.Context, ref: str, show_source: bool, show_patch: bool, as_json: bool) -> None:
    """Show one entry: metadata, architecture, source, weights, optimizer."""
    repo = repo_from_ctx(ctx)
    c = load_contents(repo, entries.resolve(repo, ref))
    e, m, src, weights, opt, sched, arch = (
        c.entry,
        c.manifest,
        c.source,
        c.weights,
        c.optimizer,
        c.scheduler,
        c.architecture,
    )
    curves = series.read(repo, e.id)
    if as_json:
        out: dict[str, Any] = dict(summary.of_entry(e))
        out.update(
            {
                "manifest": m,
                "architecture": arch,
                "source": src,
                "weights": weights,
                "optimizer": opt,
                "scheduler": sched,
                "step_metrics": None if curves is None else {"steps": len(curves.steps), "metrics": curves.summary()},
                "configuration": c.configuration,
            }
        )
        click.echo(json.dumps(out, indent=1))
        return
    # everything below came from the registry: printable before it reaches the terminal
    m, src, weights, opt, sched = (printable_tree(x) for x in (m, src, weights, opt, sched))
    src = src if isinstance(src, dict) else {}
    opt = opt if isinstance(opt, dict) else None
    sched = sched if isinstance(sched, dict) else None
    arch = printable(arch)
    s = printable_tree(summary.of_entry(e))
    a = m.get("author") or {}
    lines = [
        f"{heading('entry')}    {click.style(e.id, fg='yellow')}  ({s['ref']})",
        f"{heading('commit')}   {e.commit}"
        + (f" on {m['branch']}" if m.get("branch") else "")
        + (click.style(" (dirty work tree)", fg="red") if m.get("dirty") else ""),
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
    lines.append(f"{heading('model')}    {model.get('class')} ({model.get('parameters') or 0:,} parameters)")
    gaps = capture_gaps(m.get("missing") or src.get("missing") or [], m.get("drift") or [])
    if gaps:
        lines.append(f"{heading('warning')}  " + click.style(f"capture incomplete: {gaps}", fg="red", bold=True))
    if m.get("untracked"):
        lines.append(f"{heading('untracked')} " + ", ".join(str(u) for u in m["untracked"][:20]))
    if curves is not None:
        lines += ["", heading(f"Step metrics ({len(curves.steps)} steps, {curves.steps[0]}..{curves.steps[-1]})")]
        summ = curves.summary()
        width = max([len(n) for n in summ] + [6])
        for n, d in summ.items():
            (ls, lv), (bs, bv) = d["last"], d["best"]
            lines.append(
                f"    {n:<{width}}  last {fmt_value(lv):>10} at step {ls:<8} best ({d['mode']}) {fmt_value(bv):>10} at step {bs}"
            )
    lines += ["", heading("Architecture")] + ["    " + ln for ln in arch.rstrip("\n").splitlines()]
    conf = printable_tree(flat_configuration(c.configuration))
    if conf:
        lines += ["", heading(f"Configuration ({len(conf)} value{'s' * (len(conf) != 1)})")]
        for k, val in list(conf.items())[:200]:
            lines.append(f"    {k} = {fmt_config(val)}")
        if len(conf) > 200:
            lines.append(f"    ... and {len(conf) - 200} more (git tvault show --json)")
    objs = [o for o in src.get("objects") or [] if isinstance(o, dict)]
    files = sorted({str(o.get("file")) for o in objs})
    lines += [
        "",
        heading(f"Source ({len(objs)} object{'s' * (len(objs) != 1)} in {len(files)} file{'s' * (len(files) != 1)})"),
    ]
    for o in objs:
        label = f"{o.get('module')}.{o.get('qualname')}"
        value = f"  = {fmt_config(o['value'], 60)}" if "value" in o else ""
        where = f"{o.get('file')}" + (f":{o['line']}" if o.get("line") is not None else "")
        lines.append(f"    {o.get('kind', '?'):<9}{label:<36} {where}{value}")
        if show_source:
            text = printable(c.text(str(o.get("path", ""))))
            lines += ["        " + ln for ln in text.rstrip("\n").splitlines()] + [""]
    for x in [x for x in src.get("external") or [] if isinstance(x, dict)]:
        lines.append(f"    external {x.get('qualname')} ({x.get('package')} {x.get('version')})")
    for x in [x for x in src.get("missing") or [] if isinstance(x, dict)]:
        lines.append(f"    missing  {x.get('qualname')}: {x.get('reason')}")
    total = sum(_count(r.get("nbytes")) for r in weights.values())
    if (m.get("imported") or {}).get("weights") is False:
        lines += ["", heading("Weights: none (imported from the original tvault, which stored no weights)")]
        weights = {}
    else:
        lines += ["", heading(f"Weights ({len(weights)} tensors, {human_bytes(total)})")]
    width = max([len(n) for n in weights] + [4])
    if weights:
        lines.append(f"    {'name':<{width}}  {'shape':<20} {'dtype':<10} {'size':>10}")
    for n, r in weights.items():
        lines.append(
            f"    {n:<{width}}  {tuple(r.get('shape') or [])!s:<20} {r.get('dtype', '?')!s:<10} {human_bytes(_count(r.get('nbytes'))):>10}"
        )
    if opt:
        lines += ["", heading(f"Optimizer {opt.get('class')}")]
        for i, g in enumerate(g for g in opt.get("param_groups") or [] if isinstance(g, dict)):
            hp = " ".join(f"{k}={fmt_value(val)}" for k, val in sorted(g.items()) if k != "params")
            lines.append(f"    group {i} ({len(g.get('params') or [])} params): {hp}")
    if sched:
        lines += ["", heading(f"Scheduler {sched.get('class')}")]
        lines.append(
            "    "
            + " ".join(
                f"{k}={fmt_value(val)}"
                for k, val in sorted((sched.get("state") if isinstance(sched.get("state"), dict) else {}).items())
            )
        )
    if show_patch and m.get("dirty"):
        lines += ["", heading("Uncommitted changes at training time")]
        lines += printable(c.patch()).splitlines()
    click.echo("\n".join(lines))


def _count(v: object) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


@click.command("export")
@click.argument("ref")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@click.option("--allow-large", is_flag=True, help="Load tensors that declare far more bytes than the entry stores.")
@click.pass_context
def export_cmd(ctx: click.Context, ref: str, path: str, allow_large: bool) -> None:
    """Write an entry's weights as .safetensors or .pt."""
    from tvault_git.api import read

    repo = repo_from_ctx(ctx)
    read.export(ref, path, repo, max_bytes=-1 if allow_large else None)
    click.echo(printable(f"wrote {path}"))
