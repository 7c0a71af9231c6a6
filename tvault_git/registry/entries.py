"""Registry queries: listing entries, resolving entry refs, reading their parts.

Torch-free on purpose: ``git tvault log/show/find`` must start fast.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from typing import Any

import pygit2

from tvault_git.errors import AmbiguousRef, CorruptEntry, RefNotFound
from tvault_git.registry import notes
from tvault_git.spec.format import MANIFEST, NAME_RE, REF_PREFIX, WEIGHTS, check_version, parse_json
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
    _repo: pygit2.Repository | None = field(default=None, repr=False, compare=False)
    _manifest: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def short(self) -> str:
        return self.id[:10]

    @property
    def ref(self) -> str:
        return f"{self.commit[:7]}:{self.index}"

    @property
    def manifest(self) -> dict[str, Any]:
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


def read_blob(repo: pygit2.Repository, tree: pygit2.Tree, path: str) -> bytes | None:
    try:
        e = tree[path]
    except KeyError:
        return None
    obj = repo[e.id]
    if obj.type != pygit2.enums.ObjectType.BLOB:
        raise CorruptEntry(f"{path} in the entry is not a file")
    return obj.data


def read_json(repo: pygit2.Repository, entry_id: str, path: str) -> Any:
    data = read_blob(repo, entry_tree(repo, entry_id), path)
    return None if data is None else parse_json(data, f"entry {entry_id[:10]}: {path}")


def read_manifest(repo: pygit2.Repository, entry_id: str) -> dict[str, Any]:
    return _parse_manifest(read_blob(repo, entry_tree(repo, entry_id), MANIFEST), entry_id)


def read_manifests(repo: pygit2.Repository, ids: list[str]) -> dict[str, dict[str, Any] | None]:
    """Many manifests at once (None: the entry's objects are not here), for building the query cache.

    One ``git cat-file --batch`` reads 100,000 of them in ~1 s; libgit2, one
    entry at a time (commit, tree, blob), takes ~5 s. Where git cannot be
    run, it is one at a time.
    """
    try:
        p = subprocess.run(
            ["git", "--git-dir", repo.path, "cat-file", "--batch"],
            input="".join(f"{i}:{MANIFEST}\n" for i in ids).encode(),
            capture_output=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        out: dict[str, dict[str, Any] | None] = {}
        for i in ids:
            try:
                out[i] = read_manifest(repo, i)
            except RefNotFound:
                out[i] = None
        return out
    data, pos, out = p.stdout, 0, {}
    for i in ids:
        end = data.index(b"\n", pos)
        head = data[pos:end].split()
        pos = end + 1
        if len(head) != 3:  # "<name> missing": the entry commit is not here (fetch it), or has no manifest
            try:
                entry_tree(repo, i)
            except RefNotFound:
                out[i] = None
                continue
            _parse_manifest(None, i)  # raises: not a tvault entry
        size = int(head[2])
        if head[1] != b"blob":
            raise CorruptEntry(f"entry {i[:10]}: {MANIFEST} is not a file")
        out[i] = _parse_manifest(data[pos : pos + size], i)
        pos += size + 1
    return out


def _parse_manifest(data: bytes | None, entry_id: str) -> dict[str, Any]:
    where = f"entry {entry_id[:10]}"
    if data is None:
        raise CorruptEntry(f"{where} has no {MANIFEST}; it is not a tvault entry")
    m = parse_json(data, f"{where}: {MANIFEST}")
    if not isinstance(m, dict):
        raise CorruptEntry(f"{where}: {MANIFEST} is not an object")
    check_version(m, where)
    return m


def tensor_table(repo: pygit2.Repository, entry_id: str, path: str = WEIGHTS) -> TensorTable:
    """The tensor table at ``path`` (chunk size and records); an empty table when the file is absent.

    The manifest's version is checked first: a table of a newer major format is never misread.
    """
    read_manifest(repo, entry_id)
    doc = read_json(repo, entry_id, path)
    return TensorTable() if doc is None else parse_table(doc, f"entry {entry_id[:10]}: {path}")


def weight_records(repo: pygit2.Repository, entry_id: str, path: str = WEIGHTS) -> dict[str, dict[str, Any]]:
    """Tensor records in state_dict order: name -> {dtype, shape, nbytes, chunks}."""
    return tensor_table(repo, entry_id, path).tensors


def entries(repo: pygit2.Repository) -> list[Entry]:
    """All indexed entries, newest first (by creation time in the manifest)."""
    out: list[Entry] = []
    for commit, lines in notes.walk(repo):
        for i, n in enumerate(lines):
            out.append(Entry(n.entry, commit, i, n.name, n.result, _repo=repo))
    out = preferred(out)
    out.sort(key=lambda e: (e.manifest.get("created", ""), e.id), reverse=True)
    return out


def entries_on(repo: pygit2.Repository, commit: str) -> list[Entry]:
    return [Entry(n.entry, commit, i, n.name, n.result, _repo=repo) for i, n in enumerate(notes.read(repo, commit))]


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
            raise RefNotFound(f"commit {commit[:7]} has {have}; there is no model {i}")
        return found[i]
    if parsed is not None and parsed.kind == "id":
        matches = _by_prefix(repo, parsed.prefix)
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            cands = ", ".join(f"{e.short} ({e.ref})" for e in matches[:10])
            raise AmbiguousRef(f"entry ref {parsed.text!r} is ambiguous; candidates: {cands}")
    shown = ref.strip() if isinstance(ref, str) else ref
    raise RefNotFound(f"no entry {shown!r}; {_suggest(repo, str(shown))}")


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
        except (RefNotFound, CorruptEntry):
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
    for commit, lines in notes.walk(repo, containing=prefix):  # notes that cannot list it stay unparsed
        for i, n in enumerate(lines):
            if n.entry in wanted:
                found.append(Entry(n.entry, commit, i, n.name, n.result, _repo=repo))
    return preferred(found)
