"""A derived, rebuildable SQLite index of entry metadata in ``.git/tvault/``.

Why: ``find`` on 100,000 entries cannot read 100,000 manifests per run. The
git objects stay the single source of truth; this file only remembers what
they said, keyed on the tip of ``refs/notes/tvault``. Each run compares the
tip: when it moved (a local log, a fetch, a notes merge), the notes trees of
the old and new tips are diffed and only the changed commits' notes are
re-read, so the first run after new entries arrive is never stale. Entries
indexed before their objects arrived are retried on every run. Deleting the
file is always safe; a damaged or foreign file is rebuilt.

Torch-free.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from typing import Any

import pygit2

from tvault_git.errors import RefNotFound, TvaultError
from tvault_git.gitutil.repo import adjust_shared_perm, common_dir, shared_umask
from tvault_git.registry import notes
from tvault_git.registry.entries import read_manifest, read_manifests
from tvault_git.registry.names import version_time
from tvault_git.spec.manifest import Manifest, author_email, author_name
from tvault_git.spec.values import as_number, iso_to_instant

SCHEMA = "8"  # 8: vts, the instant that orders versions (names.version_time: published=, else created); 7: damaged entries get a row (missing=2, problem); rows of entries whose objects are missing keep the note's name and created; name index
# 5: configuration values (kind "config") in kv; 4: an entry may be listed on several commits (hooks, rewrites): key (id, commit_id), shadowed
FILE_NAME = "index.sqlite"

_DDL = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS entries(
    id TEXT NOT NULL, commit_id TEXT NOT NULL, seq INTEGER, idx INTEGER,
    missing INTEGER NOT NULL DEFAULT 0, base TEXT, shadowed INTEGER NOT NULL DEFAULT 0,
    name TEXT, result REAL, res_js TEXT, created TEXT, ts REAL, author TEXT, email TEXT,
    branch TEXT, dirty INTEGER, message TEXT, tags TEXT, metrics TEXT, problem TEXT, vts REAL,
    PRIMARY KEY (id, commit_id));
CREATE INDEX IF NOT EXISTS entries_commit ON entries(commit_id);
CREATE INDEX IF NOT EXISTS entries_result ON entries(result);
CREATE INDEX IF NOT EXISTS entries_ts ON entries(ts);
CREATE INDEX IF NOT EXISTS entries_name ON entries(name, vts, id);
CREATE TABLE IF NOT EXISTS kv(id TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, num REAL, str TEXT, js TEXT);
CREATE INDEX IF NOT EXISTS kv_num ON kv(kind, key, num, id);
CREATE INDEX IF NOT EXISTS kv_str ON kv(kind, key, str, id);
CREATE INDEX IF NOT EXISTS kv_js ON kv(kind, key, js, id);
CREATE INDEX IF NOT EXISTS kv_id ON kv(id, kind, key, num);
"""


def cache_path(repo: pygit2.Repository) -> str:
    return os.path.join(common_dir(repo), "tvault", FILE_NAME)


def _notes_tip(repo: pygit2.Repository) -> pygit2.Commit | None:
    """The notes commit (CorruptEntry, one line, when the ref points at something else)."""
    tip, _ = notes._notes_tree(repo)
    return None if tip is None else repo[tip].peel(pygit2.Commit)


def _connect(path: str | None) -> sqlite3.Connection:
    con = sqlite3.connect(path or ":memory:", timeout=60, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL" if path else "PRAGMA journal_mode=MEMORY")
    con.execute("PRAGMA synchronous=NORMAL")
    con.executescript(_DDL)
    return con


def _open(repo: pygit2.Repository) -> sqlite3.Connection:
    """The on-disk cache, rebuilt when damaged; in memory where .git is read-only."""
    path = cache_path(repo)
    try:
        with shared_umask(repo):  # teammates in a shared repository update the same cache file
            os.makedirs(os.path.dirname(path), exist_ok=True)
            con = _connect(path)
        for suffix in ("", "-wal", "-shm"):  # SQLite creates its files 0644 whatever the umask
            if os.path.exists(path + suffix):
                adjust_shared_perm(repo, path + suffix)
        row = con.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is not None and row[0] != SCHEMA:
            con.close()
            raise sqlite3.DatabaseError("schema changed")
        return con
    except sqlite3.DatabaseError:
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(path + suffix)
            except OSError:
                pass
        try:
            return _connect(path)
        except (sqlite3.Error, OSError):
            return _connect(None)
    except (sqlite3.Error, OSError):
        return _connect(None)


def canonical(v: Any) -> str:
    """Compact, key-sorted JSON: equal values give equal text. Scalars skip the encoder (what
    json.dumps would write), which building a 100,000-entry cache otherwise calls 800,000 times."""
    t = type(v)
    if t is str:
        return json.dumps(v)
    if t is float and math.isfinite(v):
        return float.__repr__(v)
    if t is int:
        return int.__repr__(v)
    if v is None or t is bool:
        return "null" if v is None else ("true" if v else "false")
    return _CANON.encode(v)


_CANON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))  # json.dumps would build one per call


def _row(repo: pygit2.Repository, entry_id: str) -> tuple[dict[str, Any] | str | None, list[tuple[Any, ...]]]:
    """Manifest fields and kv rows of one entry; (None, []) when its objects are not here."""
    try:
        return _fields(entry_id, read_manifest(repo, entry_id))
    except RefNotFound:
        return None, []
    except TvaultError as e:
        return _fields(entry_id, e)


def _fields(
    entry_id: str, m: Manifest | TvaultError | None
) -> tuple[dict[str, Any] | str | None, list[tuple[Any, ...]]]:
    """(fields, kv rows); fields None: objects not here; a string: why the entry cannot be read.

    The per-entry error boundary of the cache: one damaged entry is a row saying so, never a
    failed build (which would take ``log``, ``find`` and the web UI down for every entry).
    """
    if m is None:
        return None, []
    if isinstance(m, TvaultError):
        return str(m) or type(m).__name__, []
    tags: dict[str, Any] = m.get("tags") or {} if isinstance(m.get("tags"), dict) else {}
    metrics: dict[str, Any] = m.get("metrics") or {} if isinstance(m.get("metrics"), dict) else {}
    kv = [(entry_id, "tag", k, as_number(v), v if isinstance(v, str) else None, canonical(v)) for k, v in tags.items()]
    kv += [(entry_id, "metric", k, as_number(v), None, canonical(v)) for k, v in metrics.items()]
    config: dict[str, Any] = (
        m.get("config") or {} if isinstance(m.get("config"), dict) else {}
    )  # 1.1: searchable configuration
    kv += [
        (entry_id, "config", k, as_number(v), v if isinstance(v, str) else None, canonical(v))
        for k, v in config.items()
    ]
    res = m.get("result")
    fields = {
        "name": m.get("name"),
        "result": as_number(res),
        "res_js": None if res is None else canonical(res),
        "created": m.get("created"),
        "ts": iso_to_instant(m.get("created")),
        "author": author_name(m),
        "email": author_email(m),
        "branch": m.get("branch"),
        "dirty": 1 if m.get("dirty") else 0,
        "message": m.get("message"),
        "tags": canonical(tags),
        "metrics": canonical(metrics),
        "base": m.get("commit") if isinstance(m.get("commit"), str) else None,
        "problem": None,
    }
    return fields, kv


_FIELDS = (
    "name",
    "result",
    "res_js",
    "created",
    "ts",
    "author",
    "email",
    "branch",
    "dirty",
    "message",
    "tags",
    "metrics",
    "base",
    "problem",
)


def _store(con: sqlite3.Connection, repo: pygit2.Repository, commit: str, lines: list[notes.NoteLine]) -> None:
    """Make the rows for ``commit`` match its note: indexes, new and dropped entries."""
    have = {r[0]: r[1] for r in con.execute("SELECT id, missing FROM entries WHERE commit_id=?", (commit,))}
    wanted = {n.entry for n in lines if not n.removed}
    gone = [i for i in have if i not in wanted]
    if gone:
        con.executemany("DELETE FROM entries WHERE id=? AND commit_id=?", [(i, commit) for i in gone])
        con.executemany(
            "DELETE FROM kv WHERE id=? AND NOT EXISTS (SELECT 1 FROM entries WHERE entries.id=kv.id)",
            [(i,) for i in gone],
        )
    for idx, n in enumerate(lines):
        if n.removed:
            continue
        if n.entry in have and not have[n.entry]:
            con.execute("UPDATE entries SET seq=?, idx=? WHERE id=? AND commit_id=?", (n.seq, idx, n.entry, commit))
            continue
        _insert(con, repo, commit, n.seq, idx, n.entry, n)


_INSERT_ENTRY = (
    f"INSERT OR REPLACE INTO entries(id, commit_id, seq, idx, missing, {', '.join(_FIELDS)}, vts) "
    f"VALUES (?,?,?,?,?,{','.join('?' * len(_FIELDS))},?)"
)


def _entry_row(
    entry_id: str,
    commit: str,
    seq: int,
    idx: int,
    fields: dict[str, Any] | str | None,
    note: notes.NoteLine | None = None,
) -> tuple[Any, ...]:
    """One entries row; ``fields`` None: indexed, objects not here yet (missing=1), with the note's
    name and time; a string: damaged (missing=2)."""
    published = note.published if note is not None else None
    if fields is None:
        known = (
            {"name": note.name, "created": note.created, "ts": iso_to_instant(note.created)} if note is not None else {}
        )
        vts = version_time(known.get("created"), published)
        return (entry_id, commit, seq, idx, 1) + tuple(known.get(f) for f in _FIELDS) + (vts,)
    if isinstance(fields, str):
        return (entry_id, commit, seq, idx, 2) + (None,) * (len(_FIELDS) - 1) + (fields, None)
    vts = version_time(fields["created"], published)
    return (entry_id, commit, seq, idx, 0) + tuple(fields[f] for f in _FIELDS) + (vts,)


def _insert(
    con: sqlite3.Connection,
    repo: pygit2.Repository,
    commit: str,
    seq: int,
    idx: int,
    entry_id: str,
    note: notes.NoteLine | None = None,
) -> None:
    fields, kv = _row(repo, entry_id)
    con.execute("DELETE FROM kv WHERE id=?", (entry_id,))
    con.execute(_INSERT_ENTRY, _entry_row(entry_id, commit, seq, idx, fields, note))
    con.executemany("INSERT INTO kv VALUES (?,?,?,?,?,?)", kv)


_INDEXES = [stmt.strip() for stmt in _DDL.split(";") if stmt.strip().startswith("CREATE INDEX")]


def _bulk_load(con: sqlite3.Connection, repo: pygit2.Repository, tree: pygit2.Tree) -> None:
    """Fill empty tables from a whole notes tree: rows sorted by id, indexes built afterwards.

    A fresh clone of a 100,000-entry registry spent most of its first ``find``
    updating four kv indexes row by row in random (entry id) order.
    """
    con.execute("PRAGMA cache_size=-262144")  # 256 MiB: index builds sort in memory (default 2 MiB)
    con.execute("PRAGMA temp_store=MEMORY")
    con.execute("DELETE FROM entries")
    con.execute("DELETE FROM kv")
    for stmt in _INDEXES:
        con.execute("DROP INDEX IF EXISTS " + stmt.split("EXISTS", 1)[1].split()[0])
    entry_rows: list[tuple[Any, ...]] = []
    kv_rows: list[tuple[Any, ...]] = []
    listed = list(notes.walk_tree(repo, tree))
    ids = list(
        dict.fromkeys(n.entry for _, lines in listed for n in lines if not n.removed)
    )  # once, even if on several commits
    rows = {i: _fields(i, m) for i, m in read_manifests(repo, ids).items()}
    for _fields_row, kv in rows.values():
        kv_rows += kv
    for commit, lines in listed:
        for idx, n in enumerate(lines):
            if n.removed:
                continue
            entry_rows.append(_entry_row(n.entry, commit, n.seq, idx, rows[n.entry][0], n))
    entry_rows.sort(key=lambda r: (r[0], r[1]))
    kv_rows.sort(key=lambda r: r[0])
    con.executemany(_INSERT_ENTRY, entry_rows)
    con.executemany("INSERT INTO kv VALUES (?,?,?,?,?,?)", kv_rows)
    for stmt in _INDEXES:
        con.execute(stmt)
    con.execute("PRAGMA cache_size=-2000")  # back to the default: a long-lived web UI keeps this connection


def _changed_commits(repo: pygit2.Repository, old: pygit2.Tree, new: pygit2.Tree) -> set[str]:
    out: set[str] = set()
    for delta in old.diff_to_tree(new).deltas:  # paths only: no patch text is computed
        for p in (delta.old_file.path, delta.new_file.path):
            sha = p.replace("/", "")
            if len(sha) == 40:
                out.add(sha)
    return out


def refresh(repo: pygit2.Repository) -> sqlite3.Connection:
    """An up-to-date connection: catch up with the notes tip, retry missing entries."""
    con = _open(repo)
    tip = _notes_tip(repo)
    tip_id = str(tip.id) if tip is not None else ""
    row = con.execute("SELECT value FROM meta WHERE key='notes_tip'").fetchone()
    missing = con.execute("SELECT 1 FROM entries WHERE missing=1 LIMIT 1").fetchone()
    if row is not None and row[0] == tip_id and not missing:
        return con
    con.execute("BEGIN IMMEDIATE")
    try:
        row = con.execute("SELECT value FROM meta WHERE key='notes_tip'").fetchone()
        cached = row[0] if row is not None else None
        if cached != tip_id:
            _catch_up(con, repo, cached, tip)
            con.execute("INSERT OR REPLACE INTO meta VALUES ('notes_tip', ?)", (tip_id,))
            con.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA,))
        for entry_id, commit, seq, idx in con.execute(
            "SELECT id, commit_id, seq, idx FROM entries WHERE missing=1"
        ).fetchall():
            if entry_id in repo:  # the note line again: its published= orders the versions
                line = next((n for n in notes.read(repo, commit) if n.entry == entry_id), None)
                _insert(con, repo, commit, seq, idx, entry_id, line)
        _mark_shadowed(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return con


# A row ranks first on a commit other than its manifest's base commit, then on the smallest commit id
# (registry.preferred applies the same rule).
_RANK = "(({t}.commit_id = coalesce({t}.base, '')) * 1)"


def _mark_shadowed(con: sqlite3.Connection) -> None:
    """An entry listed on several commits (hooks, rewrites) is shown once: flag its other rows.

    Kept as a column so that queries pay nothing for it; recomputed only when the notes moved.
    """
    con.execute("UPDATE entries SET shadowed = 0 WHERE shadowed = 1")
    con.execute(
        "UPDATE entries SET shadowed = 1 WHERE id IN (SELECT id FROM entries WHERE missing = 0 GROUP BY id HAVING count(*) > 1) "
        "AND EXISTS (SELECT 1 FROM entries e2 WHERE e2.id = entries.id AND e2.missing = 0 AND e2.commit_id != entries.commit_id AND "
        f"({_RANK.format(t='e2')} < {_RANK.format(t='entries')} OR "
        f"({_RANK.format(t='e2')} = {_RANK.format(t='entries')} AND e2.commit_id < entries.commit_id)))"
    )


def _catch_up(con: sqlite3.Connection, repo: pygit2.Repository, cached: str | None, tip: pygit2.Commit | None) -> None:
    old = None
    if cached:
        try:
            obj = repo.get(cached)
            old = obj.peel(pygit2.Commit).tree if obj is not None else None
        except (ValueError, pygit2.GitError):
            old = None
    if tip is None:
        con.execute("DELETE FROM entries")
        con.execute("DELETE FROM kv")
        return
    if old is None:  # first run, or history rewritten: rebuild from scratch
        _bulk_load(con, repo, tip.tree)
        return
    for commit in _changed_commits(repo, old, tip.tree):
        _store(con, repo, commit, notes.read_at(repo, tip.tree, commit))


def rebuild(repo: pygit2.Repository) -> int:
    """Drop the cache and build it again; returns the number of entries."""
    path = cache_path(repo)
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(path + suffix)
        except OSError:
            pass
    con = refresh(repo)
    n = con.execute("SELECT COUNT(*) FROM entries WHERE missing=0").fetchone()[0]
    con.close()
    return int(n)


def damaged(repo: pygit2.Repository) -> list[tuple[str, str, int, str]]:
    """Indexed entries that cannot be read: (id, commit, index, why), one per entry."""
    con = refresh(repo)
    try:
        rows = con.execute(
            "SELECT id, min(commit_id), idx, problem FROM entries WHERE missing = 2 GROUP BY id ORDER BY id"
        ).fetchall()
    finally:
        con.close()
    return [(str(a), str(b), int(c), str(d)) for a, b, c, d in rows]
