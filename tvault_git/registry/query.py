"""``find``: entries matching conditions, answered from the derived cache.

Every condition is translated to SQL over the cache (see cache.py), so a
query over 100,000 entries touches only the rows it returns. Conditions
combine with AND. Torch-free.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pygit2

from tvault_git.errors import InvalidInput
from tvault_git.gitutil.repo import has_object, open_repo_like
from tvault_git.registry import cache, names, summary
from tvault_git.registry.entries import Entry, resolve, resolve_commit
from tvault_git.spec.values import as_number

# Words that make a metric lower-is-better, matched as whole tokens of its name ("val_loss",
# "top1-error", "valLoss"), never as substrings ("confidence" holds "fid", "uptime" holds "time").
_LOWER_TOKENS = frozenset(
    [
        "loss",
        "losses",
        "err",
        "error",
        "errors",
        "mse",
        "mae",
        "rmse",
        "msle",
        "perplexity",
        "ppl",
        "wer",
        "cer",
        "ter",
        "nll",
        "fid",
        "kid",
        "bpd",
        "bpc",
        "latency",
        "time",
        "duration",
        "seconds",
        "ms",
        "regret",
    ]
)
_TOKEN_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def metric_direction(key: str) -> Literal["min", "max"]:
    """Which way a metric improves when nobody said: "min" when a token of its name is loss-like
    (``loss``, ``err``, ``wer``, ``perplexity``...), else "max" (``acc``, ``confidence``, ``fidelity``).
    The one rule behind ``find --best``, ``git tvault history`` and the web history page."""
    tokens = {t.lower() for t in _TOKEN_RE.findall(key)}
    return "min" if tokens & _LOWER_TOKENS else "max"


def lower_is_better(name: str) -> bool:
    """Whether a smaller value of metric ``name`` is better: ``metric_direction(name) == "min"``."""
    return metric_direction(name) == "min"


_OPS = {"==": "=", "=": "=", "!=": "!=", ">=": ">=", "<=": "<=", ">": ">", "<": "<"}
_WHERE_RE = re.compile(r"^\s*([^<>=!\s](?:[^<>=!]*[^<>=!\s])?)\s*(>=|<=|==|!=|=|>|<)\s*(\S(?:.*\S)?)\s*$")
_AGO_RE = re.compile(r"^(\d+(?:\.\d+)?)[ .]*(second|sec|minute|min|hour|day|week|month|year)s?[ .]*ago$", re.I)
_UNIT_S = {
    "second": 1,
    "sec": 1,
    "minute": 60,
    "min": 60,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
    "month": 30 * 86400,
    "year": 365 * 86400,
}
_COLUMNS = "e.id, e.commit_id, e.idx, e.name, e.res_js, e.metrics, e.tags, e.author, e.email, e.created, e.branch, e.dirty, e.message"
_BUILTIN_SORT = {
    "date": "e.ts",
    "created": "e.ts",
    "time": "e.ts",
    "result": "e.result",
    "name": "e.name",
    "id": "e.id",
    "author": "e.author",
    "index": "e.idx",
}


# The N of NAME@N, as _add_versions numbers it (position by (created, id) among the name's entries).
_VERSION_SQL = (
    "(SELECT count(DISTINCT x.id) FROM entries x WHERE x.name = e.name AND x.ts IS NOT NULL "
    "AND (x.ts < e.ts OR (x.ts = e.ts AND x.id < e.id))) + 1"
)
# Fields every entry has (docs/cli.md, find): usable in --where whatever the registry holds, so a
# typo of one is caught even in an empty registry. column, how the value is read.
_BUILTIN_WHERE: dict[str, tuple[str, str]] = {
    "result": ("e.result", "number"),
    "name": ("e.name", "text"),
    "author": ("e.author", "text"),
    "email": ("e.email", "text"),
    "branch": ("e.branch", "text"),
    "message": ("e.message", "text"),
    "commit": ("e.commit_id", "commit"),
    "dirty": ("e.dirty", "bool"),
    "created": ("e.ts", "date"),
    "date": ("e.ts", "date"),
    "time": ("e.ts", "date"),
    "id": ("e.id", "text"),
    "index": ("e.idx", "number"),
    "version": (_VERSION_SQL, "version"),
}
# KEY spelled with its kind: valid in form whether or not an entry has it yet (an absent key then
# matches nothing, as git's filters do), where a bare KEY no entry has is a typo and an error.
NAMESPACES: dict[str, str] = {"tags": "tag", "metrics": "metric", "config": "config"}
_ANY_KIND = ("metric", "tag", "config")


def key_kinds(key: str) -> tuple[tuple[str, ...], str, bool]:
    """(kv kinds, stored key, namespaced): ``tags.lr`` -> (("tag",), "lr", True); ``lr`` -> any kind.

    ``config.n_layer`` is stored under its full name (the manifest's ``config`` keys carry the prefix).
    """
    ns, dot, rest = key.partition(".")
    if dot and rest and ns in NAMESPACES:
        kind = NAMESPACES[ns]
        return (kind,), key if kind == "config" else rest, True
    return _ANY_KIND, key, False


def _in_kinds(kinds: tuple[str, ...]) -> str:
    return ",".join(f"'{k}'" for k in kinds)  # constants from NAMESPACES, never user text


def parse_number(text: Any, what: str) -> float:
    """A finite number typed by a user (``--min 0.9``, the web's filter box); InvalidInput otherwise."""
    try:
        f = float(text)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(f):
        raise InvalidInput(f"{what} must be a finite number, got {text!r}")
    return f


def parse_tag_value(text: str) -> Any:
    """Read a command-line tag value as the JSON value it spells, else keep the string."""
    if not isinstance(text, str):
        return text
    alias = {"True": True, "False": False, "None": None}
    if text in alias:
        return alias[text]
    try:
        v = json.loads(text)
    except ValueError:
        return text
    if isinstance(v, float) and not math.isfinite(v):
        return text
    return v


def _value_match(raw: Any) -> list[tuple[str, Any]]:
    """(kv column, value) pairs; the stored value equals ``raw`` when any pair matches."""
    out: list[tuple[str, Any]] = [("js", cache.canonical(raw))]
    if isinstance(raw, str):
        v = parse_tag_value(raw)
        out.append(("str", raw))
        if v is not raw:
            out.append(("js", cache.canonical(v)))
    else:
        v = raw
    if not isinstance(v, bool) and isinstance(v, (int, float)):
        out.append(("num", float(v)))
    return out


def _ids_equal(kinds: str, key: str, raw: Any) -> tuple[str, list[Any]]:
    """SQL for the ids whose ``key`` equals ``raw``: one indexed lookup per reading of the value."""
    parts, args = [], []
    for col, val in _value_match(raw):
        parts.append(f"SELECT id FROM kv WHERE kind IN ({kinds}) AND key = ? AND {col} = ?")
        args += [key, val]
    return " UNION ".join(parts), args


def key_of(expr: str) -> str:
    """The KEY of a KEY OP VALUE condition ("" when it is not one)."""
    m = _WHERE_RE.match(expr or "")
    return m.group(1) if m else ""


def _is_date_key(key: str) -> bool:
    return _BUILTIN_WHERE.get(key, ("", ""))[1] == "date"


def _builtin_condition(r: Any, key: str, op: str, val: Any, expr: str) -> tuple[str, list[Any]]:
    """SQL for a condition on a field every entry has (name, author, created, commit...)."""
    col, how = _BUILTIN_WHERE[key]
    sql_op = _OPS[op]
    if how == "number":
        return f"{col} {sql_op} ?", [parse_number(val, f"the value in {expr!r}")]
    if how == "version":  # named entries only
        return f"e.name IS NOT NULL AND e.ts IS NOT NULL AND ({col}) {sql_op} ?", [
            parse_number(val, f"the value in {expr!r}")
        ]
    if how == "date":
        return f"{col} {sql_op} ?", [parse_date(val, f"date in {expr!r}")]
    if op not in ("=", "==", "!="):
        raise InvalidInput(f"{expr!r}: {key} is compared with == or != only")
    if how == "bool":
        b = {"true": 1, "1": 1, "yes": 1, "false": 0, "0": 0, "no": 0}.get(str(val).lower())
        if b is None:
            raise InvalidInput(f"{expr!r}: {key} is true or false")
        return f"coalesce({col}, 0) {sql_op} ?", [b]
    if how == "commit":
        return f"{col} {sql_op} ?", [resolve_commit(r, str(val))]
    if any(c in str(val) for c in "*?["):  # globs, as --name and --branch take them
        return ("" if op != "!=" else "NOT ") + f"coalesce({col}, '') GLOB ?", [str(val)]
    return f"coalesce({col}, '') {sql_op} ?", [str(val)]


def parse_where(expr: str, numeric: bool = True) -> tuple[str, str, Any]:
    """``'acc>=0.9'`` -> ("acc", ">=", 0.9); raises InvalidInput with an example.

    ``numeric=False`` keeps an ordered comparison's value as text (dates: ``created>2024-05-01``).
    """
    m = _WHERE_RE.match(expr or "")
    if not m:
        raise InvalidInput(
            f"bad condition {expr!r}: write KEY OP VALUE, e.g. 'acc>=0.9' or 'loss<0.2' (OP is one of < <= > >= == !=)"
        )
    key, op, val = m.group(1), m.group(2), m.group(3)
    if op in (">", "<", ">=", "<=") and numeric:
        return key, op, parse_number(val, f"the value in {expr!r}")
    return key, op, val


def parse_date(text: str | _dt.datetime | _dt.date, what: str = "date") -> float:
    """ISO dates/times, or relative forms like '2 days ago', 'yesterday', 'now' (git's style)."""
    if isinstance(text, _dt.datetime):
        d = text if text.tzinfo else text.astimezone()
        return d.timestamp()
    if isinstance(text, _dt.date):
        return _dt.datetime(text.year, text.month, text.day).astimezone().timestamp()
    s = str(text).strip()
    now = _dt.datetime.now().astimezone()
    low = s.lower()
    if low == "now":
        return now.timestamp()
    if low in ("today", "yesterday"):
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return (day - _dt.timedelta(days=1 if low == "yesterday" else 0)).timestamp()
    m = _AGO_RE.match(low)
    if m:
        return now.timestamp() - float(m.group(1)) * _UNIT_S[m.group(2)]
    try:
        d = _dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"bad {what} {s!r}: use an ISO date like 2024-05-01 or 2024-05-01T12:00, or '3 days ago'"
        ) from None
    if d.tzinfo is None:
        d = d.astimezone()
    return d.timestamp()


def _metric_kind(con: Any, key: str) -> str:
    """Sort by the metric ``key`` when one has that name, else by the tag."""
    return (
        "metric"
        if con.execute("SELECT 1 FROM kv WHERE kind = 'metric' AND key = ? LIMIT 1", (key,)).fetchone()
        else "tag"
    )


def _sort_column(con: Any, kind: str, key: str) -> str:
    """Numbers sort by value; a key with only text values (``--tag size 2x``) sorts by its text."""
    if con.execute("SELECT 1 FROM kv WHERE kind = ? AND key = ? AND num IS NOT NULL LIMIT 1", (kind, key)).fetchone():
        return "num"
    return "str"


def _regex(pattern: str, text: str | None) -> int:
    return 1 if text is not None and re.search(pattern, text, re.I) else 0


def find(
    repo: Any,
    *,
    commit: str | None = None,
    min_result: float | None = None,
    max_result: float | None = None,
    tags: Sequence[tuple[str, Any]] = (),
    where: Sequence[str] = (),
    name: str | None = None,
    author: str | None = None,
    branch: str | None = None,
    since: Any = None,
    until: Any = None,
    sort: str | None = None,
    ascending: bool = False,
    limit: int | None = None,
    best: str | None = None,
    offset: int = 0,
    with_total: bool = False,
) -> Any:
    """Entries matching every given condition, newest first unless ``sort``/``best`` say otherwise.

    ``offset`` skips rows (pagination: the web UI asks for one page of
    100,000 entries); ``with_total=True`` returns ``(rows, total matching)``
    from the same snapshot of the cache.

    ``best='acc'`` (or 'loss:min', 'acc:max') returns the top entry by that
    metric; without a direction, names like loss/error/perplexity count as
    lower-is-better. Rows are ``summary.EntrySummary``.
    """
    r = open_repo_like(repo)
    conds: list[str] = ["e.missing = 0"]
    args: list[Any] = []
    id_sets: list[tuple[str, list[Any]]] = []  # id subqueries, intersected once (cheaper than one IN each)
    if commit is not None:
        conds.append("e.commit_id = ?")
        args.append(resolve_commit(r, commit))
    else:  # an entry listed on several commits (attached by a hook, copied by a rewrite) shows once
        conds.append("e.shadowed = 0")
    if min_result is not None:
        conds.append("e.result >= ?")
        args.append(parse_number(min_result, "the minimum result"))
    if max_result is not None:
        conds.append("e.result <= ?")
        args.append(parse_number(max_result, "the maximum result"))
    for pair in tags:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise InvalidInput(f"a tag condition is a (key, value) pair, got {pair!r}")
        id_sets.append(_ids_equal("'tag'", str(pair[0]), pair[1]))
    asked: list[tuple[str, str]] = []  # (key, where it was given): checked against the registry's keys
    for expr in where:
        key, op, val = parse_where(expr, numeric=not _is_date_key(key_of(expr)))
        asked.append((key, f"--where {expr!r}"))
        if key in _BUILTIN_WHERE:
            sql_cond, sql_args = _builtin_condition(r, key, op, val, expr)
            conds.append(sql_cond)
            args += sql_args
            continue
        kinds, stored, _ = key_kinds(key)
        kin = _in_kinds(kinds)
        if op in ("=", "==", "!="):
            sub, sargs = _ids_equal(kin, stored, val)
            if op == "!=":
                id_sets.append((f"SELECT id FROM kv WHERE kind IN ({kin}) AND key = ?", [stored]))
                conds.append(f"e.id NOT IN ({sub})")
                args += sargs
            else:
                id_sets.append((sub, sargs))
        else:
            id_sets.append((f"SELECT id FROM kv WHERE kind IN ({kin}) AND key = ? AND num {op} ?", [stored, val]))
    if name is not None:
        conds.append("e.name GLOB ?" if any(c in name for c in "*?[") else "e.name = ?")
        args.append(name)
    if author is not None:
        try:
            re.compile(author)
        except re.error as e:
            raise InvalidInput(f"bad --author pattern {author!r}: {e}") from None
        conds.append("tv_re(?, coalesce(e.author, '') || ' <' || coalesce(e.email, '') || '>')")
        args.append(author)
    if branch is not None:
        conds.append("e.branch GLOB ?" if any(c in branch for c in "*?[") else "e.branch = ?")
        args.append(branch)
    if since is not None:
        conds.append("e.ts >= ?")
        args.append(parse_date(since, "--since date"))
    if until is not None:
        conds.append("e.ts <= ?")
        args.append(parse_date(until, "--until date"))

    desc = not ascending
    if best is not None:
        key, _, direction = best.partition(":")
        if not key or direction not in ("", "min", "max"):
            raise InvalidInput(f"bad --best {best!r}: give a metric name, optionally with :min or :max (e.g. loss:min)")
        sort = key
        asked.append((key, f"--best {best!r}"))
        desc = (direction or metric_direction(key)) == "max"
        if limit is None:
            limit = 1
    if id_sets:
        conds.append("e.id IN (" + " INTERSECT ".join(f"SELECT id FROM ({sub})" for sub, _ in id_sets) + ")")
        for _, sargs in id_sets:
            args += sargs
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidInput(f"limit must be zero or more, got {limit!r}")
    direction = "DESC" if desc else "ASC"
    where_sql = " AND ".join(conds)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInput(f"offset must be zero or more, got {offset!r}")
    if sort is not None and sort not in _BUILTIN_SORT and best is None:
        asked.append((sort, f"--sort {sort!r}"))
    con = cache.refresh(r)
    try:
        _check_keys(con, asked)
        con.create_function("tv_re", 2, _regex, deterministic=True)
        if sort is not None and sort not in _BUILTIN_SORT:
            # Entries that have the metric, in the covering index's order; then,
            # unless asking for the best, the ones without it (newest first).
            kinds, sort, namespaced = key_kinds(sort)
            kind = kinds[0] if namespaced else _metric_kind(con, sort)
            col = _sort_column(con, kind, sort)
            if best is not None and col != "num":
                raise InvalidInput(f"--best {best}: {sort!r} has no numeric values to rank by")
            has = f"SELECT id FROM kv WHERE kind = ? AND key = ? AND {col} IS NOT NULL"
            kv_args = [kind, sort]
            joined = (
                f"FROM entries e JOIN (SELECT id, {col} AS v FROM kv WHERE kind = ? AND key = ? "
                f"AND {col} IS NOT NULL) s ON s.id = e.id WHERE {where_sql}"
            )
            sql = f"SELECT {_COLUMNS} {joined} ORDER BY s.v {direction}, e.ts {direction}, e.id {direction}"
            rows = _fetch(con, sql, kv_args + args, limit, offset)
            if best is None and (limit is None or len(rows) < limit):
                n_has = con.execute(f"SELECT COUNT(*) {joined}", kv_args + args).fetchone()[0] if offset else 0
                sql = f"SELECT {_COLUMNS} FROM entries e WHERE {where_sql} AND e.id NOT IN ({has}) ORDER BY e.ts DESC, e.id DESC"
                rows += _fetch(
                    con, sql, args + kv_args, None if limit is None else limit - len(rows), max(0, offset - n_has)
                )
        else:
            key = _BUILTIN_SORT[sort] if sort is not None else "e.ts"
            sql = (
                f"SELECT {_COLUMNS} FROM entries e WHERE {where_sql} "
                f"ORDER BY ({key}) IS NULL, ({key}) {direction}, e.ts {direction}, e.id {direction}"
            )
            rows = _fetch(con, sql, args, limit, offset)
        total: int | None = None
        if with_total:
            if best is not None and sort is not None and sort not in _BUILTIN_SORT:
                total = len(rows) if offset == 0 else None
            if total is None:
                total = con.execute(f"SELECT COUNT(*) FROM entries e WHERE {where_sql}", args).fetchone()[0]
                if best is not None and limit is not None:
                    total = min(total, limit)
        out = [summary.of_row(row) for row in rows]
        _add_versions(con, out)
    finally:
        con.close()
    return (out, int(total or 0)) if with_total else out


def known_keys(con: Any) -> list[str]:
    """The fields every entry has, and every metric, tag and config key some entry has."""
    keys = {k for (k,) in con.execute("SELECT DISTINCT key FROM kv WHERE kind IN ('metric','tag','config')")}
    return sorted(keys | set(_BUILTIN_WHERE) | set(_BUILTIN_SORT))


def _check_keys(con: Any, asked: list[tuple[str, str]]) -> None:
    """A bare key no entry has is a typo, not an empty answer: say so and list the keys there are.

    Also in an empty registry (the built-in fields are known there too, and a metric nobody logged
    yet is spelled ``metrics.KEY``). ``tags.KEY`` / ``metrics.KEY`` / ``config.KEY`` are valid in
    form: an absent one matches nothing (exit 1 with ``--exit-code``), like git's filters.
    """
    import difflib

    for key, where in asked:
        if key in _BUILTIN_WHERE or key in _BUILTIN_SORT or key_kinds(key)[2]:
            continue
        if con.execute(
            "SELECT 1 FROM kv WHERE kind IN ('metric','tag','config') AND key = ? LIMIT 1", (key,)
        ).fetchone():
            continue
        known = known_keys(con)
        ns, dot, rest = key.partition(".")
        close_ns = difflib.get_close_matches(ns, list(NAMESPACES), n=1) if dot and rest else []
        close = [f"{close_ns[0]}.{rest}"] if close_ns else difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        empty = not con.execute("SELECT 1 FROM entries WHERE missing = 0 LIMIT 1").fetchone()
        why = "the registry has no entries yet" if empty else "no entry has it"
        shown = ", ".join(known[:60]) + (f", ... ({len(known) - 60} more)" if len(known) > 60 else "")
        raise InvalidInput(
            f"unknown key {key!r} in {where}: {why}; {hint}known: {shown} "
            "(tags.KEY, metrics.KEY, config.KEY match nothing while no entry has KEY)"
        )


def _add_versions(con: Any, rows: list[summary.EntrySummary]) -> None:
    """``version`` (the N of NAME@N) on named rows: position by (names.version_time, id) among the name's entries.

    The same numbering as registry.names.versions, computed in SQL over the names on the page only.
    """
    names = sorted({r["name"] for r in rows if r["name"]})
    found: dict[str, int] = {}
    if len(rows) <= 200:  # a page: count each row's elders in the (name, ts, id) index, not every version
        sql = (
            "SELECT count(DISTINCT id) FROM entries WHERE name = ? AND vts IS NOT NULL "
            "AND (vts < ? OR (vts = ? AND id < ?))"
        )
        for r in rows:
            if r["name"]:
                row = con.execute(
                    "SELECT min(vts) FROM entries WHERE id = ? AND name = ?", (r["id"], r["name"])
                ).fetchone()
                if row is not None and row[0] is not None:
                    ts = row[0]
                    found[r["id"]] = con.execute(sql, (r["name"], ts, ts, r["id"])).fetchone()[0] + 1
        names = []
    for i in range(0, len(names), 500):
        chunk = names[i : i + 500]
        marks = ",".join("?" * len(chunk))
        sql = (
            "SELECT id, ROW_NUMBER() OVER (PARTITION BY name ORDER BY vts, id) FROM "
            f"(SELECT id, name, min(vts) AS vts FROM entries WHERE name IN ({marks}) AND vts IS NOT NULL GROUP BY id, name)"
        )
        found.update(dict(con.execute(sql, chunk).fetchall()))
    for r in rows:
        r["version"] = found.get(r["id"]) if r["name"] else None


def _fetch(con: Any, sql: str, args: list[Any], limit: int | None, offset: int = 0) -> list[tuple[Any, ...]]:
    if limit is not None or offset:
        sql, args = sql + " LIMIT ? OFFSET ?", [*args, -1 if limit is None else limit, offset]
    rows: list[tuple[Any, ...]] = con.execute(sql, args).fetchall()
    return rows


def predecessor(repo: Any, entry_id: str) -> str | None:
    """The entry logged just before ``entry_id`` under the same name (any unnamed one when unnamed).

    Why: "compare with the previous version" is the comparison researchers make most.
    """
    r = open_repo_like(repo)
    con = cache.refresh(r)
    try:
        row = con.execute(
            "SELECT name, ts FROM entries WHERE id = ? AND missing = 0 AND shadowed = 0", (entry_id,)
        ).fetchone()
        if row is None or row[1] is None:
            return None
        name, ts = row
        prev = con.execute(
            "SELECT id FROM entries WHERE missing = 0 AND shadowed = 0 AND name IS ? AND (ts < ? OR (ts = ? AND id < ?)) "
            "ORDER BY ts DESC, id DESC LIMIT 1",
            (name, ts, ts, entry_id),
        ).fetchone()
    finally:
        con.close()
    return None if prev is None else str(prev[0])


def with_predecessor(repo: Any, ids: Sequence[str]) -> set[str]:
    """Those of ``ids`` that have a predecessor (see ``predecessor``), in one query for a page of rows.

    Why: a "vs prev" link on a first version leads nowhere.
    """
    r = open_repo_like(repo)
    if not ids:
        return set()
    con = cache.refresh(r)
    try:
        found: set[str] = set()
        ids = list(ids)
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            sql = (
                "SELECT e.id FROM entries e WHERE e.id IN (" + ",".join("?" * len(chunk)) + ") AND e.missing = 0 "
                "AND e.shadowed = 0 AND EXISTS (SELECT 1 FROM entries p WHERE p.missing = 0 AND p.shadowed = 0 "
                "AND p.name IS e.name AND (p.ts < e.ts OR (p.ts = e.ts AND p.id < e.id)))"
            )
            found.update(x for (x,) in con.execute(sql, chunk))
    finally:
        con.close()
    return found


_HEX40 = re.compile(r"^[0-9a-f]{40}$")


def lookup(repo: pygit2.Repository, ref: str) -> Entry:
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
            return Entry(ref, row[0], int(row[1]), row[2], _repo=repo)
    return resolve(repo, ref)


@dataclass(frozen=True)
class ModelCount:
    """One model name as the cache counts it: versions, newest ``created``, and the result of its
    best version by the rule ``NAME@best`` resolves with (a stored ``best`` alias, else the highest result)."""

    name: str
    versions: int
    latest: str | None
    best_result: float | None
    best_from: str = "result"  # "alias": a stored best alias names it


def model_counts(repo: pygit2.Repository) -> list[ModelCount]:
    """Every model name with its counts, by name, in one GROUP BY (not a walk over the notes per name)."""
    con = cache.refresh(repo)
    try:
        rows = con.execute(
            "SELECT name, COUNT(*), MAX(created), MAX(result) FROM entries "
            "WHERE missing=0 AND shadowed=0 AND name IS NOT NULL GROUP BY name ORDER BY name"
        ).fetchall()
        out = []
        recs = names.read_records(repo)  # one read of the alias ref for every name
        for name, n, last, top in rows:
            rec = recs.get((str(name), "best"))
            best_id = rec.entry if rec is not None else None
            if best_id is None:
                out.append(ModelCount(str(name), int(n), last, top))
                continue
            hit = con.execute("SELECT result FROM entries WHERE id=? AND missing=0", (best_id,)).fetchone()
            out.append(ModelCount(str(name), int(n), last, as_number(hit[0]) if hit else None, "alias"))
    finally:
        con.close()
    return out


def cheap_ref(repo: pygit2.Repository, e: Entry) -> str:
    """``COMMIT:INDEX`` (one note read) when the training commit is here, else the id (a walk over all notes).

    Why: diff resolves refs itself; a full id costs a walk over every note, which
    made exporting comparisons quadratic in the number of entries.
    """
    return f"{e.commit}:{e.index}" if has_object(repo, e.commit) else e.id
