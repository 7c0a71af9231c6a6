"""Page views: the template context of each page, built from registry records (no SQL, no git here).

Each function returns a plain dict for one template; the live app (app.py) and the static
export (export.py) render the same contexts. What the registry reads and how is in
registry/ (query, contents, history, series); what is left here is layout: plot data,
side-by-side rows, which columns a table has.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

import pygit2
from markupsafe import Markup

from tvault_git.capture.live import capture_gaps
from tvault_git.capture.values import flat_configuration
from tvault_git.errors import CorruptEntry, InvalidInput, TvaultError
from tvault_git.gitutil.repo import commit_info
from tvault_git.registry import entries, history, names, query, series
from tvault_git.registry.contents import load_contents
from tvault_git.spec.manifest import author_name
from tvault_git.spec.values import as_number
from tvault_git.textfmt import human_bytes

MAX_CURVES = 24  # plots per page: a run logging hundreds of metrics gets the first ones, by name


@dataclass
class Filters:
    """The ``find`` conditions as the entries page takes them from the query string."""

    min: str = ""
    max: str = ""
    tag: tuple[str, ...] = ()
    where: tuple[str, ...] = ()
    name: str = ""
    author: str = ""
    branch: str = ""
    commit: str = ""
    since: str = ""
    until: str = ""
    sort: str = ""
    asc: bool = False

    @classmethod
    def from_args(cls, args: Any) -> Filters:
        def many(key: str) -> tuple[str, ...]:
            return tuple(p.strip() for v in args.getlist(key) for p in v.split(";") if p.strip())

        return cls(
            min=args.get("min", "").strip(),
            max=args.get("max", "").strip(),
            tag=many("tag"),
            where=many("where"),
            name=args.get("name", "").strip(),
            author=args.get("author", "").strip(),
            branch=args.get("branch", "").strip(),
            commit=args.get("commit", "").strip(),
            since=args.get("since", "").strip(),
            until=args.get("until", "").strip(),
            sort=args.get("sort", "").strip(),
            asc=args.get("asc", "") in ("1", "true", "on"),
        )

    def params(self, **override: Any) -> dict[str, Any]:
        p: dict[str, Any] = {
            "min": self.min,
            "max": self.max,
            "tag": "; ".join(self.tag),
            "where": "; ".join(self.where),
            "name": self.name,
            "author": self.author,
            "branch": self.branch,
            "commit": self.commit,
            "since": self.since,
            "until": self.until,
            "sort": self.sort,
            "asc": "1" if self.asc else "",
        }
        p.update(override)
        return p

    def find_kwargs(self) -> dict[str, Any]:
        tags = []
        for t in self.tag:
            k, sep, v = t.partition("=")
            if not sep or not k.strip():
                raise InvalidInput(f"bad tag filter {t!r}: write KEY=VALUE, e.g. lr=0.01")
            tags.append((k.strip(), v.strip()))

        def num(s: str, what: str) -> float | None:
            return None if s == "" else query.parse_number(s, what)

        return {
            "min_result": num(self.min, "the minimum result"),
            "max_result": num(self.max, "the maximum result"),
            "tags": tuple(tags),
            "where": self.where,
            "name": self.name or None,
            "author": self.author or None,
            "branch": self.branch or None,
            "commit": self.commit or None,
            "since": self.since or None,
            "until": self.until or None,
            "sort": self.sort or None,
            "ascending": self.asc,
        }


# -- entries -------------------------------------------------------------------------


def entries_page(repo: pygit2.Repository, f: Filters, page: int, per: int, error: str | None = None) -> dict[str, Any]:
    """One page of the entries table; the sort, filters, LIMIT and OFFSET all run in SQLite."""
    per = max(1, per)
    page = max(1, page)
    rows: list[dict[str, Any]] = []
    total = 0
    if error is None:
        try:
            rows, total = query.find(repo, **f.find_kwargs(), limit=per, offset=(page - 1) * per, with_total=True)
        except TvaultError as e:
            error = str(e)
    metrics = sorted({k for r in rows for k in r["metrics"]})
    tags = sorted({k for r in rows for k in r["tags"]})
    pages = max(1, -(-total // per))
    return {
        "rows": rows,
        "has_prev": query.with_predecessor(repo, [r["id"] for r in rows]),
        "has_message": any(r.get("message") for r in rows),
        "total": total,
        "page": page,
        "pages": pages,
        "per": per,
        "metrics": metrics,
        "tags": tags,
        "f": f,
        "error": error,
        "columns": _sort_columns(metrics, tags),
    }


def _sort_columns(metrics: list[str], tags: list[str]) -> list[tuple[str, str]]:
    return (
        [("date", "date"), ("name", "name"), ("result", "result"), ("author", "author")]
        + [(m, m) for m in metrics]
        + [(t, t) for t in tags]
    )


def highlight(text: str, lexer: str = "python") -> Markup:
    """Pygments HTML (it escapes the text) for source code and patches."""
    from pygments import highlight as _highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name

    return Markup(_highlight(text, get_lexer_by_name(lexer), HtmlFormatter(cssclass="hl")))


def entry_page(repo: pygit2.Repository, ref: str) -> dict[str, Any]:
    e = query.lookup(repo, ref)
    c = load_contents(repo, e)
    m = c.manifest
    objects = [{**o, "html": highlight(c.text(str(o.get("path", ""))))} for o in c.objects]
    wrows: list[dict[str, Any]] = [
        {
            "name": n,
            "shape": r.get("shape"),
            "dtype": r.get("dtype"),
            "nbytes": int(r.get("nbytes") or 0),
            "size": human_bytes(int(r.get("nbytes") or 0)),
            "numel": _numel(r.get("shape")),
        }
        for n, r in c.weights.items()
    ]
    opt = c.optimizer
    groups: list[dict[str, Any]] = []
    group_keys: list[str] = []
    if isinstance(opt, dict):
        groups = [g for g in (opt.get("param_groups") or []) if isinstance(g, dict)]
        group_keys = sorted({k for g in groups for k in g if k != "params"})
    raw_patch = c.patch()
    return {
        "e": e,
        "m": m,
        "author": m.get("author") or {},
        "commit": commit_info(repo, e.commit),
        "objects": objects,
        "external": c.source.get("external") or [],
        "missing": c.source.get("missing") or [],
        "capture_gaps": capture_gaps(m.get("missing") or c.source.get("missing") or [], m.get("drift") or []),
        "configuration": flat_configuration(c.configuration),
        "weights": wrows,
        "weights_total": human_bytes(sum(int(w["nbytes"]) for w in wrows)),
        "architecture": c.architecture,
        "optimizer": opt,
        "groups": groups,
        "group_keys": group_keys,
        "scheduler": c.scheduler,
        "patch": highlight(raw_patch, "diff") if raw_patch else None,
        "previous": query.predecessor(repo, e.id),
        "curves": curves(repo, [e]),
    }


def curves(repo: pygit2.Repository, es: list[entries.Entry]) -> dict[str, Any]:
    """Learning curves (step metrics) of entries: one plot per metric with every entry's series
    overlaid on the union of their steps. A damaged series is reported, not plotted."""
    found: list[tuple[int, entries.Entry, dict[str, Any]]] = []
    errors: list[str] = []
    for k, e in enumerate(es, 1):
        try:
            got = series.read(repo, e.id)
        except CorruptEntry as err:
            errors.append(str(err))
            continue
        if got is not None:
            found.append((k, e, got.to_json()))
    names_ = sorted({m for _, _, s in found for m in s["columns"]})
    plots = []
    for name in names_[:MAX_CURVES]:
        have = [(k, e, s) for k, e, s in found if name in s["columns"]]
        steps = sorted({st for _, _, s in have for st in s["steps"]})
        pos = {st: i for i, st in enumerate(steps)}
        lines = []
        for k, e, s in have:
            vals: list[float | None] = [None] * len(steps)
            for st, v in zip(s["steps"], s["columns"][name]):
                vals[pos[st]] = v
            label = name if len(es) == 1 else f"#{k} {e.short}" + (f" {e.name}" if e.name else "")
            lines.append({"label": label, "values": vals, "n": k - 1})  # one color per entry on every plot
        plots.append({"metric": name, "x": steps, "series": lines, "xlabel": "step"})
    return {"plots": plots, "more": max(0, len(names_) - MAX_CURVES), "errors": errors}


def _numel(shape: Any) -> int:
    n = 1
    for d in shape or []:
        n *= int(d)
    return n


# -- compare -------------------------------------------------------------------------


def side_by_side(lines: list[str]) -> list[dict[str, Any]]:
    """Unified-diff lines (from compute.py) as rows of a two-column view; a rendering, not a new diff."""
    rows: list[dict[str, Any]] = []
    la = lb = 0
    minus: list[tuple[int, str]] = []
    plus: list[tuple[int, str]] = []

    def flush() -> None:
        for i in range(max(len(minus), len(plus))):
            a = minus[i] if i < len(minus) else None
            b = plus[i] if i < len(plus) else None
            rows.append(
                {
                    "kind": "change",
                    "na": a[0] if a else None,
                    "a": a[1] if a else None,
                    "nb": b[0] if b else None,
                    "b": b[1] if b else None,
                }
            )
        minus.clear()
        plus.clear()

    for ln in lines:
        if ln.startswith("---") or ln.startswith("+++"):
            continue
        if ln.startswith("@@"):
            flush()
            mm = re.match(r"@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@", ln)
            if mm:
                la, lb = int(mm.group(1)), int(mm.group(2))
            rows.append({"kind": "hunk", "text": ln})
        elif ln.startswith("-"):
            minus.append((la, ln[1:]))
            la += 1
        elif ln.startswith("+"):
            plus.append((lb, ln[1:]))
            lb += 1
        else:
            flush()
            text = ln[1:] if ln.startswith(" ") else ln
            rows.append({"kind": "same", "na": la, "a": text, "nb": lb, "b": text})
            la += 1
            lb += 1
    flush()
    return rows


def compare_page(repo: pygit2.Repository, a: str, b: str) -> dict[str, Any]:
    from tvault_git.diff import compute

    ea, eb = query.lookup(repo, a), query.lookup(repo, b)
    d = compute.diff_entries(repo, query.cheap_ref(repo, ea), query.cheap_ref(repo, eb))
    for s in ("classes", "functions"):
        for it in d[s].get("items", []):
            it["rows"] = side_by_side(it.get("diff") or [])
    if d["architecture"].get("diff"):
        d["architecture"]["rows"] = side_by_side(d["architecture"]["diff"])
    table = metrics_table(repo, [ea.id, eb.id])
    return {"d": d, "ea": ea, "eb": eb, "titles": compute.TITLES, "table": table, "curves": curves(repo, [ea, eb])}


def previous_of(repo: pygit2.Repository, ref: str) -> str | None:
    """The id of the entry ``ref`` is compared with by "vs prev" (None for a first version)."""
    return query.predecessor(repo, query.lookup(repo, ref).id)


def metrics_table(repo: pygit2.Repository, ids: list[str]) -> dict[str, Any]:
    """Result and metrics of several entries in one table, and the same numbers as plot data."""
    es = [query.lookup(repo, i) for i in ids]
    rows: list[dict[str, Any]] = []
    for k, e in enumerate(es, 1):
        m = e.manifest
        rows.append(
            {
                "n": k,
                "e": e,
                "name": m.get("name"),
                "created": m.get("created"),
                "result": m.get("result"),
                "metrics": m.get("metrics") or {},
                "tags": m.get("tags") or {},
                "author": author_name(m),
            }
        )
    keys = sorted({k for r in rows for k in r["metrics"]})
    tag_keys = sorted({k for r in rows for k in r["tags"]})
    plot = {
        "x": [r["n"] for r in rows],
        "ticks": [f"#{r['n']}" for r in rows],
        "labels": [f"#{r['n']} {r['e'].short}" + (f" {r['name']}" if r["name"] else "") for r in rows],
        "series": _series(rows, keys),
        "xlabel": "entry",
    }
    return {"rows": rows, "metric_keys": keys, "tag_keys": tag_keys, "plot": plot, "curves": curves(repo, es)}


def _series(rows: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """Plot lines: the result (when any row has one), then each metric, one value per row."""
    out = (
        [{"label": "result", "values": [as_number(r["result"]) for r in rows]}]
        if any(r["result"] is not None for r in rows)
        else []
    )
    return out + [{"label": k, "values": [as_number(r["metrics"].get(k)) for r in rows]} for k in keys]


# -- models ----------------------------------------------------------------------------


def models_page(repo: pygit2.Repository) -> dict[str, Any]:
    """Model names with counts from the cache (one GROUP BY, not a walk per name) and their aliases."""
    out = []
    for mc in query.model_counts(repo):
        try:
            al = names.aliases(repo, mc.name)
        except TvaultError:
            al = {}
        out.append(
            {
                "name": mc.name,
                "versions": mc.versions,
                "latest": mc.latest,
                "best_result": mc.best_result,
                "best_from": mc.best_from,
                "aliases": sorted(al),
            }
        )
    return {"models": out}


def history_page(repo: pygit2.Repository, name: str) -> dict[str, Any]:
    """Versions of one model, oldest first, with each metric across versions and aliases marked."""
    h = history.model_history(repo, name)
    rows: list[dict[str, Any]] = [
        {
            "v": r.version,
            "e": r.entry,
            "created": r.version.created,
            "aliases": r.version.aliases,
            "result": r.result,
            "fetched": r.fetched,
            "metrics": r.metrics,
            "tags": r.tags,
            "author": r.author,
            "message": r.message,
            "computed": [k for k, eid in h.computed.items() if eid == r.entry.id],
        }
        for r in h.rows
    ]
    for prev, r in itertools.pairwise(rows):
        if prev["fetched"] and r["fetched"]:
            r["prev"] = prev
    keys = sorted({k for r in rows for k in r["metrics"]})
    for prev, r in itertools.pairwise(rows):  # how each number moved since the previous version
        r["moves"] = {k: _move(k, prev["metrics"].get(k), r["metrics"].get(k)) for k in keys}
        r["moves"]["result"] = _move("result", prev["result"], r["result"])
    plot = {
        "x": [r["v"].number for r in rows],
        "labels": [f"v{r['v'].number}" + (" [" + ", ".join(r["aliases"]) + "]" if r["aliases"] else "") for r in rows],
        "marks": [
            {"x": r["v"].number, "text": ", ".join(r["aliases"] + r["computed"])}
            for r in rows
            if r["aliases"] or r["computed"]
        ],
        "series": _series(rows, keys),
        "xlabel": "version",
    }
    return {"name": name, "rows": rows, "keys": keys, "plot": plot}


def _move(key: str, a: Any, b: Any) -> dict[str, Any] | None:
    """Change from the previous version; 'better' follows find's rule (loss-like names improve downwards)."""
    x, y = as_number(a), as_number(b)
    if x is None or y is None or x == y:
        return None
    d = y - x
    return {"text": f"{d:+.3g}", "better": (d < 0) if query.metric_direction(key) == "min" else (d > 0)}


__all__ = [
    "Filters",
    "compare_page",
    "curves",
    "entries_page",
    "entry_page",
    "history_page",
    "metrics_table",
    "models_page",
    "previous_of",
    "side_by_side",
]
