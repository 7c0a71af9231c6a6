"""``git tvault log / show / export``: list entries, show one, write its weights out. Torch-free at import."""

from __future__ import annotations

import json
from typing import Any

import click
import pygit2

from tvault_git.capture.compiled import describe as describe_compile
from tvault_git.capture.libraries import describe as describe_library
from tvault_git.capture.live import capture_gaps
from tvault_git.capture.values import flat_configuration
from tvault_git.cli.app import repo_from_ctx
from tvault_git.cli.style import heading
from tvault_git.errors import InvalidInput
from tvault_git.registry import entries, orphans, series, summary
from tvault_git.registry.contents import load_contents
from tvault_git.textfmt import fmt_config, fmt_tags, fmt_value, human_bytes, printable, printable_tree, short_date


def model_label(s: summary.EntrySummary) -> str | None:
    """``NAME@N`` (what users type), ``NAME`` when unnumbered, None for unnamed entries."""
    if not s.get("name"):
        return None
    return f"{s['name']}@{s['version']}" if s.get("version") else s["name"]


def orphan_mark(repo: pygit2.Repository, e: entries.Entry) -> str | None:
    """Why ``e`` is orphaned (``show``), or None."""
    if e.index < 0:
        return "no note lists it (git notes prune after a rewrite?)"
    if not orphans.has_commit(repo, e.commit):
        return f"its training commit {e.commit[:10]} is gone (rewritten without tvault's hooks?)"
    return None


def log_line(s: summary.EntrySummary) -> str:
    parts = [click.style(s["id"][:10], fg="yellow"), s["ref"]]
    if s.get("orphaned"):
        parts.append(click.style("(orphaned: commit gone)", fg="red", bold=True))
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
    gone = {c for c in {r["commit"] for r in rows} if not orphans.has_commit(repo, c)}
    for r in rows:
        r["orphaned"] = r["commit"] in gone
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    if not rows and limit != 0:
        click.echo("no entries yet: log one with tvault_git.log_all(model, ...)")
    else:
        for s in printable_tree(rows):
            click.echo(log_line(s))
    warn_damaged(repo)
    n = orphans.count(repo)
    if n:
        click.echo(
            f"tvault: warning: {n} entr{'y is' if n == 1 else 'ies are'} orphaned (training commit gone, or no note lists "
            "it: a rewrite without tvault's hooks); 'git tvault orphans' lists them, 'git tvault reattach' re-attaches them",
            err=True,
        )


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
    why = orphan_mark(repo, e)
    if why:
        lines.append(f"{heading('orphaned')} " + click.style(f"{why}; git tvault reattach", fg="red", bold=True))
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
    imp = m.get("imported") if isinstance(m.get("imported"), dict) else {}
    from_file = imp.get("from") == "checkpoint"
    cls = model.get("class") or ("unknown class (a state_dict)" if from_file else "?")
    lines.append(f"{heading('model')}    {cls} ({model.get('parameters') or 0:,} parameters)")
    if model.get("compiled") is not None:
        lines.append(f"{heading('compiled')} {describe_compile(model['compiled'])}")
    if from_file:
        key = f", its {imp['state_dict_key']!r}" if imp.get("state_dict_key") else ""
        lines.append(
            f"{heading('imported')} from {imp.get('file')} ({imp.get('format')}{key}, sha256 {imp.get('sha256')});"
            " no code was captured"
        )
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
    if from_file and not objs:
        lines += ["", heading(f"Source: none (weights imported from {imp.get('file')}; no code was captured)")]
    else:
        lines += [
            "",
            heading(
                f"Source ({len(objs)} object{'s' * (len(objs) != 1)} in {len(files)} file{'s' * (len(files) != 1)})"
            ),
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
        lib = f", library {describe_library(x['repo'])}" if isinstance(x.get("repo"), dict) else ""
        lines.append(f"    external {x.get('qualname')} ({x.get('package')} {x.get('version')}{lib})")
    for x in [x for x in src.get("missing") or [] if isinstance(x, dict)]:
        lines.append(f"    missing  {x.get('qualname')}: {x.get('reason')}")
    total = sum(_count(r.get("nbytes")) for r in weights.values())
    if (m.get("imported") or {}).get("weights") is False:
        lines += ["", heading("Weights: none (imported from the original tvault, which stored no weights)")]
        weights = {}
    else:
        lines += ["", heading(f"Weights ({len(weights)} tensors, {human_bytes(total)})")]
    tied = model.get("tied") if isinstance(model.get("tied"), dict) else {}
    for n, to in list(tied.items())[:50]:
        lines.append(f"    {n} = {to} (tied: one tensor)")
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
