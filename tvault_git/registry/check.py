"""``git tvault fsck``: every indexed entry that cannot be read or verified here, and why.

Checks what a reader checks before it returns data (manifest, tensor tables, chunk sizes from the
object headers, declared against stored bytes) without reading a tensor byte, so it is fast and
safe on a hostile registry. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import pygit2

from tvault_git.errors import CorruptEntry, TvaultError, UnsupportedFormat
from tvault_git.registry import notes, orphans
from tvault_git.registry.entries import Entry, blob_size, preferred, read_manifests, tensor_table, weight_records
from tvault_git.spec.format import OPTIMIZER_STATE, WEIGHTS, check_declared, validate_tensor_record


@dataclass(frozen=True)
class Problem:
    entry: str  # entry id, or the annotated commit for a note that was not read
    ref: str  # COMMIT:N
    kind: str  # "damaged", "unsupported", "missing" (objects not here), "note", "orphaned" (registry/orphans.py)
    why: str
    error: type[TvaultError] = CorruptEntry


def verify_tables(repo: pygit2.Repository, entry_id: str) -> None:
    """Raise CorruptEntry when a tensor table is malformed, a chunk is missing or has the wrong size,
    or the declared bytes are out of proportion to the bytes stored (see spec.format.check_declared)."""
    for path in (WEIGHTS, OPTIMIZER_STATE):
        recs = weight_records(repo, entry_id, path)
        chunk_bytes = tensor_table(repo, entry_id, path).chunk_bytes
        where = f"entry {entry_id[:10]}: {path}"
        sizes: dict[str, int] = {}
        declared = 0
        for name, rec in recs.items():
            _, _, nbytes, chunks = validate_tensor_record(name, rec, where, chunk_bytes)
            declared += nbytes
            for i, c in enumerate(chunks):
                want = max(0, min(chunk_bytes, nbytes - i * chunk_bytes))
                got = sizes.get(c)
                if got is None:
                    got = sizes[c] = blob_size(repo, c, f"{where}: tensor {name!r} chunk {i} ({c[:12]})", chunk_bytes)
                if got != want:
                    raise CorruptEntry(f"{where}: tensor {name!r} chunk {i} is {got} bytes, expected {want}")
        check_declared(declared, sum(sizes.values()), where, None)


def check(repo: pygit2.Repository, tables: bool = True) -> tuple[int, list[Problem]]:
    """(entries checked, problems): damaged, newer-format and not-fetched entries, unread notes."""
    found: list[Entry] = []
    for commit, lines in notes.walk(repo):
        for i, n in enumerate(lines):
            if not n.removed:
                found.append(Entry(n.entry, commit, i, n.name, n.result, _repo=repo))
    entries = sorted(preferred(found), key=lambda e: e.id)
    problems = [
        Problem(c, c[:7], "note", f"commit {c[:10]}: {why}; its entries are not listed")
        for c, why in sorted(notes.skipped().items())
    ]
    mans = read_manifests(repo, [e.id for e in entries])
    for e in entries:
        m = mans.get(e.id)
        if m is None:
            problems.append(
                Problem(
                    e.id, e.ref, "missing", "objects not here (git tvault fetch REMOTE " + e.id[:12] + ")", TvaultError
                )
            )
            continue
        if isinstance(m, TvaultError):
            kind = "unsupported" if isinstance(m, UnsupportedFormat) else "damaged"
            problems.append(Problem(e.id, e.ref, kind, str(m), type(m)))
            continue
        if tables:
            try:
                verify_tables(repo, e.id)
            except TvaultError as err:
                problems.append(Problem(e.id, e.ref, "damaged", str(err), type(err)))
    for o in orphans.find(repo):  # not damage: loadable by id, re-attached by 'git tvault reattach'
        problems.append(Problem(o.entry, o.commit[:7] or "unindexed", "orphaned", o.why(), TvaultError))
    return len(entries), problems
