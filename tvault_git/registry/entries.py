"""Registry queries: listing entries, resolving entry refs, reading their parts.

Torch-free on purpose: ``git tvault log/show/find`` must start fast.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from typing import Any

import pygit2

from tvault_git.errors import AmbiguousRef, CorruptEntry, RefNotFound, TvaultError
from tvault_git.gitutil.lazy import ensure_present, promisor_remote
from tvault_git.gitutil.repo import blob_of, git_env
from tvault_git.registry import notes
from tvault_git.spec.format import (
    MANIFEST,
    MAX_JSON_BLOB,
    MAX_PATCH,
    MAX_TEXT_BLOB,
    NAME_RE,
    PATCH,
    REF_PREFIX,
    WEIGHTS,
    parse_json,
    validate_manifest,
    validate_tensor_record,
)
from tvault_git.spec.manifest import Manifest
from tvault_git.spec.refs import EntryRef
from tvault_git.spec.tables import TensorTable, parse_table


@dataclass
class Entry:
    """An entry as the registry indexes it; ``manifest`` is read on demand."""

    id: str
    commit: str
    index: int
    name: str | None = None
    result: str | None = None
    new_bytes: int = field(default=0, compare=False)
    removed: bool = False  # a ``removed`` line (git tvault rm) holds its slot, so later indexes never shift
    _repo: pygit2.Repository | None = field(default=None, repr=False, compare=False)
    _manifest: Manifest | None = field(default=None, repr=False, compare=False)

    @property
    def short(self) -> str:
        return self.id[:10]

    @property
    def ref(self) -> str:
        return f"{self.commit[:7]}:{self.index}" if self.index >= 0 else "unindexed"

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            assert self._repo is not None
            self._manifest = read_manifest(self._repo, self.id)
        return self._manifest

    def tree(self) -> pygit2.Tree:
        assert self._repo is not None
        return entry_tree(self._repo, self.id)


def entry_tree(repo: pygit2.Repository, entry_id: str) -> pygit2.Tree:
    try:
        obj = repo.get(entry_id)
    except (ValueError, pygit2.GitError):
        obj = None
    if obj is None or obj.type != pygit2.enums.ObjectType.COMMIT:
        raise RefNotFound(f"entry {entry_id[:12]} is indexed but its objects are missing; fetch it (git tvault fetch)")
    return obj.tree


def blob_cap(path: str) -> int:
    """The most bytes a reader takes for one part of an entry (docs/FORMAT.md, Limits)."""
    if path.endswith(".json"):
        return MAX_JSON_BLOB
    return MAX_PATCH if path == PATCH else MAX_TEXT_BLOB


def blob_size(repo: pygit2.Repository, oid: pygit2.Oid | str, what: str, cap: int) -> int:
    """The size of blob ``oid`` from its header (nothing is inflated); CorruptEntry when it is not a
    blob, is missing or is over ``cap``: a 300 KB zlib bomb must never become 96 MiB in memory."""
    try:
        kind, size = repo.odb.read_header(oid if isinstance(oid, pygit2.Oid) else pygit2.Oid(hex=oid))
    except (KeyError, ValueError, pygit2.GitError):
        raise CorruptEntry(f"{what} is missing from the repository") from None
    if kind != pygit2.enums.ObjectType.BLOB:
        raise CorruptEntry(f"{what} is not a file")
    if size > cap:
        raise CorruptEntry(f"{what} is {size} bytes, over the {cap} byte limit")
    return size


def read_blob(repo: pygit2.Repository, tree: pygit2.Tree, path: str, cap: int | None = None) -> bytes | None:
    """A part of an entry (None when absent), its size checked from the header before it is read."""
    try:
        e = tree[path]
    except (KeyError, ValueError):
        return None
    if e.filemode not in (
        pygit2.enums.FileMode.BLOB,
        pygit2.enums.FileMode.BLOB_EXECUTABLE,
        pygit2.enums.FileMode.LINK,
    ):
        raise CorruptEntry(f"{path} in the entry is not a file")
    ensure_present(repo, [e.id], path)
    blob_size(repo, e.id, f"{path} in the entry", blob_cap(path) if cap is None else cap)
    return blob_of(repo, e.id).data


def read_text(repo: pygit2.Repository, tree: pygit2.Tree, path: str) -> str:
    """A text part (architecture, source, patch): '' when absent; over its limit, a note saying so."""
    try:
        data = read_blob(repo, tree, path)
    except CorruptEntry as e:
        return f"({e})\n"
    return (data or b"").decode("utf-8", "replace")


def read_json(repo: pygit2.Repository, entry_id: str, path: str) -> Any:
    where = f"entry {entry_id[:10]}: {path}"
    try:
        data = read_blob(repo, entry_tree(repo, entry_id), path)
    except CorruptEntry as e:
        raise CorruptEntry(f"entry {entry_id[:10]}: {e}; the entry is damaged") from None
    return None if data is None else parse_json(data, where)


def read_manifest(repo: pygit2.Repository, entry_id: str) -> Manifest:
    """The validated manifest; RefNotFound (objects not here), CorruptEntry or UnsupportedFormat."""
    tree = entry_tree(repo, entry_id)
    try:
        data = read_blob(repo, tree, MANIFEST)
    except CorruptEntry as e:
        raise CorruptEntry(f"entry {entry_id[:10]}: {e}; the entry is damaged") from None
    return _parse_manifest(data, entry_id)


def read_manifests(repo: pygit2.Repository, ids: list[str]) -> dict[str, Manifest | TvaultError | None]:
    """Many manifests at once, for building the query cache: per id the manifest, None (the entry's
    objects are not here), or the error that makes it unreadable (damaged, newer format). One bad
    entry never fails the others.

    One ``git cat-file --batch`` reads 100,000 of them in ~1 s; libgit2, one
    entry at a time (commit, tree, blob), takes ~5 s. ``--batch-check`` first
    gives every size from the object headers, so a manifest over the limit is
    never read. Where git cannot be run, it is one at a time.
    """
    out: dict[str, Manifest | TvaultError | None] = {}
    if promisor_remote(repo) is not None:  # a partial clone: the manifests not here yet, in one fetch
        ensure_present(repo, _manifest_blobs(repo, ids), "manifests")
    try:
        spec = "".join(f"{i}:{MANIFEST}\n" for i in ids).encode()
        env = git_env(repo)  # this repository and no other, C locale: how tvault runs git everywhere
        p = subprocess.run(["git", "cat-file", "--batch-check"], input=spec, capture_output=True, check=True, env=env)
        heads = p.stdout.split(b"\n")
        ok = []
        for i, line in zip(ids, heads):
            head = line.split()
            if len(head) == 3 and head[1] == b"blob" and head[2].isdigit() and int(head[2]) <= MAX_JSON_BLOB:
                ok.append(i)
            else:
                out[i] = _one(repo, i)
        p = subprocess.run(
            ["git", "cat-file", "--batch"],
            input="".join(f"{i}:{MANIFEST}\n" for i in ok).encode(),
            capture_output=True,
            check=True,
            env=env,
        )
    except (OSError, subprocess.CalledProcessError):
        return {i: _one(repo, i) for i in ids}
    data, pos = p.stdout, 0
    for i in ok:
        end = data.index(b"\n", pos)
        head = data[pos:end].split()
        pos = end + 1
        if len(head) != 3:  # changed between the two reads: the careful path decides
            out[i] = _one(repo, i)
            continue
        size = int(head[2])
        try:
            out[i] = _parse_manifest(data[pos : pos + size], i)
        except TvaultError as e:
            out[i] = e
        pos += size + 1
    return out


def _manifest_blobs(repo: pygit2.Repository, ids: list[str]) -> list[pygit2.Oid]:
    """The manifest blob ids of the entries here (commits and trees: a blob:none clone has them)."""
    out = []
    for i in ids:
        try:
            obj = repo.get(i)
            if obj is not None and obj.type == pygit2.enums.ObjectType.COMMIT:
                out.append(obj.tree[MANIFEST].id)
        except (KeyError, ValueError, pygit2.GitError):
            continue
    return out


def _one(repo: pygit2.Repository, entry_id: str) -> Manifest | TvaultError | None:
    """One manifest through libgit2: None when the objects are not here, the error when unreadable."""
    try:
        return read_manifest(repo, entry_id)
    except RefNotFound:
        return None
    except TvaultError as e:
        return e


def _parse_manifest(data: bytes | None, entry_id: str) -> Manifest:
    where = f"entry {entry_id[:10]}"
    if data is None:
        raise CorruptEntry(f"{where} has no {MANIFEST}; it is not a tvault entry")
    return validate_manifest(parse_json(data, f"{where}: {MANIFEST}"), where)


def tensor_table(repo: pygit2.Repository, entry_id: str, path: str = WEIGHTS) -> TensorTable:
    """The tensor table at ``path`` (chunk size and records); an empty table when the file is absent.

    The manifest's version is checked first: a table of a newer major format is never misread.
    """
    read_manifest(repo, entry_id)
    doc = read_json(repo, entry_id, path)
    return TensorTable() if doc is None else parse_table(doc, f"entry {entry_id[:10]}: {path}")


def weight_records(repo: pygit2.Repository, entry_id: str, path: str = WEIGHTS) -> dict[str, dict[str, Any]]:
    """Tensor records in state_dict order: name -> {dtype, shape, nbytes, chunks}."""
    table = tensor_table(repo, entry_id, path)
    for n, rec in table.tensors.items():  # every record, before any caller formats or reads one
        validate_tensor_record(n, rec, f"entry {entry_id[:10]}: {path}", table.chunk_bytes)
    return table.tensors


def entries(repo: pygit2.Repository) -> list[Entry]:
    """All indexed entries, newest first (by creation time in the manifest)."""
    out: list[Entry] = []
    for commit, lines in notes.walk(repo):
        for i, n in enumerate(lines):
            if not n.removed:
                out.append(Entry(n.entry, commit, i, n.name, n.result, _repo=repo))
    readable = []
    for e in preferred(out):
        try:
            _ = e.manifest
        except TvaultError:  # objects not here, damaged or newer: 'git tvault fsck' lists them
            continue
        readable.append(e)
    readable.sort(key=lambda e: (str(e.manifest.get("created") or ""), e.id), reverse=True)
    return readable


def entries_on(repo: pygit2.Repository, commit: str) -> list[Entry]:
    return [
        Entry(n.entry, commit, i, n.name, n.result, removed=n.removed, _repo=repo)
        for i, n in enumerate(notes.read(repo, commit))
    ]


def resolve_commit(repo: pygit2.Repository, rev: str) -> str:
    try:
        obj = repo.revparse_single(rev)
        return str(obj.peel(pygit2.Commit).id)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        raise RefNotFound(f"unknown revision {rev!r}: not a commit in this repository") from None


def resolve(repo: pygit2.Repository, ref: str) -> Entry:
    """``<id-prefix>``, ``<commit-ish>:<index>`` or ``NAME@<version|alias|latest|best>`` -> Entry."""
    parsed = EntryRef.parse(ref)
    if parsed is not None and parsed.kind == "name":
        from tvault_git.registry import names  # models builds on this module

        return names.resolve(repo, parsed.name, parsed.selector)
    if parsed is not None and parsed.kind == "index":
        commit = resolve_commit(repo, parsed.rev)
        found = entries_on(repo, commit)
        i = parsed.index
        if i >= len(found):
            have = f"indexes 0..{len(found) - 1}" if found else "no entries"
            raise RefNotFound(f"commit {commit[:7]} has {have}; there is no model {i}", ref=ref)
        if found[i].removed:
            raise RefNotFound(f"model {i} on commit {commit[:7]} (entry {found[i].short}) was removed (git tvault rm)")
        return found[i]
    if parsed is not None and parsed.kind == "id":
        matches = _by_prefix(repo, parsed.prefix)
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            cands = ", ".join(f"{e.short} ({e.ref})" for e in matches[:10])
            raise AmbiguousRef(f"entry ref {parsed.text!r} is ambiguous; candidates: {cands}", ref=parsed.text)
    shown = ref.strip() if isinstance(ref, str) else ref
    raise RefNotFound(f"no entry {shown!r}; {_suggest(repo, str(shown))}", ref=shown)


def _suggest(repo: pygit2.Repository, ref: str) -> str:
    """What the user probably meant: a model name without @, a commit without :N, a too-short id."""
    if NAME_RE.match(ref) and any(n.name == ref for _, lines in notes.walk(repo, containing=f" {ref} ") for n in lines):
        return f"{ref!r} is a model: say which version, e.g. {ref}@latest, {ref}@best or {ref}@1 (git tvault history {ref})"
    try:
        commit = resolve_commit(repo, ref)
    except RefNotFound:
        commit = None
    if commit is not None:
        n = len(entries_on(repo, commit))
        if n:
            return f"{ref!r} is a commit with {n} entr{'y' if n == 1 else 'ies'}: use {ref}:0" + (
                f" .. {ref}:{n - 1}" if n > 1 else ""
            )
        return f"{ref!r} is a commit with no entries (git tvault find --hash {ref} lists entries by commit)"
    if re.fullmatch(r"[0-9a-fA-F]{1,3}", ref):
        return f"an entry id prefix needs at least 4 characters, {ref!r} has {len(ref)}"
    return "use an entry id, COMMIT:INDEX or NAME@VERSION (see 'git tvault log')"


def preferred(found: list[Entry]) -> list[Entry]:
    """One Entry per id. An entry can be listed on several commits (the post-commit hook attaches
    dirty-tree entries to the commit holding their code; rewrites copy notes): keep the one on a
    commit other than its base commit, then the smallest commit id, the rule query.find uses too."""
    by_id: dict[str, list[Entry]] = {}
    for e in found:
        by_id.setdefault(e.id, []).append(e)
    out = []
    for group in by_id.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        try:
            base = group[0].manifest.get("commit")
        except TvaultError:
            base = None
        out.append(min(group, key=lambda e: (e.commit == base, e.commit)))
    return out


def _by_prefix(repo: pygit2.Repository, prefix: str) -> list[Entry]:
    want = (REF_PREFIX + prefix).encode()
    if len(prefix) == 40:
        ids = [prefix] if repo.references.get(REF_PREFIX + prefix) is not None else []
    else:  # raw names: no Python object per ref
        ids = [r[len(REF_PREFIX) :].decode() for r in repo.raw_listall_references() if r.startswith(want)]
    if not ids:
        return []
    wanted = set(ids)
    found: list[Entry] = []
    listed: set[str] = set()
    for commit, lines in notes.walk(repo, containing=prefix):  # notes that cannot list it stay unparsed
        for i, n in enumerate(lines):
            if n.entry in wanted:
                listed.add(n.entry)
                if not n.removed:
                    found.append(Entry(n.entry, commit, i, n.name, n.result, _repo=repo))
    for eid in sorted(wanted - listed):  # its ref, no note (git notes prune): still an entry, unindexed
        try:
            m = read_manifest(repo, eid)
        except TvaultError:
            continue
        mc = m.get("commit")
        commit = mc if isinstance(mc, str) else "0" * 40
        res = m.get("result")
        e = Entry(eid, commit, -1, m.get("name"), None if res is None else repr(float(res)), _repo=repo)
        e._manifest = m
        found.append(e)
    return preferred(found)
