"""Keeping the number of weight packs small: small ``.keep`` packs are merged.

Every ``log_all`` that stores new tensors adds a pack (up to four for big
models), and every object lookup, by git, libgit2 or us, asks each pack's
index in turn: with 2,000 packs a ``log_all`` of a small model took 200 ms
instead of 4 ms and a load 111 ms instead of 5. So once ``MERGE_AT`` small
tvault packs (under ``SMALL_PACK`` bytes) exist, they are merged into one (the smallest of them:
``geometric``, so a merged pack is not copied again by every merge).

Merging copies each object's packed bytes verbatim (they are whole blobs of
stored zlib blocks, so their CRC-32s stay valid), drops duplicates, and
hashes the new pack; nothing is recompressed. Big packs are left alone:
rewriting them would cost a second write of the model. The new pack is
installed like any other (``.keep``, ``.pack``, ``.idx``) before the old
ones are removed (``.idx`` first, so git stops looking there), which is what
``git repack`` does too: a reader that already opened an old pack keeps its
file, and one that finds it gone looks again.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable
from typing import NamedTuple

import pygit2

from tvault_git.gitutil.repo import gc_lock, tvault_dir
from tvault_git.gitutil.repo import pack_dir as repo_pack_dir
from tvault_git.storage.packread import PackIndex
from tvault_git.storage.packwrite import KEEP_TEXT, TMP_PACK, crc32, install_pack, temp_file, write_pieces

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no merging
    fcntl = None  # type: ignore[assignment]

SMALL_PACK = 64 << 20
MERGE_AT = 32


class _Source(NamedTuple):
    base: str  # path without extension
    objects: list[tuple[str, int, int, int]]  # oid, offset, length, crc
    size: int


def tvault_packs(pack_dir: str) -> list[str]:
    """Paths (without extension) of the packs tvault-git wrote, by their ``.keep`` marker."""
    out: list[str] = []
    try:
        names = os.listdir(pack_dir)
    except OSError:
        return out
    for n in names:
        if n.startswith("pack-") and n.endswith(".keep"):
            base = os.path.join(pack_dir, n[:-5])
            try:
                with open(base + ".keep") as f:
                    if f.read(len(KEEP_TEXT)) != KEEP_TEXT:
                        continue
            except OSError:
                continue
            if os.path.exists(base + ".idx") and os.path.exists(base + ".pack"):
                out.append(base)
    return out


def maybe_merge(repo: pygit2.Repository) -> int:
    """Merge the small tvault packs once there are ``MERGE_AT`` of them; returns how many were merged.

    Cheap when there is nothing to do (one directory listing). One merger at
    a time per repository (an ``flock``); a second caller just returns.
    """
    pack_dir = repo_pack_dir(repo)
    small = [b for b in tvault_packs(pack_dir) if _size(b + ".pack") < SMALL_PACK]
    if len(small) < MERGE_AT or fcntl is None:
        return 0
    with open(os.path.join(_tvault_dir(repo), "merge-packs"), "a") as guard:
        try:
            fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return 0  # another process is merging
        small = [b for b in tvault_packs(pack_dir) if _size(b + ".pack") < SMALL_PACK]
        if len(small) < MERGE_AT:
            return 0
        return merge(repo, pack_dir, geometric({b: _size(b + ".pack") for b in small}))


def geometric(sizes: dict[str, int]) -> list[str]:
    """Which packs to merge (``sizes``: pack path without extension -> bytes): the smallest half at least, then each next larger pack while
    it is at most twice what is being merged so far (as ``git repack --geometric=2``).

    Why not all of them: a registry of small models would otherwise copy its one merged pack
    again on every merge (2.8 MB each 32 entries at 2,000 entries: as many bytes written as the
    entries themselves, and growing). Merged packs now double in size from one level to the next,
    so a byte is copied about log2(entries / MERGE_AT) times, and fewer than ~17 of them (64 MB /
    one entry's pack) stay beside the new ones.
    """
    by_size = sorted(sizes, key=lambda b: (sizes[b], b))
    take = max(2, MERGE_AT // 2)
    total = sum(sizes[b] for b in by_size[:take])
    for b in by_size[take:]:
        if sizes[b] > 2 * total:
            break
        take += 1
        total += sizes[b]
    return by_size[:take]


def merge(repo: pygit2.Repository, pack_dir: str, bases: list[str], keep: Callable[[str], bool] | None = None) -> int:
    """Merge the given packs into one; returns how many were merged.

    A pack that is not ours to copy (deltas, damage) is left out and left
    alone, so it cannot make every later ``log_all`` try again in vain.
    ``keep``: copy only the objects it accepts (storage/reclaim.py shrinking a
    pack whose other objects nothing references; then one pack is enough).
    """
    sources = [src for src in map(_read_source, bases) if src is not None]
    if len(sources) < (2 if keep is None else 1):
        return 0
    seen: set[str] = set()
    plan: list[tuple[_Source, str, int, int, int]] = []
    for src in sources:
        for oid, off, ln, crc in src.objects:
            if oid not in seen and (keep is None or keep(oid)):
                seen.add(oid)
                plan.append((src, oid, off, ln, crc))
    if not plan:
        return 0
    fd, tmp = temp_file(pack_dir, TMP_PACK)
    try:
        sha = hashlib.sha1()
        header = b"PACK" + struct.pack(">II", 2, len(plan))
        sha.update(header)
        write_pieces(fd, [header])
        pos = len(header)
        entries = []
        bad = None
        files: dict[str, int] = {}
        try:
            for src, oid, off, ln, crc in plan:
                if src.base not in files:
                    files[src.base] = os.open(src.base + ".pack", os.O_RDONLY)
                data = os.pread(files[src.base], ln, off)
                if len(data) != ln or crc32(data) & 0xFFFFFFFF != crc:
                    bad = src.base  # damaged: merge the others, leave this one as it is
                    break
                sha.update(data)
                write_pieces(fd, [data])
                entries.append((oid, pos, crc))
                pos += ln
        finally:
            for f in files.values():
                os.close(f)
        if bad is not None:
            os.close(fd)
            fd = -1
            os.unlink(tmp)
            return merge(repo, pack_dir, [b for b in bases if b != bad], keep)
        trailer = sha.digest()
        write_pieces(fd, [trailer])
        os.close(fd)
        fd = -1
        base = os.path.join(pack_dir, "pack-" + install_pack(pack_dir, tmp, entries, trailer))
    finally:
        if fd != -1:
            os.close(fd)
        if os.path.exists(tmp):  # still here only if something failed
            os.unlink(tmp)
    with gc_lock(repo) as lock:
        if not lock.acquired:  # a git gc is running: it may open these packs any moment
            return 0  # (the copies are installed and harmless; the next merge drops them)
        for src in sources:
            if src.base != base:
                remove_pack(src.base)
    return len(sources)


def remove_pack(base: str) -> None:
    """Delete a pack, index first (git stops looking there); call it holding ``gc_lock``."""
    for ext in (".idx", ".pack", ".keep", ".rev"):
        try:
            os.unlink(base + ext)
        except FileNotFoundError:
            pass


def _read_source(base: str) -> _Source | None:
    """A pack's objects with their extents, or None if it holds anything but whole blobs."""
    try:
        idx = PackIndex(base + ".idx")
        size = _size(base + ".pack")
        with open(base + ".pack", "rb") as f:
            head = f.read(12)
            if head[:8] != b"PACK\x00\x00\x00\x02" or struct.unpack(">I", head[8:12])[0] != idx.n:
                return None
            listed = sorted(idx.entries(), key=lambda e: e[1])
            objects = []
            for j, (oid, off, crc) in enumerate(listed):
                end = listed[j + 1][1] if j + 1 < len(listed) else size - 20
                f.seek(off)
                if (f.read(1)[0] >> 4) & 7 != 3:  # not a whole blob (deltas would need their base)
                    return None
                objects.append((oid, off, end - off, crc))
    except (OSError, ValueError, struct.error, IndexError):
        return None
    return _Source(base, objects, size)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 1 << 62


def _tvault_dir(repo: pygit2.Repository) -> str:
    path = tvault_dir(repo)
    os.makedirs(path, exist_ok=True)
    return path
