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
import subprocess
import time
from collections.abc import Iterator
from typing import NamedTuple

import pygit2

from tvault_git.errors import StorageError
from tvault_git.gitutil.repo import common_dir, gc_lock, git_env, tvault_dir
from tvault_git.gitutil.repo import pack_dir as repo_pack_dir
from tvault_git.storage.packmerge import remove_pack, tvault_packs
from tvault_git.storage.packread import PackIndex
from tvault_git.storage.packwrite import KEEP_TEXT, sweep_temp

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no reclaiming
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "storage.lock"


class Reclaimed(NamedTuple):
    temp_files: int
    packs: int
    keep_files: int
    bytes: int


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


def _referenced(repo: pygit2.Repository) -> set[str]:
    """Every object reachable from a ref, a reflog or the index, as ``git gc`` counts them."""
    p = subprocess.run(
        ["git", "rev-list", "--objects", "--no-object-names", "--all", "--reflog", "--indexed-objects"],
        capture_output=True,
        text=True,
        env=git_env(repo, {"LC_ALL": "C"}),
        cwd=common_dir(repo),
    )
    if p.returncode != 0:
        raise StorageError(f"could not list the referenced objects: {p.stderr.strip() or p.returncode}; run 'git fsck'")
    return set(p.stdout.split())


MIN_AGE_S = 3600.0  # packs younger than this are spared (a multi-process entry may still publish them)


def reclaim(
    repo: pygit2.Repository, dry_run: bool = False, wait: float = 60.0, min_age: float = MIN_AGE_S
) -> Reclaimed:
    """Remove killed writers' temp files and weight packs nothing references; returns what went.

    Waits up to ``wait`` seconds for running writers to finish (they hold
    the shared lock); a pack any referenced object lives in is kept whole, and
    so is one modified less than ``min_age`` seconds ago (writers freshen the
    packs whose blobs they reuse, see ``freshen``).
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
        temps, temp_bytes = (0, 0) if dry_run else sweep_temp(pack_dir, min_age=0.0)
        refs = _referenced(repo)
        dead: list[str] = []
        now = time.time()
        for base in tvault_packs(pack_dir):
            if now - _mtime(base + ".pack") < min_age:
                continue
            try:
                oids = [oid for oid, _, _ in PackIndex(base + ".idx").entries()]
            except (OSError, ValueError):
                continue
            if not any(o in refs for o in oids):
                dead.append(base)
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
        freed = temp_bytes + sum(_size(b + ".pack") + _size(b + ".idx") for b in dead)
        if dry_run:
            return Reclaimed(0, len(dead), len(lone), freed)
        if dead:
            with gc_lock(repo) as lock:
                if not lock.acquired:
                    raise StorageError("a git gc is running; run 'git tvault gc' again once it has finished")
                for b in dead:
                    remove_pack(b)
        for path in lone:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        return Reclaimed(temps, len(dead), len(lone), freed)


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
