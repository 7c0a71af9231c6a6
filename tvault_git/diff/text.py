"""Text rendering of a structured diff, styled like ``git diff``. Torch-free."""

from __future__ import annotations

from typing import Any

import click

from tvault_git.diff.compute import GROUP_OVER, SECTIONS, TITLES
from tvault_git.textfmt import fmt_config, fmt_value


def _g(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _diff_lines(lines: list[str], indent: str = "") -> list[str]:
    out = []
    for ln in lines:
        if ln.startswith(("---", "+++")):
            out.append(indent + click.style(ln, bold=True))
        elif ln.startswith("@@"):
            out.append(indent + click.style(ln, fg="cyan"))
        elif ln.startswith("+"):
            out.append(indent + click.style(ln, fg="green"))
        elif ln.startswith("-"):
            out.append(indent + click.style(ln, fg="red"))
        else:
            out.append(indent + ln)
    return out


def _side(d: dict[str, Any]) -> str:
    if d.get("kind") == "worktree":
        return f"work tree (HEAD {d['commit'][:7]})" if d.get("commit") else "work tree"
    label = f"{d['name']}@{d['version']}" if d.get("name") and d.get("version") else d.get("name")
    result = f"result={fmt_value(d['result'])}" if d.get("result") is not None else None
    extra = [x for x in (label, result, "dirty" if d.get("dirty") else None) if x]
    msg = (d.get("message") or "").strip().splitlines()
    if msg:
        extra.append(repr(msg[0][:60]))
    return f"{d['id'][:10]} ({d['ref']}{', ' + ', '.join(extra) if extra else ''})"


def header(d: dict[str, Any]) -> list[str]:
    return [
        click.style(f"tvault diff a/{_side(d['a'])}", bold=True),
        click.style(f"           b/{_side(d['b'])}", bold=True),
    ]


def _source_body(sec: dict[str, Any]) -> list[str]:
    out = []
    for it in sec["items"]:
        st = it["status"]
        if st == "unchanged":
            continue
        if st in ("moved", "renamed"):
            note = " (and modified)" if it.get("modified") else ""
            if st == "renamed":
                note = f" ({it['similarity']:.0%} similar)"
            out.append(click.style(f"{st} {it['kind']} {it['from']} -> {it['to']}{note}", fg="yellow"))
        else:
            where = it.get("file_b") or it.get("file_a")
            out.append(click.style(f"{st} {it['kind']} {it['name']} ({where})", fg="yellow"))
        out += _diff_lines(it["diff"], "    ")
    return out


def _tensor_line(it: dict[str, Any], width: int) -> str:
    st, name = it["status"], it["name"].ljust(width)
    tied = f"  (tied to {it['tied_to']})" if it.get("tied_to") else ""
    if st == "added":
        return click.style(f"+ {name}  added {tuple(it['shape_b'])} {it['dtype_b']}{tied}", fg="green")
    if st == "removed":
        return click.style(f"- {name}  removed {tuple(it['shape_a'])} {it['dtype_a']}{tied}", fg="red")
    if st == "shape":
        return click.style(f"! {name}  shape {tuple(it['shape_a'])} -> {tuple(it['shape_b'])}{tied}", fg="yellow")
    if st == "dtype":
        return click.style(f"! {name}  dtype {it['dtype_a']} -> {it['dtype_b']}{tied}", fg="yellow")
    if st == "unread":
        return f"? {name}  values not compared{tied}"
    return (
        f"~ {name}  l2={_g(it['l2'])} rel={_g(it['relative'])} max={_g(it['max_abs'])} cos={_g(it['cosine'])}"
        f"  ({it['changed_values']:,}/{it['numel']:,} values){tied}"
    )


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _weights_body(sec: dict[str, Any]) -> list[str]:
    items = sec["items"]
    ov = sec.get("overview")
    out = []
    if ov:
        c, b = ov["counts"], ov["bytes"]
        out.append(
            "  "
            + ", ".join(f"{c[k]} {k} ({_bytes(b[k])})" for k in ("changed", "unchanged", "added", "removed") if c[k])
        )
        if ov["top"]:
            out.append("  largest relative change ||a-b||/||a||:")
            w = max(len(t["name"]) for t in ov["top"])
            out += [f"    {t['name']:<{w}}  {_g(t['relative'])}" for t in ov["top"]]
    if ov and ov.get("grouped"):
        w = max(len(g["prefix"]) for g in ov["groups"])
        for g in ov["groups"]:
            n = sum(g["counts"].values())
            parts = ", ".join(f"{v} {k}" for k, v in g["counts"].items())
            rel = f"  (max rel {_g(g['max_relative'])})" if "max_relative" in g else ""
            out.append(f"~ {g['prefix']:<{w}}  {n} tensor{'s' * (n != 1)}: {parts}{rel}")
        odd = [it for it in items if it["status"] not in ("values", "bits")]
        if odd and len(odd) <= GROUP_OVER:
            width = max(len(it["name"]) for it in odd)
            out += [_tensor_line(it, width) for it in odd]
        out.append("  (every tensor: git tvault diff --json)")
    else:
        width = max([len(it["name"]) for it in items] + [4])
        out += [_tensor_line(it, width) for it in items]
    out.append(f"  {sec['unchanged']} tensor(s) unchanged")
    return out


def _optimizer_body(sec: dict[str, Any]) -> list[str]:
    out = []
    o = sec.get("optimizer")
    if o:
        if o["class_a"] != o["class_b"]:
            out.append(f"optimizer class: {o['class_a']} -> {o['class_b']}")
        for g in o["groups"]:
            out.append(f"param group {g['group']} ({g['status']})")
            for c in g["changes"]:
                out.append(_change_line(c))
            if g.get("params"):
                for p in g["params"]["added"]:
                    out.append(click.style(f"    + param {p}", fg="green"))
                for p in g["params"]["removed"]:
                    out.append(click.style(f"    - param {p}", fg="red"))
    s = sec.get("scheduler")
    if s:
        if s["class_a"] != s["class_b"]:
            out.append(f"scheduler class: {s['class_a']} -> {s['class_b']}")
        if s["changes"]:
            out.append("scheduler state")
            out += [_change_line(c) for c in s["changes"]]
    return out


def _change_line(c: dict[str, Any]) -> str:
    a = fmt_value(c["a"]) if c["in_a"] else "(none)"
    b = fmt_value(c["b"]) if c["in_b"] else "(none)"
    return f"    {c['key']}: " + click.style(a, fg="red") + " -> " + click.style(b, fg="green")


def _metadata_body(sec: dict[str, Any]) -> list[str]:
    rows = sec["rows"]
    kw = max([len(f"{r['group']} {r['key']}") for r in rows] + [3])
    va = max([len(_cell(r["a"])) for r in rows] + [1])
    vb = max([len(_cell(r["b"])) for r in rows] + [1])
    out = [click.style(f"  {'':<{kw}}  {'a':>{va}}  {'b':>{vb}}  change", bold=True)]
    for r in rows:
        label = f"{r['group']} {r['key']}" if r["group"] != r["key"] else r["key"]
        if "delta" in r and r["changed"]:
            ch = f"{r['delta']:+.4g}"
        elif r["changed"]:
            ch = "changed"
        else:
            ch = ""
        line = f"{'*' if r['changed'] else ' '} {label:<{kw}}  {_cell(r['a']):>{va}}  {_cell(r['b']):>{vb}}  {ch}"
        out.append(click.style(line, fg="yellow") if r["changed"] else line)
    return out


def _cell(v: Any) -> str:
    return "-" if v is None else fmt_value(v)


def _context_body(sec: dict[str, Any]) -> list[str]:
    out = []
    for c in sec["commits"]:
        out.append(click.style(c["commit"][:7], fg="yellow") + " " + c["subject"])
    if sec["commits_only_in_a"]:
        out.append(f"only on a's side ({sec['commit_a'][:7]}):")
        for c in sec["commits_only_in_a"]:
            out.append("  " + click.style(c["commit"][:7], fg="yellow") + " " + c["subject"])
    if sec["files"]:
        w = max(len(f["path"]) for f in sec["files"])
        for f in sec["files"]:
            bar = click.style("+" * min(f["added"], 40), fg="green") + click.style(
                "-" * min(f["removed"], 40), fg="red"
            )
            out.append(f" {f['path']:<{w}} | {f['added'] + f['removed']:>4} {bar}")
    for lib in sec.get("libraries") or []:
        out.append(
            f"library {lib['package']}: " + click.style(lib["a"], fg="red") + " -> " + click.style(lib["b"], fg="green")
        )
    return out


def _configuration_body(sec: dict[str, Any]) -> list[str]:
    out = []
    for it in sec["items"]:
        a = fmt_config(it["a"]) if it["in_a"] else "(none)"
        b = fmt_config(it["b"]) if it["in_b"] else "(none)"
        out.append(f"    {it['key']}: " + click.style(a, fg="red") + " -> " + click.style(b, fg="green"))
    return out


_BODIES = {
    "configuration": _configuration_body,
    "architecture": lambda s: _diff_lines(s["diff"]),
    "classes": _source_body,
    "functions": _source_body,
    "weights": _weights_body,
    "optimizer": _optimizer_body,
    "metadata": _metadata_body,
    "context": _context_body,
}


def render(d: dict[str, Any], stat: bool = False) -> str:
    """Header, then each changed section: a one-line summary, then (unless ``stat``) its body."""
    lines = header(d)
    changed = [s for s in SECTIONS if s in d and d[s]["changed"]]
    if not changed:
        which = " in " + ", ".join(d["sections"]) if len(d["sections"]) < len(SECTIONS) else ""
        lines.append(f"no differences{which}")
        return "\n".join(lines) + "\n"
    for s in changed:
        sec = d[s]
        lines.append("")
        lines.append(click.style(f"{TITLES[s]}: ", bold=True, fg="magenta") + sec["summary"])
        if not stat:
            lines += _BODIES[s](sec)
    same = [TITLES[s].lower() for s in d["sections"] if not d[s]["changed"] and d[s].get("available", True)]
    if same:
        lines += ["", click.style("unchanged: " + ", ".join(same), dim=True)]
    return "\n".join(lines) + "\n"
