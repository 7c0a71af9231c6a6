"""Named models: versions 1, 2, 3 ... per name, and aliases (``production``) that travel with the registry.

Versions are derived, never stored: the entries whose note line carries the
name, ordered by (publication time, entry id) (``version_time``). Every clone
holding the same entries therefore numbers them the same way, and two
teammates' concurrent versions both survive a pull and get deterministic
numbers. The publication time (``published=``) is stamped when the note line
is written, under the notes ref update, so a slow writer that started first
can never take a number below one already shown.

Aliases are stored in git so they push, pull and merge like the rest of the
registry: ``refs/tvault/aliases`` is a commit chain whose tree holds one text
file, ``aliases``, with one record per (name, alias)::

    alias <name> <alias> <entry-id or -> <UTC time> <who>

Merging two sides is the union of their records, keeping per (name, alias)
the newest time (ties: the larger record text), so concurrent changes from two
clones merge without conflict and converge. ``-`` removes an alias.
``latest`` and ``best`` are computed, never stored. Torch-free.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypedDict

import pygit2

from tvault_git.errors import CorruptEntry, InvalidInput, RefNotFound, StorageError, TvaultError
from tvault_git.gitutil.lazy import ensure_present
from tvault_git.gitutil.repo import (
    blob_of,
    commit_of,
    commit_to_ref,
    has_object,
    merge_history,
    ref_tip,
    retry_locked,
    signature,
)
from tvault_git.registry import entries, notes
from tvault_git.spec.format import ALIASES_FILE, ALIASES_REF, MAX_ALIASES, NAME_RE, NOTES_REF
from tvault_git.spec.values import iso_to_instant

RESERVED = ("latest",)  # computed, never stored
# Computed unless stored: a stored ``best`` (format 1.1; e.g. set by a training callback that ranks by
# a loss, where the highest result is the worst) wins over the highest result.
COMPUTED = ("latest", "best")
_TIME_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$")  # ASCII digits
_ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")


@dataclass
class Version:
    number: int  # 1, 2, 3 ... per name
    entry: entries.Entry
    created: str  # manifest 'created' timestamp
    aliases: list[str] = field(default_factory=list)  # explicit aliases pointing at this version


@dataclass(frozen=True)
class AliasRecord:
    name: str
    alias: str
    entry: str | None  # None: removed
    time: str  # UTC, fixed width, so text order is time order
    who: str

    def render(self) -> str:
        return f"alias {self.name} {self.alias} {self.entry or '-'} {self.time} {self.who}"


def _named_lines(
    repo: pygit2.Repository, notes_ref: str = NOTES_REF, name: str | None = None
) -> Iterable[tuple[str, int, notes.NoteLine]]:
    """(commit, model index, line) of every named entry; with ``name``, only notes that mention it are parsed."""
    for commit, lines in notes.walk(repo, notes_ref, None if name is None else f" {name}"):
        for i, n in enumerate(lines):
            if n.name:
                yield commit, i, n


def names(repo: pygit2.Repository, notes_ref: str = NOTES_REF) -> list[str]:
    """Model names that have entries, sorted."""
    return sorted({n.name for _, _, n in _named_lines(repo, notes_ref) if n.name and not n.removed})


def versions(
    repo: pygit2.Repository, name: str, *, notes_ref: str = NOTES_REF, aliases_ref: str = ALIASES_REF
) -> list[Version]:
    """Versions of ``name``, oldest first, numbered from 1 identically in every clone.

    Where an entry's objects are here, its manifest is the authority: a note line that names it
    differently is ignored, and its creation time and result come from the manifest, never from
    a (pulled) note line. Damaged entries are left out (``git tvault fsck`` lists them); entries
    whose objects are not here are numbered from their note line. ``notes_ref``/``aliases_ref``
    let share/sync.py number a remote's versions from its fetched index.
    """
    lines: dict[str, list[tuple[str, int, notes.NoteLine]]] = {}
    for commit, i, n in _named_lines(repo, notes_ref, name):
        if n.name == name:
            lines.setdefault(n.entry, []).append((commit, i, n))
    if notes_ref == NOTES_REF:  # an entry whose note git pruned keeps its number (and resolves by id)
        from tvault_git.registry import orphans

        for eid, (commit, line) in orphans.unindexed(repo).items():
            if line is not None and line.name == name:
                lines.setdefault(eid, []).append((commit, -1, line))
            elif line is None:
                lines.setdefault(eid, []).append(("0" * 40, -1, notes.NoteLine(0, eid, name, None)))
    local = [e for e in lines if has_object(repo, e)]
    manifests = entries.read_manifests(repo, local) if local else {}
    found: list[tuple[float, str, str, entries.Entry]] = []
    for eid, group in lines.items():
        commit, i, n = group[0]
        if len(group) > 1:  # listed on several commits: the same choice as everywhere else
            pick = entries.preferred([entries.Entry(n.entry, c, k, n.name, n.result, _repo=repo) for c, k, _ in group])[
                0
            ]
            commit, i = pick.commit, pick.index
        removed = all(x[2].removed for x in group)
        m = manifests.get(eid)
        if isinstance(m, TvaultError):
            continue
        if isinstance(m, dict):
            if m.get("name") != name:
                continue  # the line lies about the entry's name
            created = m.get("created")
            res = m.get("result")
            result = None if res is None else repr(float(res))
        else:
            created, result = n.created, n.result
        at = version_time(created, min((x[2].published for x in group if x[2].published), default=None))
        if at is None or not isinstance(created, str):
            continue  # neither the manifest nor the note says when: cannot be numbered
        e = entries.Entry(eid, commit, i, name, result, removed=removed, _repo=repo)
        if isinstance(m, dict):
            e._manifest = m
        found.append((at, eid, created, e))
    if not found:
        raise RefNotFound(
            f"no model named {name!r}; names: {', '.join(names(repo, notes_ref)) or 'none yet'} (log one with log_all(..., name=...))"
        )
    found.sort(key=lambda t: (t[0], t[1]))
    by_entry: dict[str, list[str]] = {}
    for alias, eid in aliases(repo, name, ref=aliases_ref).items():
        by_entry.setdefault(eid, []).append(alias)
    return [Version(k + 1, e, c, sorted(by_entry.get(eid, []))) for k, (_, eid, c, e) in enumerate(found)]


def version_time(created: object, published: str | None) -> float | None:
    """The instant that orders an entry among its model's versions (FORMAT.md, Named models: versions).

    ``published=`` (stamped under the notes ref lock) when the line has one that is not before the
    entry's ``created``; else ``created`` (entries from writers before published=, whose numbers
    therefore stay what they were). None: the entry cannot be numbered.
    """
    c = iso_to_instant(created)
    if c is None:
        return None
    p = iso_to_instant(published)
    return p if p is not None and p >= c else c


# --- aliases -----------------------------------------------------------------


def parse_records(text: str) -> dict[tuple[str, str], AliasRecord]:
    """The winning record per (name, alias); unknown or malformed lines (bad time, id or names) are ignored."""
    out: dict[tuple[str, str], AliasRecord] = {}
    for raw in text.split("\n"):
        p = raw.split(" ")
        if (
            len(p) < 6
            or p[0] != "alias"
            or not _TIME_RE.match(p[4])
            or not NAME_RE.match(p[1])
            or not _ALIAS_RE.match(p[2])
        ):
            continue
        entry = None if p[3] == "-" else p[3]
        if entry is not None and not re.fullmatch(r"[0-9a-f]{40}", entry):
            continue
        rec = AliasRecord(p[1], p[2], entry, p[4], " ".join(p[5:]))
        key = (rec.name, rec.alias)
        prev = out.get(key)
        if prev is None or (rec.time, rec.render()) > (prev.time, prev.render()):
            out[key] = rec
    return out


def render_records(recs: dict[tuple[str, str], AliasRecord]) -> str:
    return "".join(recs[k].render() + "\n" for k in sorted(recs))


def read_records(repo: pygit2.Repository, ref: str = ALIASES_REF) -> dict[tuple[str, str], AliasRecord]:
    tip = _tip(repo, ref)
    if tip is None:
        return {}
    return parse_records(_text(repo, tip))


_tip = ref_tip


def _text(repo: pygit2.Repository, commit: pygit2.Commit | None) -> str:
    """The aliases blob of ``commit`` ('' when absent, not a file, or over MAX_ALIASES: read from the header first)."""
    if commit is None:
        return ""
    try:
        e = commit.tree[ALIASES_FILE]
        ensure_present(repo, [e.id], "aliases")
        kind, size = repo.odb.read_header(e.id)
    except (KeyError, ValueError, pygit2.GitError):
        return ""
    if kind != pygit2.enums.ObjectType.BLOB or size > MAX_ALIASES:
        return ""
    return blob_of(repo, e.id).data.decode("utf-8", "replace")


def aliases(repo: pygit2.Repository, name: str, *, ref: str = ALIASES_REF) -> dict[str, str]:
    """Explicit aliases of ``name``: alias -> entry id (removed aliases left out)."""
    return {a: r.entry for (n, a), r in sorted(read_records(repo, ref).items()) if n == name and r.entry}


def check_alias(alias: str) -> None:
    if not isinstance(alias, str) or not _ALIAS_RE.match(alias):
        raise InvalidInput(
            f"alias {alias!r} is invalid: start with a letter; letters, digits, '.', '_' or '-' (at most 64)"
        )
    if alias in RESERVED:
        raise InvalidInput(
            f"alias {alias!r} is reserved: '{alias}' is computed ({', '.join(COMPUTED)}); choose another name"
        )


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _write(
    repo: pygit2.Repository,
    change: AliasRecord | Callable[[dict[tuple[str, str], AliasRecord]], list[AliasRecord]],
    ref: str = ALIASES_REF,
) -> list[AliasRecord]:
    """Add records with one compare-and-swap update of the alias ref (retried like notes.add).

    ``change`` is one record, or a function of the current records returning those to add (so a
    batch is decided on the state it updates); returns what was written.
    """

    def step() -> list[AliasRecord]:
        tip = _tip(repo, ref)
        recs = parse_records(_text(repo, tip)) if tip is not None else {}
        new = change(recs) if callable(change) else [change]
        if not new:
            return []
        for c in new:
            recs[(c.name, c.alias)] = c
        blob = repo.create_blob(render_records(recs).encode())
        tb = repo.TreeBuilder()
        tb.insert(ALIASES_FILE, blob, pygit2.enums.FileMode.BLOB)
        first = new[0]
        what = (
            f"{first.name}@{first.alias} -> {(first.entry or 'removed')[:12]}"
            if len(new) == 1
            else f"{len(new)} changes"
        )
        commit_to_ref(repo, ref, f"tvault: alias {what}\n", tb.write(), tip.id if tip is not None else None)
        return new

    try:
        return retry_locked(step, ref, repo=repo)
    except (OSError, pygit2.GitError) as e:  # read-only .git, disk full
        raise StorageError(f"could not record the alias: {e}") from None


def set_alias(repo: pygit2.Repository, name: str, target_ref: str, alias: str) -> Version:
    """Point ``name@alias`` at the entry ``target_ref`` names (``NAME@3``, an id, ``HEAD:0``)."""
    check_alias(alias)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidInput(f"model name {name!r} is invalid")
    e = entries.resolve(repo, target_ref)
    vs = versions(repo, name)
    hit = next((v for v in vs if v.entry.id == e.id), None)
    if hit is None:
        raise InvalidInput(
            f"entry {e.short} is not a version of {name!r} (its name is {e.name or 'unset'}); aliases point at versions of their own model"
        )
    sig = signature(repo)
    _write(repo, AliasRecord(name, alias, e.id, _now(), sig.email.replace(" ", "_") or "-"))
    return next(v for v in versions(repo, name) if v.entry.id == e.id)


def remove_alias(repo: pygit2.Repository, name: str, alias: str) -> None:
    """Drop ``name@alias`` (recorded as a removal, so it merges like any change)."""
    if alias not in aliases(repo, name):
        raise RefNotFound(f"{name} has no alias {alias!r}")
    sig = signature(repo)
    _write(repo, AliasRecord(name, alias, None, _now(), sig.email.replace(" ", "_") or "-"))


def remove_aliases_to(repo: pygit2.Repository, ids: Iterable[str]) -> list[tuple[str, str]]:
    """Drop every alias that points at one of ``ids`` (removed entries), in one update; returns
    the (name, alias) pairs dropped. Recorded as removals, so they merge like any change."""
    gone = set(ids)
    who = signature(repo).email.replace(" ", "_") or "-"
    now = _now()

    def drops(recs: dict[tuple[str, str], AliasRecord]) -> list[AliasRecord]:
        return [AliasRecord(n, a, None, now, who) for (n, a), r in sorted(recs.items()) if r.entry in gone]

    return [(r.name, r.alias) for r in _write(repo, drops)]


def merge_alias_ref(repo: pygit2.Repository, other: pygit2.Oid | str, ref: str = ALIASES_REF) -> bool:
    """Merge another alias history (e.g. a remote's) into ``ref``; returns True when it changed.

    Fast-forwards when possible, else writes a merge commit whose records are
    the union of both sides (newest record per alias wins): nothing is discarded.
    """
    other_c = repo.get(str(other))
    if not isinstance(other_c, pygit2.Commit):
        raise CorruptEntry(f"alias history {str(other)[:12]} is not a commit in this repository")
    now = _now()

    def union(ours: pygit2.Commit | None) -> pygit2.Oid:
        recs = parse_records(_text(repo, ours))
        base = repo.merge_base(ours.id, other_c.id) if ours is not None else None
        seen = set(parse_records(_text(repo, commit_of(repo, base))).values()) if base is not None else set()
        for k, r in parse_records(_text(repo, other_c)).items():
            if r in seen:
                continue  # not a change on their side since we last merged: a record wins once, not every pull
            if r.time > now:  # dated in the future: it counts as made now, so a later real change still wins
                r = AliasRecord(r.name, r.alias, r.entry, now, r.who)
            if k not in recs or (r.time, r.render()) > (recs[k].time, recs[k].render()):
                recs[k] = r
        tb = repo.TreeBuilder()
        tb.insert(ALIASES_FILE, repo.create_blob(render_records(recs).encode()), pygit2.enums.FileMode.BLOB)
        return tb.write()

    return merge_history(repo, ref, other_c, union, "aliases")


# --- resolving NAME@selector ---------------------------------------------------


def best(vs: list[Version]) -> Version | None:
    """``NAME@best``: the highest result in the index, the later version on ties; None without results."""
    scored = []
    for v in vs:
        try:
            if v.entry.result is not None and not v.entry.removed:
                scored.append((float(v.entry.result), v.number, v))
        except ValueError:  # a note written by something else: not a number, not a candidate
            pass
    return max(scored, key=lambda t: (t[0], t[1]))[2] if scored else None


def resolve(
    repo: pygit2.Repository, name: str, selector: str, *, notes_ref: str = NOTES_REF, aliases_ref: str = ALIASES_REF
) -> entries.Entry:
    """``NAME@N``, ``NAME@alias``, ``NAME@latest``, ``NAME@best`` (stored, else highest result) -> Entry."""
    vs = versions(repo, name, notes_ref=notes_ref, aliases_ref=aliases_ref)
    if selector.isascii() and selector.isdigit():  # '²' is a digit int() refuses: an alias name
        k = int(selector)
        if not 1 <= k <= len(vs):
            raise RefNotFound(f"{name} has versions 1..{len(vs)}; there is no version {k}")
        return _live(vs[k - 1].entry, f"{name}@{k}")
    if selector == "latest":
        live = [v for v in vs if not v.entry.removed]
        if not live:
            raise RefNotFound(f"every version of {name} was removed (git tvault rm)")
        return live[-1].entry
    al = aliases(repo, name, ref=aliases_ref)
    if selector == "best" and "best" not in al:
        top = best(vs)
        if top is None:
            raise RefNotFound(f"no version of {name} has a result; {name}@best needs log_all(..., result=...)")
        return top.entry
    if selector in al:
        hit = next((v for v in vs if v.entry.id == al[selector]), None)
        if hit is None:
            raise RefNotFound(
                f"{name}@{selector} points at entry {al[selector][:12]}, which is not here; fetch it (git tvault fetch REMOTE {name}@{selector})"
            )
        return _live(hit.entry, f"{name}@{selector}")
    known = ", ".join(sorted(set(al) | set(COMPUTED)))
    raise RefNotFound(f"{name} has no version or alias {selector!r} (aliases: {known})")


def _live(e: entries.Entry, ref: str) -> entries.Entry:
    if e.removed:
        raise RefNotFound(f"{ref} (entry {e.short}) was removed (git tvault rm)")
    return e


class VersionRef(TypedDict):
    version: int
    id: str


class LatestRef(VersionRef):
    created: str


# version None: a stored best alias names an entry that is not here; "from": what decided it,
# "alias" (a stored best alias, e.g. set by a callback ranking by validation loss) or "result"
BestRef = TypedDict("BestRef", {"version": int | None, "id": str, "result": float | None, "from": str})


class ModelSummary(TypedDict):
    """One named model as ``git tvault models`` lists it (``--json`` prints these)."""

    name: str
    versions: int
    latest: LatestRef
    best: BestRef | None
    aliases: dict[str, int | None]  # alias -> version number (None: its entry is not a version here)


def _result(v: Version) -> float | None:
    try:
        return None if v.entry.result is None else float(v.entry.result)
    except ValueError:  # a note written by something else: not a number
        return None


def summaries(repo: pygit2.Repository) -> list[ModelSummary]:
    """Each named model: version count, latest and best version, aliases (``git tvault models``).

    ``best`` is what ``NAME@best`` resolves to (one rule, ``resolve``): a stored ``best`` alias when
    there is one (``"from": "alias"``, e.g. set by a callback ranking by validation loss), else the
    highest result (``"from": "result"``). Its ``version`` is None when the alias names an entry
    that is not here.
    """
    out: list[ModelSummary] = []
    for name in names(repo):
        vs = versions(repo, name)
        al = aliases(repo, name)
        top: BestRef | None = None
        if "best" in al:
            hit = next((v for v in vs if v.entry.id == al["best"]), None)
            top = {
                "version": None if hit is None else hit.number,
                "id": al["best"],
                "result": None if hit is None else _result(hit),
                "from": "alias",
            }
        else:
            computed = best(vs)
            if computed is not None:
                top = {
                    "version": computed.number,
                    "id": computed.entry.id,
                    "result": _result(computed),
                    "from": "result",
                }
        out.append(
            {
                "name": name,
                "versions": len(vs),
                "latest": {"version": vs[-1].number, "id": vs[-1].entry.id, "created": vs[-1].created},
                "best": top,
                "aliases": {a: next((v.number for v in vs if v.entry.id == eid), None) for a, eid in al.items()},
            }
        )
    return out


def next_version(repo: pygit2.Repository, name: str, tree: pygit2.Tree | None = None) -> int:
    """The number a new (newest) entry of ``name`` gets: one more than the entries already indexed
    (in notes tree ``tree``: the one a stamped ``notes.add`` is about to update, so it is exact).

    For the note's display text only (a pulled version published earlier elsewhere can still shift it).
    """
    return len(notes.ids_named(repo, name, tree=tree)) + 1
