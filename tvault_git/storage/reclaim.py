"""Reclaiming space that killed writers leave behind, without touching what a live one needs.

A ``log_all`` killed after its weight pack is installed but before its note
is written leaves a kept pack that nothing references; git never deletes a
kept pack, so without this the space is gone for good. Killed writers also
leave ``tmp_tvault_*`` files. ``reclaim`` removes both, and ``.keep`` files
whose pack never arrived.

Safety: every writer holds ``writing`` (a shared ``flock`` on
``tvault/storage.lock``) from before it looks for blobs the repository
already has until its entry's ref exists; ``reclaim`` works under the
exclusive lock, so no writer can be between "this blob exists, skip it" and
"my entry references it" while a pack is judged unreferenced. Packs are
deleted holding git's gc lock (see ``gc_lock``) so a running ``git gc``
never loses a pack it listed.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import pygit2

from tvault_git.errors import GitCommandError, StorageError
from tvault_git.gitutil.repo import gc_lock, tvault_dir
from tvault_git.gitutil.repo import pack_dir as repo_pack_dir
from tvault_git.gitutil.run import run_git
from tvault_git.spec.format import REF_PREFIX
from tvault_git.storage.packmerge import merge, remove_pack, tvault_packs
from tvault_git.storage.packread import PackIndex
from tvault_git.storage.packwrite import KEEP_TEXT, sweep_temp

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no reclaiming
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "storage.lock"


class Reclaimed(NamedTuple):
    temp_files: int
    packs: int  # removed whole
    keep_files: int
    bytes: int  # measured: the pack directory's size before minus after (a dry run: what would go)
    shrunk: int = 0  # rewritten without the objects nothing references (packs shared with live entries)


@contextlib.contextmanager
def writing(repo: pygit2.Repository) -> Iterator[None]:
    """Mark this process as a writer while it runs (shared lock; the kernel drops it if we die)."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    try:
        f = open(os.path.join(_tvault_dir(repo), LOCK_NAME), "a")
    except OSError:  # read-only repository: the write fails later with its own clear message
        yield
        return
    with f:
        fcntl.flock(f, fcntl.LOCK_SH)
        yield


def _referenced(repo: pygit2.Repository, without: Iterable[str] = ()) -> set[str]:
    """Every object reachable from a ref, a reflog or the index, as ``git gc`` counts them;
    ``without``: as if these entry refs were deleted (a retention dry run)."""
    skip = [f"--exclude={REF_PREFIX}{e}" for e in without]
    return _rev_list(repo, [*skip, "--all", "--reflog", "--indexed-objects"], None, "the referenced objects")


MIN_AGE_S = 3600.0  # packs younger than this are spared (a multi-process entry may still publish them)


def entry_objects(repo: pygit2.Repository, ids: Iterable[str]) -> set[str]:
    """Every object the entry commits ``ids`` reach (their trees and blobs: weights included)."""
    ids = list(ids)
    if not ids:
        return set()
    return _rev_list(repo, ["--stdin"], "".join(i + "\n" for i in ids).encode(), "the entries' objects")


def _rev_list(repo: pygit2.Repository, args: list[str], stdin: bytes | None, what: str) -> set[str]:
    """``git rev-list --objects`` ids (no names) as a set; a failure is a StorageError saying ``what``."""
    try:
        out = run_git(repo, ["rev-list", "--objects", "--no-object-names", *args], input=stdin)
    except GitCommandError as e:
        raise StorageError(f"could not list {what}: {e.stderr or e.returncode}; run 'git fsck'") from None
    return set(out.split())


def reclaim(
    repo: pygit2.Repository,
    dry_run: bool = False,
    wait: float = 60.0,
    min_age: float = MIN_AGE_S,
    released: frozenset[str] = frozenset(),
    without: Iterable[str] = (),
) -> Reclaimed:
    """Remove killed writers' temp files and weight packs nothing references; returns what went.

    Waits up to ``wait`` seconds for running writers to finish (they hold
    the shared lock); a pack any referenced object lives in is kept whole, and
    so is one modified less than ``min_age`` seconds ago (writers freshen the
    packs whose blobs they reuse, see ``freshen``).

    ``released``: the objects of entries just removed (``git tvault gc --keep-best``). A pack
    whose unreferenced objects are all released holds nothing a writer still publishing could
    need, whatever its age; one that also holds live objects is rewritten without the released
    ones (a merged pack shares many entries' weights), so their bytes are freed too.
    ``without``: a dry run of that, as if these entry refs were already deleted.
    """
    pack_dir = repo_pack_dir(repo)
    if fcntl is None:  # pragma: no cover
        raise StorageError("reclaiming space needs flock (not available on this platform)")
    with open(os.path.join(_tvault_dir(repo), LOCK_NAME), "a") as guard:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise StorageError(
                        f"tvault writers kept running for {wait:.0f}s; run 'git tvault gc' again when they are done"
                    ) from None
                time.sleep(0.05)
        size_before = _dir_size(pack_dir)
        temps, temp_bytes = (0, 0) if dry_run else sweep_temp(pack_dir, min_age=0.0)
        refs = _referenced(repo, without)
        dead: list[str] = []
        shrink: list[tuple[str, int]] = []  # (pack, bytes its unreferenced objects take)
        now = time.time()
        for base in tvault_packs(pack_dir):
            try:
                extents = _extents(base)
            except (OSError, ValueError):
                continue
            gone = [o for o in extents if o not in refs]
            if not gone:
                continue
            if now - _mtime(base + ".pack") < min_age and not all(o in released for o in gone):
                continue
            if len(gone) == len(extents):
                dead.append(base)
            elif released and all(o in released for o in gone):
                shrink.append((base, sum(extents[o] for o in gone)))
        lone = []
        for n in os.listdir(pack_dir):
            if (
                n.startswith("pack-")
                and n.endswith(".keep")
                and not os.path.exists(os.path.join(pack_dir, n[:-5] + ".pack"))
                and now - _mtime(os.path.join(pack_dir, n)) >= min_age
            ):
                try:
                    with open(os.path.join(pack_dir, n)) as f:
                        if f.read(len(KEEP_TEXT)) == KEEP_TEXT:
                            lone.append(os.path.join(pack_dir, n))
                except OSError:
                    pass
        if dry_run:
            freed = temp_bytes + sum(_size(b + ".pack") + _size(b + ".idx") for b in dead)
            return Reclaimed(0, len(dead), len(lone), freed + sum(n for _, n in shrink), len(shrink))
        if dead:
            with gc_lock(repo) as lock:
                if not lock.acquired:
                    raise StorageError("a git gc is running; run 'git tvault gc' again once it has finished")
                for b in dead:
                    remove_pack(b)
        shrunk = 0
        for b, _ in shrink:  # installs the smaller copy first, then drops the old pack under git's gc lock
            shrunk += merge(repo, pack_dir, [b], keep=refs.__contains__)
        for path in lone:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        freed = max(0, size_before - _dir_size(pack_dir))  # temp files lie there too
        return Reclaimed(temps, len(dead), len(lone), freed, shrunk)


def _extents(base: str) -> dict[str, int]:
    """oid -> bytes it takes in the pack (from the index offsets)."""
    size = os.path.getsize(base + ".pack")
    listed = sorted(PackIndex(base + ".idx").entries(), key=lambda e: e[1])
    return {
        oid: (listed[j + 1][1] if j + 1 < len(listed) else size - 20) - off for j, (oid, off, _) in enumerate(listed)
    }


def _dir_size(path: str) -> int:
    total = 0
    for n in os.listdir(path):
        with contextlib.suppress(OSError):
            total += os.path.getsize(os.path.join(path, n))
    return total


def _mtime(path: str) -> float:
    try:
        return os.path.getmtime(path)
    except OSError:
        return time.time()


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _tvault_dir(repo: pygit2.Repository) -> str:
    path = tvault_dir(repo)
    os.makedirs(path, exist_ok=True)
    return path
