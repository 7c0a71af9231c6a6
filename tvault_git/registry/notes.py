"""The per-commit index in ``refs/notes/tvault``: which entries were trained on a commit.

A note holds one line per entry, ``model <seq> <entry-id> <name> result=<r>``.
Lines are independent, so two people's notes for the same commit merge with
git's ``cat_sort_uniq`` strategy without conflicts. The model index of an
entry is its position when the lines are ordered by (seq, entry id): a new
local entry takes ``max(seq) + 1``, and entries that two clones numbered the
same way get a deterministic order after a merge.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pygit2

from tvault_git.errors import CorruptEntry, InvalidInput
from tvault_git.gitutil.lazy import ensure_present
from tvault_git.gitutil.loose import write_blob
from tvault_git.gitutil.repo import blob_of, commit_of, commit_to_ref, merge_history, retry_locked, tree_of
from tvault_git.spec.format import MAX_NOTE, NOTES_REF
from tvault_git.spec.values import iso_to_instant

_ENTRY_RE = re.compile(r"[0-9a-f]{40}")
_FANOUT_RE = re.compile(r"[0-9a-f]{2}")  # a notes fanout directory
_SEQ_RE = re.compile(r"[0-9]{1,18}")
_SEQ_LIMIT = 10**18  # seq = 1*18DIGIT
# the first three words of an entry line as parse() reads them (LF-separated lines, single SP words)
# ... and the fourth word, the name ("-": none), when there is one
_MODEL_LINE_RE = re.compile(
    r"^model ([0-9]{1,18}) ([0-9a-f]{40})(?: ([^ \n]*))?(?= |$)", re.M
)  # FORMAT.md: seq = 1*18DIGIT (ASCII: int() also takes '١', '+1', '1_0')


@dataclass(frozen=True)
class NoteLine:
    seq: int
    entry: str
    name: str | None
    result: str | None
    created: str | None = None  # the manifest's timestamp, so versions can be numbered from notes alone
    removed: bool = False  # a ``removed <entry-id>`` line (git tvault rm) names it: the slot stays, the entry is gone
    display: str | None = None  # the human part after " | " (format 1.1), kept verbatim when copied
    published: str | None = None  # when the line was first written, under the notes ref lock: orders versions

    def render(self) -> str:
        line = (
            f"model {self.seq} {self.entry} {self.name or '-'} result={self.result if self.result is not None else '-'}"
        )
        line += f" created={self.created}" if self.created else ""
        line += f" published={self.published}" if self.published else ""
        return line + (f" {DISPLAY_SEP} {self.display}" if self.display else "")


DISPLAY_SEP = "|"


def display_text(label: str, result: str | None, entry: str) -> str:
    """What ``git log --notes=tvault`` readers see after the separator: ``mnist@3 result 0.9961 entry 408b92c0ab``.

    Only for eyes: readers take every value from the machine part before the separator.
    """
    words = [label]
    if result is not None:
        try:
            words.append(f"result {float(result):.4g}")
        except ValueError:
            pass
    words.append(f"entry {entry[:10]}")
    return " ".join(" ".join(w.replace(DISPLAY_SEP, "/").split()) for w in words)


def lines_of(text: str) -> list[str]:
    """Split on LF only, as git does: U+2028 and other separators never start a line git does not show."""
    return text.split("\n")


def parse(text: str) -> list[NoteLine]:
    """Entry lines of a note, in index order; unknown lines are ignored (forward compatible).

    ``removed <entry-id>`` (written by ``git tvault rm``, format 1.1) marks an entry removed: it
    keeps its slot, so the entries after it keep their index. A ``seq`` must be a non-negative
    integer of at most 18 digits; other lines are not entry lines. An entry line is
    ``model <seq> <id> <name> result=<r> [created=<c>] [key=value ...] [| <display text>]``;
    lines of 1.0 writers have no display part.
    """
    out: dict[str, NoteLine] = {}
    gone: set[str] = set()
    for raw in lines_of(text):
        machine, sep, shown = raw.partition(f" {DISPLAY_SEP} ")
        display = (shown.strip() or None) if sep else None
        parts = machine.split(" ")
        if len(parts) >= 2 and parts[0] == "removed" and _ENTRY_RE.fullmatch(parts[1]):
            gone.add(parts[1])
            continue
        if len(parts) < 3 or parts[0] != "model" or not _SEQ_RE.fullmatch(parts[1]):
            continue
        seq = int(parts[1])
        entry = parts[2]
        if _ENTRY_RE.fullmatch(entry) is None:
            continue
        name = parts[3] if len(parts) > 3 and parts[3] != "-" else None
        result = None
        if len(parts) > 4 and parts[4].startswith("result=") and parts[4] != "result=-":
            result = parts[4][7:]
        created = _word(parts, "created=") if "created=" in machine else None
        published = _word(parts, "published=") if "published=" in machine else None
        prev = out.get(entry)
        if prev is None or seq < prev.seq:
            keep_c = created or (prev.created if prev else None)
            keep_p = _earlier(published, prev.published if prev else None)
            out[entry] = NoteLine(
                seq, entry, name, result, keep_c, display=display or (prev.display if prev else None), published=keep_p
            )
        elif (
            (prev.created is None and created)
            or (prev.display is None and display)
            or _earlier(published, prev.published) != prev.published
        ):
            out[entry] = NoteLine(
                prev.seq,
                entry,
                prev.name,
                prev.result,
                prev.created or created,
                display=prev.display or display,
                published=_earlier(published, prev.published),
            )
    for e in gone & set(out):
        out[e] = dataclasses.replace(out[e], removed=True)
    return sorted(out.values(), key=lambda n: (n.seq, n.entry))


def _word(parts: list[str], key: str) -> str | None:
    return next((p[len(key) :] for p in parts[5:] if p.startswith(key) and len(p) > len(key)), None)


def _earlier(a: str | None, b: str | None) -> str | None:
    """The earlier of two ``published=`` times (an entry listed twice was first published at the earlier)."""
    ia, ib = iso_to_instant(a), iso_to_instant(b)
    if ia is None:
        return b if ib is not None else None
    return a if ib is None or ia <= ib else b


def publish_time(repo: pygit2.Repository, parent: pygit2.Oid | None) -> str:
    """``published=`` for a line written on top of notes commit ``parent``: now, but always after the
    time the parent's writer stamped (its message says it), so a clock step back cannot reorder versions.

    Taken inside the compare-and-swap of ``refs/notes/tvault``: a writer whose update lands after
    another's always stamps a later time (FORMAT.md, Named models: versions).
    """
    now = _dt.datetime.now(_dt.timezone.utc)
    if parent is not None:
        try:
            msg = commit_of(repo, parent).message
        except (KeyError, ValueError, pygit2.GitError, CorruptEntry):
            msg = ""
        for line in msg.splitlines():
            if line.startswith(PUBLISHED_TRAILER):
                last = iso_to_instant(line[len(PUBLISHED_TRAILER) :].strip())
                if last is not None and last >= now.timestamp():
                    now = _dt.datetime.fromtimestamp(last, _dt.timezone.utc) + _dt.timedelta(microseconds=1)
    return now.isoformat(timespec="microseconds")


PUBLISHED_TRAILER = "published: "


def note_text(repo: pygit2.Repository, oid: pygit2.Oid | str, commit: str = "") -> str | None:
    """A note's text, or None when it is over MAX_NOTE (checked from the object header, never read).

    In a partial clone a note not fetched yet is fetched first: taking it for absent would make a
    merge or an append drop every line it holds.
    """
    key = str(oid)
    cached = _texts.get(key)
    if cached is not None:
        return cached
    ensure_present(repo, [oid], "note")
    try:
        kind, size = repo.odb.read_header(oid if isinstance(oid, pygit2.Oid) else pygit2.Oid(hex=str(oid)))
    except (KeyError, ValueError, pygit2.GitError):
        return None
    if kind != pygit2.enums.ObjectType.BLOB or size > MAX_NOTE:
        _skipped[commit or str(oid)] = (
            f"its note is {size} bytes, over the {MAX_NOTE} byte limit"
            if kind == pygit2.enums.ObjectType.BLOB
            else "its note is not a blob"
        )
        return None
    text = blob_of(repo, oid).data.decode("utf-8", "replace")
    _remember(key, text)
    return text


def write_note(repo: pygit2.Repository, text: str, data: bytes | None = None) -> pygit2.Oid:
    """Store a note's text as a blob (gitutil/loose.py: the blob every log_all on a commit rewrites
    whole, written at git's loose-object settings without libgit2's slower zlib) and remember it."""
    blob = write_blob(repo, text.encode() if data is None else data)  # data: text.encode(), when at hand
    _remember(str(blob), text)  # the next log_all on this commit reads it back: no inflate
    return blob


def _remember(blob: str, text: str) -> None:
    if len(text) <= _TEXT_CACHED_MAX:
        if len(_texts) >= _TEXTS_MAX:
            _texts.pop(next(iter(_texts)))  # oldest first
        _texts[blob] = text


# Note texts by blob id (a blob never changes): log_all reads its commit's note twice (the append
# and the version label), and a note of 2,000 lines costs ~1 ms to inflate and decode each time.
_texts: dict[str, str] = {}
_TEXTS_MAX = 64
_TEXT_CACHED_MAX = 1 << 20  # at most 64 MiB held


@dataclass(frozen=True)
class _LineIndex:
    """What a new line and a version label need from one note: its next ``seq``, the entries its
    model lines list, and those entries by name word (removed ones included, like the lines)."""

    next_seq: int
    entries: frozenset[str]
    named: dict[str, frozenset[str]]

    @staticmethod
    def of(text: str) -> _LineIndex:
        named: dict[str, set[str]] = {}
        top = -1
        for seq, entry, name in _MODEL_LINE_RE.findall(text):  # one pass, in C
            top = max(top, int(seq))
            named.setdefault(name, set()).add(entry)
        entries = frozenset().union(*named.values()) if named else frozenset()
        return _LineIndex(top + 1, entries, {k: frozenset(v) for k, v in named.items()})

    def plus(self, seq: int, entry: str, name: str) -> _LineIndex:
        """The index of this note with one more line (what ``add`` just wrote): no rescan."""
        named = dict(self.named)
        named[name] = named.get(name, frozenset()) | {entry}
        return _LineIndex(max(self.next_seq, seq + 1), self.entries | {entry}, named)

    def size(self) -> int:
        return len(self.entries)


def _line_index(repo: pygit2.Repository, blob: pygit2.Oid | str, commit: str) -> _LineIndex | None:
    """The line index of one note blob (None: over the size limit, like its text), kept per blob id."""
    key = str(blob)
    idx = _indexes.get(key)
    if idx is None:
        text = note_text(repo, blob, commit)
        if text is None:
            return None
        idx = _LineIndex.of(text)
        _remember_index(key, idx)
    return idx


def _remember_index(blob: str, idx: _LineIndex) -> None:
    global _indexed
    if blob in _indexes:
        return  # the same bytes, the same index
    while _indexes and _indexed + idx.size() > _INDEXED_MAX:
        _indexed -= _indexes.pop(next(iter(_indexes))).size()  # oldest first
    _indexes[blob] = idx
    _indexed += idx.size()


# Line indexes by note blob id: at most ~500,000 listed entries held (~100 MB at worst).
_indexes: dict[str, _LineIndex] = {}
_indexed = 0
_INDEXED_MAX = 500_000

_skipped: dict[str, str] = {}  # commit -> why its note was not read (for fsck and warnings); per process


def skipped() -> dict[str, str]:
    """Notes left unread in this process (over the size limit): commit -> reason."""
    return dict(_skipped)


def _notes_tree(repo: pygit2.Repository, ref: str = NOTES_REF) -> tuple[pygit2.Oid | None, pygit2.Tree | None]:
    try:
        r = repo.references.get(ref)
    except pygit2.GitError:
        r = None
    if r is None:
        return None, None
    try:
        commit = r.peel(pygit2.Commit)
    except (ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        raise CorruptEntry(
            f"{ref} does not point at a commit (a plain 'git fetch' of a damaged remote?); "
            f"restore it with 'git update-ref {ref} <commit>' or delete it with 'git update-ref -d {ref}'"
        ) from None
    return commit.id, commit.tree


def _find(repo: pygit2.Repository, tree: pygit2.Tree, sha: str) -> tuple[list[str], pygit2.Object] | None:
    """Locate a note under any fanout (flat, ab/cdef..., ab/cd/ef...)."""
    path: list[str] = []
    rest = sha
    node = tree
    while rest:
        if rest in node:
            hit = node[rest]
            return (path + [rest], hit) if hit.type == pygit2.enums.ObjectType.BLOB else None
        head = rest[:2]
        if head in node and node[head].type == pygit2.enums.ObjectType.TREE:
            path.append(head)
            node = tree_of(repo, node[head].id)
            rest = rest[2:]
        else:
            return None
    return None


def read_at(repo: pygit2.Repository, tree: pygit2.Tree, commit: str) -> list[NoteLine]:
    """The entry lines of ``commit`` in one notes tree (a tip, or an older one being compared)."""
    hit = _find(repo, tree, commit)
    text = None if hit is None else note_text(repo, hit[1].id, commit)
    return [] if text is None else parse(text)


def read(repo: pygit2.Repository, commit: str, ref: str = NOTES_REF) -> list[NoteLine]:
    _, tree = _notes_tree(repo, ref)
    return [] if tree is None else read_at(repo, tree, commit)


def walk_tree(
    repo: pygit2.Repository, tree: pygit2.Tree, containing: str | None = None
) -> Iterator[tuple[str, list[NoteLine]]]:
    """Every annotated commit of one notes tree with its entry lines.

    ``containing``: skip, unparsed, the notes whose text lacks that string (a
    model's history only needs the commits where its name appears).
    """
    flat = _flatten(repo, tree)
    ensure_present(repo, [b for _, b in flat.values()], "notes")  # a partial clone: one fetch, not one per note
    for sha, (_, blob) in flat.items():
        text = note_text(repo, blob, sha)
        if text is None:
            continue
        if containing is not None and containing not in text:
            continue
        lines = parse(text)
        if lines:
            yield sha, lines


def ids_named(repo: pygit2.Repository, name: str, ref: str = NOTES_REF, tree: pygit2.Tree | None = None) -> set[str]:
    """Entry ids whose lines name ``name`` (removed ones included), from each note's line index.

    In notes tree ``tree`` when given (the one a stamped ``add`` is about to update), else the ref's tip.
    For a new entry's display label only (names.next_version): cheap enough to run on every log_all.
    """
    if tree is None:
        _, tree = _notes_tree(repo, ref)
    if tree is None:
        return set()
    out: set[str] = set()
    for sha, (_, blob) in _flatten(repo, tree).items():
        idx = _line_index(repo, blob, sha)
        if idx is not None:
            out.update(idx.named.get(name, ()))
    return out


def walk(
    repo: pygit2.Repository, ref: str = NOTES_REF, containing: str | None = None
) -> Iterator[tuple[str, list[NoteLine]]]:
    """Every annotated commit with its entry lines (``containing``: see walk_tree)."""
    _, tree = _notes_tree(repo, ref)
    if tree is not None:
        yield from walk_tree(repo, tree, containing)


def _write_path(repo: pygit2.Repository, tree: pygit2.Tree | None, path: list[str], blob: pygit2.Oid) -> pygit2.Oid:
    tb = repo.TreeBuilder(tree) if tree is not None else repo.TreeBuilder()
    if len(path) == 1:
        tb.insert(path[0], blob, pygit2.enums.FileMode.BLOB)
    else:
        sub = None
        if tree is not None and path[0] in tree:
            sub = tree_of(repo, tree[path[0]].id)
        tb.insert(path[0], _write_path(repo, sub, path[1:], blob), pygit2.enums.FileMode.TREE)
    return tb.write()


def add(
    repo: pygit2.Repository,
    commit: str,
    entry: str,
    name: str | None,
    result: str | None,
    ref: str = NOTES_REF,
    created: str | None = None,
    seq: int | None = None,
    display: str | Callable[[pygit2.Tree | None], str] | None = None,
    published: str | None = None,
    stamp: bool = False,
) -> int:
    """Append an entry line to ``commit``'s note atomically; returns the entry's index.

    ``seq`` copies another clone's line exactly (a single-entry fetch), so the index matches theirs.
    ``stamp``: a new entry: ``published=`` is taken under the ref update (``publish_time``) and a
    callable ``display`` is given the notes tree that update is based on (the version it names is
    then the one readers compute). ``published`` copies an existing line's time.
    """

    def step() -> int:
        parent, tree = _notes_tree(repo, ref)
        hit = _find(repo, tree, commit) if tree is not None else None
        text = (note_text(repo, hit[1].id, commit) if hit else "") or ""
        # the note's line index, not a parse: a note with 2,000 lines must not make every further
        # log_all on its commit slower (bench/bench_log_growth.py); the index of the note written
        # here is derived from this one, so the next call on the commit scans nothing
        idx = (_line_index(repo, hit[1].id, commit) if hit else None) or _LineIndex.of("")
        if entry in idx.entries:
            lines = parse(text)
            return [n.entry for n in lines].index(entry)
        nxt = idx.next_seq
        # another clone's seq is kept only where it sorts after every local line: a copied line
        # never takes the index of an entry that is already here
        new_seq = nxt if seq is None or seq < nxt else seq
        if new_seq >= _SEQ_LIMIT:  # a 19-digit seq is no entry line: the entry would be invisible
            raise CorruptEntry(
                f"the note of commit {commit[:10]} already uses the largest seq ({_SEQ_LIMIT - 1}; a pulled "
                "line?); nothing was indexed: commit your code and log on the new commit"
            )
        pub = publish_time(repo, parent) if stamp else published
        shown = display(tree) if callable(display) else display
        new = NoteLine(new_seq, entry, name, result, created, display=shown, published=pub)
        body = text if text.endswith("\n") or not text else text + "\n"
        body += new.render() + "\n"
        data = body.encode()
        if len(data) > MAX_NOTE:  # readers would skip the whole note: refuse instead
            raise InvalidInput(
                f"commit {commit[:10]} already lists {len(idx.entries)} entries (the note limit); commit your code and log on the new commit"
            )
        blob = write_note(repo, body, data)
        _remember_index(str(blob), idx.plus(new_seq, entry, name or "-"))
        path = hit[0] if hit else [commit[:2], commit[2:]]
        new_tree = _write_path(repo, tree, path, blob)
        msg = f"tvault: model {new_seq} on {commit[:12]}\n" + (f"\n{PUBLISHED_TRAILER}{pub}\n" if stamp else "")
        commit_to_ref(repo, ref, msg, new_tree, parent)
        return len(idx.entries)  # its seq is above every line's: it sorts last (the index is the entry count before it)

    return retry_locked(step, ref, repo=repo)


def _flatten(repo: pygit2.Repository, tree: pygit2.Tree) -> dict[str, tuple[list[str], pygit2.Oid]]:
    """commit id -> (path in the notes tree, note blob id), whatever the fanout."""
    out: dict[str, tuple[list[str], pygit2.Oid]] = {}
    stack: list[tuple[list[str], pygit2.Tree]] = [([], tree)]
    while stack:
        path, node = stack.pop()
        for e in node:
            name = e.name or ""
            full = "".join(path) + name
            if e.type == pygit2.enums.ObjectType.TREE and len(full) < 40 and _FANOUT_RE.fullmatch(name):
                stack.append((path + [name], tree_of(repo, e.id)))
            elif e.type == pygit2.enums.ObjectType.BLOB and _ENTRY_RE.fullmatch(full):  # else: a bad fanout, ignored
                out[full] = (path + [name], e.id)
    return out


def union_text(ours: str, theirs: str) -> str:
    """Our lines, then their lines we lack: a note merge that never drops an entry."""
    have = set(lines_of(ours))
    body = ours if ours.endswith("\n") or not ours else ours + "\n"
    for line in lines_of(theirs):
        if line and line not in have:
            have.add(line)
            body += line + "\n"
    return body


def merge_text(ours: str, theirs: str, published: dict[str, str] | None = None) -> str:
    """Their lines folded into ours without ever changing what ours say (a pull's note merge).

    Lines for entries ours already list are dropped (a remote cannot rename an entry or move it
    to another index); a new entry whose seq would sort before one of ours gets the next free seq,
    so ``COMMIT:N`` keeps naming the same entry here. ``removed`` lines and unknown lines travel.
    ``published``: entry -> the ``published=`` our notes (any commit) already give it; their line
    for such an entry on another commit carries ours instead, so a pull cannot renumber versions.
    """
    mine = parse(ours)
    known = {n.entry for n in mine}
    nxt = max((n.seq for n in mine), default=-1) + 1
    have = set(lines_of(ours))
    body = ours if ours.endswith("\n") or not ours else ours + "\n"
    first_seq = {n.entry: n.seq for n in parse(theirs)}
    for line in lines_of(theirs):
        if not line or line in have:
            continue
        parts = line.split(" ")
        if parts[0] == "model":
            if len(parts) < 3 or parts[2] in known or parts[2] not in first_seq or not _SEQ_RE.fullmatch(parts[1]):
                continue
            if int(parts[1]) != first_seq[parts[2]]:
                continue  # their own duplicate line with a larger seq: the one that counts is kept below
            if int(parts[1]) < nxt:
                parts[1] = str(nxt)
            nxt = int(parts[1]) + 1
            known.add(parts[2])
            pin = (published or {}).get(parts[2])
            if pin is not None:
                cut = next((i for i, w in enumerate(parts) if w == DISPLAY_SEP), len(parts))
                words = [w for w in parts[:cut] if not w.startswith("published=")]
                parts = words[:5] + [w for w in words[5:] if w.startswith("created=")] + [f"published={pin}"]
                parts += [w for w in words[5:] if not w.startswith("created=")] + parts[cut:]
            line = " ".join(parts)
        have.add(line)
        body += line + "\n"
    return body


def merge(repo: pygit2.Repository, other: pygit2.Oid | str, ref: str = NOTES_REF) -> bool:
    """Merge another notes history (a remote's) into ``ref`` line by line; True when ``ref`` moved.

    Fast-forwards when possible; otherwise a merge commit (parents: ours, theirs)
    whose notes are the union of both sides' lines per commit. Nothing is ever
    dropped, and the model index stays the (seq, entry id) order, so every
    clone computes the same indexes from the same lines.
    """
    theirs = repo.get(str(other))
    if not isinstance(theirs, pygit2.Commit):
        raise CorruptEntry(f"the notes to merge ({str(other)[:12]}) are not a commit in this repository")

    def union(ours: pygit2.Commit | None) -> pygit2.Oid:
        base = ours.tree if ours is not None else tree_of(repo, repo.TreeBuilder().write())
        ours_map = _flatten(repo, base)
        theirs_map = _flatten(repo, theirs.tree)
        need = [b for s, (_, b) in theirs_map.items() if s not in ours_map or ours_map[s][1] != b]
        need += [ours_map[s][1] for s, (_, b) in theirs_map.items() if s in ours_map and ours_map[s][1] != b]
        ensure_present(repo, need, "notes")  # a partial clone: the notes to merge, in one fetch
        new_tree = base
        pubs: dict[str, str] | None = None  # our published= per entry, read once a note changes
        for sha, (_path, blob) in sorted(theirs_map.items()):
            mine = ours_map.get(sha)
            if mine is not None and mine[1] == blob:
                continue
            b = note_text(repo, blob, sha)
            if b is None:
                continue  # over the size limit: never copied into our notes (it would travel on push)
            a = note_text(repo, mine[1], sha) if mine is not None else ""
            if a is None:
                continue
            if pubs is None:
                pubs = {n.entry: n.published for _, ls in walk_tree(repo, base) for n in ls if n.published}
            text = merge_text(a, b, pubs)
            if text == a:
                continue
            new_blob, where = write_note(repo, text), (mine[0] if mine is not None else [sha[:2], sha[2:]])
            new_tree = tree_of(repo, _write_path(repo, new_tree, where, new_blob))
        return new_tree.id

    return merge_history(repo, ref, theirs, union, "notes")


def _remove_path(repo: pygit2.Repository, tree: pygit2.Tree, path: list[str]) -> pygit2.Oid | None:
    """``tree`` without the note at ``path``; None when nothing is left in it."""
    tb = repo.TreeBuilder(tree)
    if len(path) == 1:
        tb.remove(path[0])
    else:
        sub = _remove_path(repo, tree_of(repo, tree[path[0]].id), path[1:])
        if sub is None:
            tb.remove(path[0])
        else:
            tb.insert(path[0], sub, pygit2.enums.FileMode.TREE)
    return tb.write() if len(tb) else None


def move(repo: pygit2.Repository, pairs: list[tuple[str, str]], ref: str = NOTES_REF) -> int:
    """Move notes from rewritten commits to their new commits (``git commit --amend``, ``git rebase``).

    One atomic update for all pairs; the old note's lines are added to the new
    commit's note (a union, so notes git itself copied are not doubled).
    Returns how many notes moved.
    """

    def step() -> int:
        parent, tree = _notes_tree(repo, ref)
        if tree is None:
            return 0
        cur, moved = tree, 0
        for old, new in pairs:
            if old == new:
                continue
            hit = _find(repo, cur, old)
            if hit is None:
                continue
            text = note_text(repo, hit[1].id, old)
            dest = _find(repo, cur, new)
            mine = (note_text(repo, dest[1].id, new) if dest else "") or ""
            if text is None:
                continue
            blob = write_note(repo, union_text(mine, text))
            cur = tree_of(repo, _write_path(repo, cur, dest[0] if dest else [new[:2], new[2:]], blob))
            left = _remove_path(repo, cur, _find(repo, cur, old)[0])  # type: ignore[index]
            cur = tree_of(repo, left if left is not None else repo.TreeBuilder().write())
            moved += 1
        if moved:
            commit_to_ref(repo, ref, f"tvault: move notes of {moved} rewritten commit(s)\n", cur.id, parent)
        return moved

    return retry_locked(step, ref, repo=repo)
