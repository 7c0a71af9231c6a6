"""``git tvault ui``: a read-only web view of the registry, served live or written as a static site.

Why a server at all: researchers compare runs by looking (sortable tables,
metric plots, side-by-side diffs). Everything is read from the git repository
on each request (the entries table through the SQLite cache keyed on the notes
tip), so new entries show up without a restart and there is no database to
run. Every registry value reaches the page through Jinja2 autoescaping (or
Pygments, which escapes too); plot data travels as JSON in a
``<script type="application/json">`` block via ``tojson``, which escapes
``<``, ``>``, ``&`` and quotes. Only GET routes exist. Torch is imported only
by the pages that need tensor values (weights diff numbers, the safetensors
download).
"""

from __future__ import annotations

import datetime as _dt
import hmac
import itertools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import pygit2

try:
    from flask import Flask, Response, g, render_template, request, send_file
except ModuleNotFoundError as e:  # the optional ``ui`` extra: say what to install, not "no module flask"
    raise ModuleNotFoundError(
        f"tvault_git.web needs the optional 'ui' extra ({e.name} is missing): pip install 'tvault-git[ui]'",
        name=e.name,
    ) from e
from markupsafe import Markup

from tvault_git.capture.live import capture_gaps
from tvault_git.capture.values import flat_configuration
from tvault_git.errors import CorruptEntry, InvalidInput, RefNotFound, StorageError, TvaultError
from tvault_git.registry import cache, entries, query, series
from tvault_git.spec.format import ARCHITECTURE, CONFIGURATION, NAME_RE, OPTIMIZER, PATCH, SCHEDULER, SOURCE_INDEX
from tvault_git.spec.values import as_number, iso_to_instant
from tvault_git.textfmt import fmt_config, fmt_value, human_bytes, short_date

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.join(HERE, "templates")
STATIC = os.path.join(HERE, "static")
PER_PAGE = 50
MAX_PER_PAGE = 500
MAX_COMPARE = 50
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEX40 = re.compile(r"^[0-9a-f]{40}$")


# -- links: the same templates link to routes (live) or to files (export) -----


class Links:
    """URLs of the live app; ``ExportLinks`` maps the same calls onto relative file names."""

    live = True

    def static(self, path: str) -> str:
        return "/static/" + path

    def entries(self, page: int = 1, **params: Any) -> str:
        q = [(k, v) for k, v in params.items() if v not in (None, "", [], ())]
        flat: list[tuple[str, Any]] = []
        for k, v in q:
            flat += [(k, x) for x in v] if isinstance(v, (list, tuple)) else [(k, v)]
        if page > 1:
            flat.append(("page", page))
        return "/" + ("?" + urlencode(flat) if flat else "")

    def entry(self, eid: str) -> str:
        return "/entry/" + quote(eid, safe="")

    def compare(self, a: str, b: str) -> str:
        return "/compare?" + urlencode([("a", a), ("b", b)])

    def compare_many(self, ids: Iterable[str]) -> str:
        return "/compare?" + urlencode([("ids", i) for i in ids])

    def compare_prev(self, eid: str) -> str | None:
        return "/compare?" + urlencode([("a", eid)])

    def models(self) -> str:
        return "/models"

    def model(self, name: str) -> str:
        return "/model/" + quote(name, safe="")

    def download(self, eid: str) -> str | None:
        return "/download/" + quote(eid, safe="") + ".safetensors"


class ExportLinks(Links):
    """Flat, relative file names, so the exported folder works from any URL or from disk."""

    live = False

    def __init__(self, weights: bool = False) -> None:
        self.weights = weights

    def static(self, path: str) -> str:
        return "static/" + path

    def entries(self, page: int = 1, **params: Any) -> str:
        return "index.html" if page <= 1 else f"entries-{page}.html"

    def entry(self, eid: str) -> str:
        return f"entry-{_safe(eid)}.html"

    def compare(self, a: str, b: str) -> str:
        return f"compare-{_safe(a)}-{_safe(b)}.html"

    def compare_many(self, ids: Iterable[str]) -> str:
        return "#"

    def compare_prev(self, eid: str) -> str | None:
        return None  # the entry page links its predecessor comparison by file name

    def models(self) -> str:
        return "models.html"

    def model(self, name: str) -> str:
        return f"model-{_safe(name)}.html"

    def download(self, eid: str) -> str | None:
        return f"weights/{_safe(eid)}.safetensors" if self.weights else None


def _safe(s: str) -> str:
    """A file-name-safe spelling of a registry string (names from remotes are not trusted)."""
    return s if NAME_RE.match(s) else "x" + s.encode("utf-8").hex()


# -- data -----------------------------------------------------------------------


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
        num = lambda s, what: None if s == "" else query._number(s, what)  # noqa: E731
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


def open_repo_at(path: str) -> pygit2.Repository:
    from tvault_git.gitutil.repo import open_repo

    return open_repo(path)


def lookup(repo: pygit2.Repository, ref: str) -> entries.Entry:
    """An entry by full id straight from the cache (no walk over all notes), else by any ref."""
    ref = ref.strip().lower()
    if _HEX40.match(ref):
        con = cache.refresh(repo)
        try:
            row = con.execute(
                "SELECT commit_id, idx, name FROM entries WHERE id=? AND missing=0 AND shadowed=0", (ref,)
            ).fetchone()
        finally:
            con.close()
        if row is not None:
            return entries.Entry(ref, row[0], int(row[1]), row[2], _repo=repo)
    return entries.resolve(repo, ref)


def entries_page(
    repo: pygit2.Repository, f: Filters, page: int, per: int, L: Links, error: str | None = None
) -> dict[str, Any]:
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


def _commit_info(repo: pygit2.Repository, sha: str | None) -> dict[str, Any] | None:
    """The training commit as git knows it; None when it is not in this clone (a pulled registry),
    or git cannot decode it (an ``encoding`` header Python does not know)."""
    try:
        return _commit_info_of(repo, sha)
    except (LookupError, UnicodeDecodeError, ValueError):
        return None


def _commit_info_of(repo: pygit2.Repository, sha: str | None) -> dict[str, Any] | None:
    if not sha:
        return None
    try:
        c = repo.get(sha)
    except (ValueError, pygit2.GitError):
        c = None
    if c is None or c.type != pygit2.enums.ObjectType.COMMIT:
        return None
    when = _dt.datetime.fromtimestamp(c.commit_time, _dt.timezone(_dt.timedelta(minutes=c.commit_time_offset)))
    return {
        "id": str(c.id),
        "message": c.message,
        "subject": c.message.split("\n", 1)[0],
        "author": c.author.name,
        "email": c.author.email,
        "date": when.isoformat(),
    }


def _highlight(text: str, lexer: str = "python") -> Markup:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name

    return Markup(highlight(text, get_lexer_by_name(lexer), HtmlFormatter(cssclass="hl")))


def entry_page(repo: pygit2.Repository, ref: str) -> dict[str, Any]:
    e = lookup(repo, ref)
    m = e.manifest
    tree = e.tree()
    src = entries.read_json(repo, e.id, SOURCE_INDEX) or {}
    objects = []
    for o in src.get("objects") or []:
        text = (entries.read_blob(repo, tree, str(o.get("path", ""))) or b"").decode("utf-8", "replace")
        objects.append({**o, "html": _highlight(text)})
    weights = entries.weight_records(repo, e.id)
    wrows = [
        {
            "name": n,
            "shape": r.get("shape"),
            "dtype": r.get("dtype"),
            "nbytes": int(r.get("nbytes") or 0),
            "size": human_bytes(int(r.get("nbytes") or 0)),
            "numel": _numel(r.get("shape")),
        }
        for n, r in weights.items()
    ]
    arch = (entries.read_blob(repo, tree, ARCHITECTURE) or b"").decode("utf-8", "replace")
    opt = entries.read_json(repo, e.id, OPTIMIZER)
    sched = entries.read_json(repo, e.id, SCHEDULER)
    groups, group_keys = [], []
    if isinstance(opt, dict):
        groups = [g for g in (opt.get("param_groups") or []) if isinstance(g, dict)]
        group_keys = sorted({k for g in groups for k in g if k != "params"})
    patch = None
    if m.get("dirty"):
        raw = entries.read_blob(repo, tree, PATCH)
        patch = _highlight(raw.decode("utf-8", "replace"), "diff") if raw else None
    return {
        "e": e,
        "m": m,
        "author": m.get("author") or {},
        "commit": _commit_info(repo, e.commit),
        "objects": objects,
        "external": src.get("external") or [],
        "missing": src.get("missing") or [],
        "capture_gaps": capture_gaps(m.get("missing") or src.get("missing") or [], m.get("drift") or []),
        "configuration": flat_configuration(entries.read_json(repo, e.id, CONFIGURATION)),
        "weights": wrows,
        "weights_total": human_bytes(sum(w["nbytes"] for w in wrows)),
        "architecture": arch,
        "optimizer": opt,
        "groups": groups,
        "group_keys": group_keys,
        "scheduler": sched,
        "patch": patch,
        "previous": query.predecessor(repo, e.id),
        "curves": curves(repo, [e]),
    }


MAX_CURVES = 24  # plots per page: a run logging hundreds of metrics gets the first ones, by name


def curves(repo: pygit2.Repository, es: list[entries.Entry]) -> dict[str, Any]:
    """Learning curves (step metrics) of entries: one plot per metric with every entry's series
    overlaid on the union of their steps. A damaged series is reported, not plotted."""
    found, errors = [], []
    for k, e in enumerate(es, 1):
        try:
            s = series.read(repo, e.id)
        except CorruptEntry as err:
            errors.append(str(err))
            continue
        if s is not None:
            found.append((k, e, s.to_json()))
    names = sorted({m for _, _, s in found for m in s["columns"]})
    plots = []
    for name in names[:MAX_CURVES]:
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
    return {"plots": plots, "more": max(0, len(names) - MAX_CURVES), "errors": errors}


def _numel(shape: Any) -> int:
    n = 1
    for d in shape or []:
        n *= int(d)
    return n


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


def _fast_ref(repo: pygit2.Repository, e: entries.Entry) -> str:
    """``COMMIT:INDEX`` (one note read) when the training commit is here, else the id (a walk over all notes).

    Why: diff resolves refs itself; a full id costs a walk over every note, which
    made exporting comparisons quadratic in the number of entries.
    """
    try:
        here = repo.get(e.commit) is not None
    except (ValueError, pygit2.GitError):
        here = False
    return f"{e.commit}:{e.index}" if here else e.id


def compare_page(repo: pygit2.Repository, a: str, b: str) -> dict[str, Any]:
    from tvault_git.diff import compute

    ea, eb = lookup(repo, a), lookup(repo, b)
    d = compute.diff_entries(repo, _fast_ref(repo, ea), _fast_ref(repo, eb))
    for s in ("classes", "functions"):
        for it in d[s].get("items", []):
            it["rows"] = side_by_side(it.get("diff") or [])
    if d["architecture"].get("diff"):
        d["architecture"]["rows"] = side_by_side(d["architecture"]["diff"])
    table = metrics_table(repo, [ea.id, eb.id])
    return {"d": d, "ea": ea, "eb": eb, "titles": compute.TITLES, "table": table, "curves": curves(repo, [ea, eb])}


def metrics_table(repo: pygit2.Repository, ids: list[str]) -> dict[str, Any]:
    """Result and metrics of several entries in one table, and the same numbers as plot data."""
    entries = [lookup(repo, i) for i in ids]
    rows = []
    for k, e in enumerate(entries, 1):
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
                "author": (m.get("author") or {}).get("name"),
            }
        )
    keys = sorted({k for r in rows for k in r["metrics"]})
    tag_keys = sorted({k for r in rows for k in r["tags"]})
    series = (
        [{"label": "result", "values": [_plot_num(r["result"]) for r in rows]}]
        if any(r["result"] is not None for r in rows)
        else []
    )
    series += [{"label": k, "values": [_plot_num(r["metrics"].get(k)) for r in rows]} for k in keys]
    plot = {
        "x": [r["n"] for r in rows],
        "ticks": [f"#{r['n']}" for r in rows],
        "labels": [f"#{r['n']} {r['e'].short}" + (f" {r['name']}" if r["name"] else "") for r in rows],
        "series": series,
        "xlabel": "entry",
    }
    return {"rows": rows, "metric_keys": keys, "tag_keys": tag_keys, "plot": plot, "curves": curves(repo, entries)}


_plot_num = as_number


def models_page(repo: pygit2.Repository) -> dict[str, Any]:
    """Model names with counts from the cache (one GROUP BY, not a walk per name) and their aliases."""
    from tvault_git.registry import names

    con = cache.refresh(repo)
    try:
        rows = con.execute(
            "SELECT name, COUNT(*), MAX(created), MAX(result) FROM entries WHERE missing=0 AND shadowed=0 AND name IS NOT NULL "
            "GROUP BY name ORDER BY name"
        ).fetchall()
    finally:
        con.close()
    out = []
    for name, n, last, best in rows:
        try:
            al = names.aliases(repo, name)
        except TvaultError:
            al = {}
        out.append({"name": name, "versions": n, "latest": last, "best_result": best, "aliases": sorted(al)})
    return {"models": out}


def history_page(repo: pygit2.Repository, name: str) -> dict[str, Any]:
    """Versions of one model, oldest first, with each metric across versions and aliases marked."""
    from tvault_git.registry import names

    by_id = {r["id"]: r for r in query.find(repo, name=name)} if not any(c in name for c in "*?[") else {}
    try:
        vs = names.versions(repo, name)
    except RefNotFound:
        if not by_id:
            raise
        vs = _versions_from_manifests(repo, name, list(by_id.values()))
    rows = []
    for v in vs:
        r = by_id.get(v.entry.id)
        fetched = True
        if r is None:
            try:
                m = v.entry.manifest
            except TvaultError:  # indexed (pulled notes) but its objects are not fetched yet
                m, fetched = {}, False
            r = {
                "result": m.get("result"),
                "metrics": m.get("metrics") or {},
                "tags": m.get("tags") or {},
                "author": (m.get("author") or {}).get("name"),
                "message": m.get("message"),
            }
        rows.append(
            {
                "v": v,
                "e": v.entry,
                "created": v.created,
                "aliases": v.aliases,
                "result": r.get("result"),
                "fetched": fetched,
                "metrics": r.get("metrics") or {},
                "tags": r.get("tags") or {},
                "author": r.get("author"),
                "message": r.get("message"),
            }
        )
    for prev, r in itertools.pairwise(rows):
        if prev["fetched"] and r["fetched"]:
            r["prev"] = prev
    computed: dict[str, str] = {}  # NAME@latest and NAME@best, by models' own rule
    if rows:
        computed["latest"] = rows[-1]["e"].id
        top = names.best(vs)  # names.resolve(name, "best") would walk every note again
        if top is not None and not any("best" in v.aliases for v in vs):  # a stored best wins
            computed["best"] = top.entry.id
    for r in rows:
        r["computed"] = [k for k, eid in computed.items() if eid == r["e"].id]
    keys = sorted({k for r in rows for k in r["metrics"]})
    for prev, r in itertools.pairwise(rows):  # how each number moved since the previous version
        r["moves"] = {k: _move(k, prev["metrics"].get(k), r["metrics"].get(k)) for k in keys}
        r["moves"]["result"] = _move("result", prev["result"], r["result"])
    series = (
        [{"label": "result", "values": [_plot_num(r["result"]) for r in rows]}]
        if any(r["result"] is not None for r in rows)
        else []
    )
    series += [{"label": k, "values": [_plot_num(r["metrics"].get(k)) for r in rows]} for k in keys]
    plot = {
        "x": [r["v"].number for r in rows],
        "labels": [f"v{r['v'].number}" + (" [" + ", ".join(r["aliases"]) + "]" if r["aliases"] else "") for r in rows],
        "marks": [
            {"x": r["v"].number, "text": ", ".join(r["aliases"] + r["computed"])}
            for r in rows
            if r["aliases"] or r["computed"]
        ],
        "series": series,
        "xlabel": "version",
    }
    return {"name": name, "rows": rows, "keys": keys, "plot": plot}


def _move(key: str, a: Any, b: Any) -> dict[str, Any] | None:
    """Change from the previous version; 'better' follows find's rule (loss-like names improve downwards)."""
    x, y = _plot_num(a), _plot_num(b)
    if x is None or y is None or x == y:
        return None
    d = y - x
    return {"text": f"{d:+.3g}", "better": (d < 0) if query.metric_direction(key) == "min" else (d > 0)}


def _versions_from_manifests(repo: pygit2.Repository, name: str, rows: list[dict[str, Any]]) -> list[Any]:
    """Versions for entries whose manifests carry ``name`` but whose note lines do not (older writers).

    Same numbering rule as names.versions: oldest first by (created, entry id).
    """
    from tvault_git.registry import names

    rows = sorted(rows, key=lambda r: (iso_to_instant(r["created"]) or 0.0, r["id"]))
    return [
        names.Version(k + 1, entries.Entry(r["id"], r["commit"], r["index"], name, _repo=repo), r["created"] or "", [])
        for k, r in enumerate(rows)
    ]


# -- the app --------------------------------------------------------------------


def _jinja_setup(app: Flask) -> None:
    app.jinja_env.autoescape = True  # every template, whatever its extension
    app.jinja_env.filters["v"] = lambda x: "-" if x is None else fmt_value(x)
    app.jinja_env.filters["cfg"] = fmt_config
    app.jinja_env.filters["date"] = short_date
    app.jinja_env.filters["short"] = lambda s: (s or "")[:10]
    app.jinja_env.filters["shape"] = lambda s: (
        "(" + ", ".join(str(d) for d in (s or [])) + ("," if s and len(s) == 1 else "") + ")"
    )
    app.jinja_env.filters["num"] = lambda x: "-" if x is None else (f"{x:.4g}" if isinstance(x, float) else str(x))
    app.jinja_env.filters["json"] = lambda x: json.dumps(x, sort_keys=True)


LOOPBACK_NAMES = ["localhost", "127.0.0.1", "::1", "[::1]"]
TOKEN_COOKIE = "tvault_token"


def create_app(repo_path: str = ".", *, host: str | None = None, token: str | None = None) -> Flask:
    """The live app over the repository at ``repo_path`` (read on every request).

    DNS rebinding: a web page whose name re-resolves to 127.0.0.1 would otherwise read every page
    and weight. Only loopback names and the bound ``host`` are answered (``TRUSTED_HOSTS``; other
    ``Host`` headers get 400). ``token``: required on every request (``?token=`` once, then a
    cookie), for a server bound to a non-loopback address, where any Host must be allowed.
    """
    app = Flask("tvault_git.web", template_folder=TEMPLATES, static_folder=STATIC, static_url_path="/static")
    allowed = {h.strip("[]").lower() for h in LOOPBACK_NAMES + ([host] if host else [])}
    _jinja_setup(app)
    path = open_repo_at(repo_path).path  # fail fast, one line, when this is not a repository
    L = Links()

    def repo() -> pygit2.Repository:
        return pygit2.Repository(path)

    def page(template: str, status: int = 200, **ctx: Any) -> Response:
        return Response(render_template(template, L=L, **ctx), status=status, mimetype="text/html")

    @app.errorhandler(TvaultError)
    def _tvault_error(e: TvaultError) -> Response:
        status = 404 if isinstance(e, RefNotFound) else 400
        return page("error.html", status=status, message=str(e))

    @app.errorhandler(404)
    def _not_found(e: Any) -> Response:
        return page("error.html", status=404, message="no such page")

    @app.before_request
    def _check_host_and_token() -> Response | None:
        if token is None:
            raw = request.headers.get("Host", "")
            name = raw[1 : raw.index("]")] if raw.startswith("[") and "]" in raw else raw.rsplit(":", 1)[0]
            if name.lower() not in allowed:
                return Response(
                    "tvault ui answers only its own address (localhost)\n", status=400, mimetype="text/plain"
                )
            return None
        given = request.args.get("token")
        if given is not None and hmac.compare_digest(given, token):
            g.tvault_set_token = True  # remembered in a cookie (after_request): later links need no token
            return None
        if hmac.compare_digest(request.cookies.get(TOKEN_COOKIE, ""), token):
            return None
        return page(
            "error.html", status=403, message="this server needs its access token: open the URL it printed at start"
        )

    @app.after_request
    def _headers(resp: Response) -> Response:
        if token is not None and g.get("tvault_set_token"):
            resp.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Frame-Options"] = "DENY"
        return resp

    @app.get("/")
    def entries() -> Response:
        f = Filters.from_args(request.args)
        pg = _int(request.args.get("page"), 1)
        per = min(_int(request.args.get("per"), PER_PAGE), MAX_PER_PAGE)
        ctx = entries_page(repo(), f, pg, per, L)
        return page("entries.html", status=400 if ctx["error"] else 200, **ctx)

    @app.get("/entry/<ref>")
    def entry(ref: str) -> Response:
        return page("entry.html", **entry_page(repo(), ref))

    @app.get("/compare")
    def compare() -> Response:
        r = repo()
        ids = [i for v in request.args.getlist("ids") for i in v.split(",") if i.strip()]
        a, b = request.args.get("a"), request.args.get("b")
        if a and not b:
            prev = query.predecessor(r, lookup(r, a).id)
            if prev is None:
                raise RefNotFound(f"entry {a[:10]} has no earlier entry with the same name to compare with")
            a, b = prev, a
        if a and b:
            return page("compare.html", **compare_page(r, a, b))
        if len(ids) == 2:
            return page("compare.html", **compare_page(r, ids[0], ids[1]))
        if len(ids) < 2:
            raise InvalidInput("pick at least two entries to compare")
        if len(ids) > MAX_COMPARE:
            raise InvalidInput(f"pick at most {MAX_COMPARE} entries to compare")
        return page("compare_many.html", t=metrics_table(r, ids))

    @app.get("/models")
    def models_index() -> Response:
        return page("models.html", **models_page(repo()))

    @app.get("/model/<path:name>")
    def model(name: str) -> Response:
        return page("history.html", **history_page(repo(), name))

    @app.get("/download/<eid>.safetensors")
    def download(eid: str) -> Response:
        from tvault_git.api import read

        r = repo()
        e = lookup(r, eid)
        fd, tmp = tempfile.mkstemp(suffix=".safetensors")
        os.close(fd)
        try:
            read.export(e.id, tmp, r)
            fh = open(tmp, "rb")
        finally:
            os.unlink(tmp)  # the open handle keeps the bytes until the response is sent
        name = f"{e.manifest.get('name') or 'entry'}-{e.short}.safetensors"
        return send_file(
            fh, mimetype="application/octet-stream", as_attachment=True, download_name=_safe_download(name)
        )

    return app


def _safe_download(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def _int(v: Any, default: int) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


# -- static export ----------------------------------------------------------------


EXPORT_PER_PAGE = 1000  # the export sorts and filters a page in the browser: make pages big


def export_site(
    repo_path: str,
    out_dir: str,
    weights: bool = False,
    compare: bool = True,
    per: int = EXPORT_PER_PAGE,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Write every page as files with relative links: entries (paginated), entries, compare-with-previous, models.

    Why static: a team can publish its model history on any static host. The
    entries table is paginated into files of 1,000 rows, newest first; each page sorts
    and filters itself in the browser (app.js), since there is no server to ask.
    """
    repo = open_repo_at(repo_path)
    app = Flask("tvault_git.web_export", template_folder=TEMPLATES, static_folder=None)
    _jinja_setup(app)
    L = ExportLinks(weights=weights)
    os.makedirs(out_dir, exist_ok=True)
    shutil.copytree(STATIC, os.path.join(out_dir, "static"), dirs_exist_ok=True)
    counts = {"pages": 0, "entries": 0, "compare": 0, "models": 0, "weights": 0, "skipped": 0}

    def write(file_name: str, template: str, **ctx: Any) -> None:
        with app.app_context():
            html = render_template(template, L=L, **ctx)
        try:
            with open(os.path.join(out_dir, file_name), "w", encoding="utf-8") as fh:
                fh.write(html)
        except OSError as e:
            raise StorageError(f"could not write {file_name} in {out_dir}: {e.strerror or e}") from None
        counts["pages"] += 1

    f = Filters()
    first = entries_page(repo, f, 1, per, L)
    for p in range(1, first["pages"] + 1):
        ctx = first if p == 1 else entries_page(repo, f, p, per, L)
        write(L.entries(p), "entries.html", **ctx)
    for row in query.find(repo):
        eid = row["id"]
        if progress:
            progress(eid)
        try:  # per-entry boundary: one odd entry is left out (and counted), the site is still whole
            ctx = entry_page(repo, eid)
        except (StorageError, OSError):
            raise
        except TvaultError:
            counts["skipped"] += 1
            continue
        if not compare:
            ctx["previous"] = None
        write(L.entry(eid), "entry.html", **ctx)
        counts["entries"] += 1
        if compare and ctx["previous"]:
            try:
                cmp = compare_page(repo, ctx["previous"], eid)
            except (StorageError, OSError):
                raise
            except TvaultError:
                cmp = None
            if cmp is not None:
                write(L.compare(ctx["previous"], eid), "compare.html", **cmp)
                counts["compare"] += 1
        if weights:
            from tvault_git.api import read

            os.makedirs(os.path.join(out_dir, "weights"), exist_ok=True)
            try:
                read.export(eid, os.path.join(out_dir, L.download(eid) or ""), repo)
            except (StorageError, OSError):
                raise
            except TvaultError:
                continue
            counts["weights"] += 1
    mp = models_page(repo)
    write(L.models(), "models.html", **mp)
    for mrow in mp["models"]:
        write(L.model(mrow["name"]), "history.html", **history_page(repo, mrow["name"]))
        counts["models"] += 1
    return counts


__all__ = ["ExportLinks", "Filters", "Links", "create_app", "export_site", "side_by_side"]
