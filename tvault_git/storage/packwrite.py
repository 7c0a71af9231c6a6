"""Git object storage for tensor data: a pack writer that skips zlib's work.

Why not ``Repository.create_blob``? libgit2 deflates every blob at the default
level, and deflate spends its time failing to compress random-looking floats
(~20 MB/s here). A git object may legally be a zlib stream of *stored* blocks
(level 0), which git and libgit2 read normally. We write new blobs straight
into pack files (one sequential write each; up to four for big models, one
per core) with a v2 ``.idx`` and a ``.keep`` file, so that ``git gc`` leaves
the packs alone instead of recompressing and delta-searching weights; ``git
push`` reuses the stored representation as it is.

Work per byte: SHA-1 (object id), Adler-32 (zlib trailer), CRC-32 (index),
the pack's trailing SHA-1, and the write, all over one ~1 MiB slice at a time
while it sits in the CPU cache (see ``_Lane``). The two SHA-1s are most of
the CPU time; the checksums come from zlib-ng (SIMD) where installed.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pygit2

from tvault_git.errors import StorageError
from tvault_git.gitutil.repo import pack_dir as repo_pack_dir

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: temp files are reclaimed by age only
    fcntl = None  # type: ignore[assignment]

try:  # SIMD Adler-32 and CRC-32: ~8 GB/s against stdlib zlib's ~2.5 here
    from zlib_ng.zlib_ng import adler32 as adler32  # re-exported: packread, packmerge
    from zlib_ng.zlib_ng import crc32 as crc32
except ImportError:  # pragma: no cover - zlib-ng is a dependency; stdlib zlib gives the same values
    from zlib import adler32 as adler32
    from zlib import crc32 as crc32

Pieces = list[bytes | memoryview]  # an object's bytes as written: headers, stored blocks, trailers (writev order)
MemoKey = tuple[Any, ...]  # identity of a tensor's storage (see _ID_MEMO)

_STORED_MAX = 0xFFFF  # largest deflate stored block
_ZLIB_HEADER = b"\x78\x01"  # deflate, 32K window, FLEVEL=0 (0x7801 % 31 == 0)
_OBJ_BLOB = 3
_BATCH = 1024  # pieces per writev
_SPLIT_MIN = 16 << 20  # bytes per lane at least: below this, one lane and one pack
_MAX_LANES = 4  # packs per entry at most: every pack is one more index for each object lookup
_STREAM_MIN = 1 << 20  # smaller chunks are always hashed before they are written
_SLICE_BLOCKS = 16  # stored blocks per streamed slice (~1 MiB): every pass over it hits the CPU cache
STALE_TMP_S = 60.0  # an unlocked temp file this old belongs to a killed writer (see sweep_temp)
KEEP_TEXT = "tvault-git: weights, stored uncompressed on purpose"  # our packs' .keep files say this


def blob_id(data: memoryview) -> tuple[str, int]:
    """Git blob id (hex) and Adler-32 of ``data``; releases the GIL on big buffers."""
    h = hashlib.sha1(b"blob %d\0" % data.nbytes)
    h.update(data)
    return h.hexdigest(), adler32(data)


def _type_size_header(obj_type: int, size: int) -> bytes:
    out = bytearray()
    byte = (obj_type << 4) | (size & 0x0F)
    size >>= 4
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return bytes(out)


def _stored_blocks(data: memoryview) -> Pieces:
    """A blob's packed form up to the zlib trailer, as buffers (no data copy): the type/size and
    zlib headers, then a 5-byte header and a payload view per stored block."""
    n = data.nbytes
    pieces: Pieces = [_type_size_header(_OBJ_BLOB, n) + _ZLIB_HEADER]
    pos = 0
    while True:
        ln = min(_STORED_MAX, n - pos)
        final = pos + ln >= n
        pieces.append(struct.pack("<BHH", 1 if final else 0, ln, ln ^ 0xFFFF))
        pieces.append(data[pos : pos + ln])
        pos += ln
        if final:
            return pieces


def _stored_pieces(data: memoryview, adler: int) -> Pieces:
    """The whole packed form: ``_stored_blocks`` and the Adler-32 trailer."""
    return _stored_blocks(data) + [struct.pack(">I", adler & 0xFFFFFFFF)]


# Process-local memo of object ids: (identity key) -> (adler32, oid). A hit still
# recomputes Adler-32 over the bytes (cheap) and must match, so a tensor changed
# behind torch's version counter (``p.data.copy_``) is hashed again.
_ID_MEMO: dict[MemoKey, tuple[int, str]] = {}
_MEMO_MAX = 200_000


def _memo_get(data: memoryview, key: MemoKey | None) -> tuple[str, int] | None:
    """(oid, adler) of bytes seen before at the same place, if their Adler-32 still matches."""
    if key is None:
        return None
    hit = _ID_MEMO.get(key)
    if hit is None:
        return None
    adler = adler32(data)
    return (hit[1], adler) if adler == hit[0] else None


def _memo_put(key: MemoKey | None, adler: int, oid: str) -> None:
    if key is not None:
        if len(_ID_MEMO) > _MEMO_MAX:
            _ID_MEMO.clear()
        _ID_MEMO[key] = (adler, oid)


def _blob_id_memo(data: memoryview, key: MemoKey | None) -> tuple[str, int]:
    oid, adler = blob_id(data)
    _memo_put(key, adler, oid)
    return oid, adler


def write_blobs(
    repo: pygit2.Repository,
    chunks: Sequence[memoryview],
    threads: int | None = None,
    keys: Sequence[MemoKey | None] | None = None,
) -> tuple[list[str], int]:
    """Store every buffer as a git blob; returns (ids in order, bytes newly written).

    Blobs the repository already has are not written again (content
    addressing across entries and models). New ones go into packs that are
    installed as git installs fetched packs (``install_pack``), so neither an
    interrupted call nor a concurrent ``git gc`` leaves anything half seen.

    ``keys`` (optional, one per chunk) identify unchanged memory between calls,
    e.g. (storage pointer, offset, length, torch version counter).

    The chunks are split by size into ``threads`` lanes (default: the CPUs
    this process may use, at most ``_MAX_LANES``; one for small models), each
    writing its own pack in one pass: see ``_Lane``.
    """
    views = [memoryview(c).cast("B") for c in chunks]
    keys = list(keys) if keys is not None else [None] * len(views)
    total = sum(v.nbytes for v in views)
    if threads is None:
        threads = _cpus()
    nlanes = max(1, min(threads, _MAX_LANES, total // _SPLIT_MIN, len(views)))
    loads = [0] * nlanes
    members: list[list[int]] = [[] for _ in range(nlanes)]
    for i in sorted(range(len(views)), key=lambda i: -views[i].nbytes):
        k = loads.index(min(loads))
        loads[k] += views[i].nbytes
        members[k].append(i)
    sweep_temp(repo_pack_dir(repo))
    shared = _Shared(repo, len(views))
    lanes = [_Lane(shared, views, keys, sorted(m)) for m in members if m]
    try:
        if len(lanes) > 1:
            with ThreadPoolExecutor(max_workers=len(lanes)) as pool:
                for _ in pool.map(_Lane.run, lanes):
                    pass
        else:
            for lane in lanes:
                lane.run()
        for lane in lanes:
            lane.finish()
    except BaseException as e:
        for lane in lanes:
            lane.abort()
        if isinstance(e, OSError):
            raise StorageError(
                f"could not write weights into {repo_pack_dir(repo)}: {e.strerror or e}; "
                "free space (or fix permissions) and log again - nothing was recorded"
            ) from e
        raise
    if shared.existing:
        freshen(repo, shared.existing)
    assert all(oid is not None for oid in shared.ids)
    return shared.ids, sum(lane.new_bytes for lane in lanes)  # type: ignore[return-value]


def freshen(repo: pygit2.Repository, oids: set[str]) -> None:
    """Touch the packs holding blobs a writer reuses, as git freshens objects it finds stored.

    ``reclaim`` spares packs younger than its grace period, so a pack a killed
    writer left, whose blobs a new entry now references, is never judged
    unreferenced in the gap before that entry is published.
    """
    from tvault_git.storage.packread import _pack_list  # packread imports this module

    want = [bytes.fromhex(o) for o in oids]
    for idx in _pack_list(repo, refresh=True):
        if any(idx.find(o) is not None for o in want):
            try:
                os.utime(idx.pack_path)
            except OSError:
                pass  # not ours to touch (another user's pack in a read-only place): nothing to reclaim there


def sweep_temp(pack_dir: str, min_age: float = STALE_TMP_S) -> tuple[int, int]:
    """Delete ``tmp_tvault_*`` files of writers that were killed; returns (files, bytes) removed.

    A live writer holds an ``flock`` on each of its temp files (``temp_file``)
    and the kernel drops it when the process dies, so a file nobody holds
    belongs to a dead writer. ``min_age`` covers the instant between creating
    a file and locking it (and platforms without ``flock``: an hour there).
    """
    try:
        names = [n for n in os.listdir(pack_dir) if n.startswith("tmp_tvault_")]
    except OSError:
        return 0, 0
    now = time.time()
    files = freed = 0
    for n in names:
        path = os.path.join(pack_dir, n)
        try:
            st = os.stat(path)
            if now - st.st_mtime <= (min_age if fcntl is not None else max(min_age, 3600.0)):
                continue
            if fcntl is not None:
                fd = os.open(path, os.O_RDONLY)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a live writer holds it
                else:
                    os.unlink(path)
                finally:
                    os.close(fd)
            else:  # pragma: no cover
                os.unlink(path)
            files += 1
            freed += st.st_size
        except OSError:
            pass
    return files, freed


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class _Shared:
    """What the lanes of one ``write_blobs`` call share: ids by chunk, and which blobs are taken."""

    def __init__(self, repo: pygit2.Repository, n: int) -> None:
        self.repo = repo
        self.ids: list[str | None] = [None] * n
        self._claimed: set[str] = set()
        self.existing: set[str] = set()  # blobs found stored already: their packs get freshened
        self._lock = threading.Lock()

    def claim(self, oid: str) -> bool:
        """True exactly once per new blob: the caller must write it."""
        with self._lock:
            if oid in self._claimed:
                return False
            if self.repo.odb.exists(oid):
                self.existing.add(oid)
                return False
            self._claimed.add(oid)
            return True


class _Lane:
    """A share of the chunks and the pack they go to, written in one pass where it pays.

    Each byte of a new blob needs its SHA-1 (the object id), its Adler-32 (zlib
    trailer), the index's CRC-32, the pack's trailing SHA-1 and the write. Done
    one ~1 MiB slice at a time, all five read the slice while it is in the
    CPU cache, and the blob is written before its id is known (*streamed*).
    The id can turn out to name a blob the repository already has: then the
    pack is cut back to where the blob began. To keep that rare, a lane
    streams only while the previous big chunk it saw was new (or it has seen
    none yet); otherwise it hashes a chunk first and writes it only if it is
    new (a second pass). Logging the same model again from a new process, or
    a fine-tuned one whose early layers are frozen, so writes at most one
    chunk per lane in vain.
    """

    def __init__(self, shared: _Shared, views: list[memoryview], keys: list[MemoKey | None], idxs: list[int]) -> None:
        self.shared = shared
        self.views = views
        self.keys = keys
        self.idxs = idxs
        self.writer: _PackWriter | None = None
        self.new_bytes = 0

    def run(self) -> None:
        stream = True
        for pos, i in enumerate(self.idxs):
            v, key = self.views[i], self.keys[i]
            known = _memo_get(v, key)
            if known is None and stream and v.nbytes >= _STREAM_MIN:
                w = self._writer(len(self.idxs) - pos)
                start = w.offset
                oid, adler = w.put(v)
                _memo_put(key, adler, oid)
                self.shared.ids[i] = oid
                if self.shared.claim(oid):
                    self.new_bytes += v.nbytes
                else:
                    w.cut(start)
                    stream = False
                continue
            oid, adler = known if known is not None else _blob_id_memo(v, key)
            self.shared.ids[i] = oid
            new = self.shared.claim(oid)
            if new:
                self._writer(len(self.idxs) - pos).put(v, (oid, adler))
                self.new_bytes += v.nbytes
            elif self.writer is not None:
                self.writer.miscounted()
            if v.nbytes >= _STREAM_MIN:
                stream = new

    def _writer(self, remaining: int) -> _PackWriter:
        """The lane's pack, opened at the first new blob; it expects every later chunk to be new."""
        if self.writer is None:
            self.writer = _PackWriter(self.shared.repo, remaining)
        return self.writer

    def finish(self) -> None:
        if self.writer is not None:
            if self.writer.objects:
                self.writer.finish()
            else:
                self.writer.abort()
            self.writer = None

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None


class _PackWriter:
    """One pack being written, with its CRC-32s and trailing SHA-1 kept as it goes.

    ``count`` is the expected object count (the header comes first and the
    trailer SHA-1 covers it); when fewer objects end up in the pack,
    ``miscounted`` stops the running SHA-1 and ``finish`` fixes the header and
    hashes the pack again from memory.
    """

    def __init__(self, repo: pygit2.Repository, count: int) -> None:
        self.pack_dir = repo_pack_dir(repo)
        os.makedirs(self.pack_dir, exist_ok=True)
        self.fd, self.tmp = temp_file(self.pack_dir, TMP_PACK)
        self.offset = 0
        self.count = count
        self.objects: list[tuple[str, int, int, memoryview, int]] = []  # oid, offset, crc, data, adler
        self._sha: hashlib._Hash | None = hashlib.sha1()
        header = b"PACK" + struct.pack(">II", 2, count)
        self._sha.update(header)
        self._write([header])

    def _write(self, pieces: Pieces) -> None:
        self.offset += write_pieces(self.fd, pieces)

    def _emit(self, pieces: Pieces, crc: int) -> int:
        """Write pieces, adding them to the CRC-32 and the pack SHA-1 first (they are in cache now)."""
        sha = self._sha
        for p in pieces:
            crc = crc32(p, crc)
            if sha is not None:
                sha.update(p)
        self._write(pieces)
        return crc

    def put(self, data: memoryview, known: tuple[str, int] | None = None) -> tuple[str, int]:
        """Write a blob, one ~1 MiB slice at a time; returns (oid, adler).

        With ``known`` (its id and Adler-32) the bytes are only written;
        without, they are also hashed while each slice is in cache (streamed).
        """
        start = self.offset
        n = data.nbytes
        pieces = _stored_blocks(data)
        crc = self._emit(pieces[:1], 0)
        h = None if known is not None else hashlib.sha1(b"blob %d\0" % n)
        adler = 1
        step = _STORED_MAX * _SLICE_BLOCKS
        for k, lo in enumerate(range(0, max(n, 1), step)):
            if h is not None:
                piece = data[lo : lo + step]
                h.update(piece)
                adler = adler32(piece, adler)
            crc = self._emit(pieces[1 + 2 * _SLICE_BLOCKS * k : 1 + 2 * _SLICE_BLOCKS * (k + 1)], crc)
        oid, adler = known if known is not None else (h.hexdigest(), adler & 0xFFFFFFFF)  # type: ignore[union-attr]
        crc = self._emit([struct.pack(">I", adler)], crc)
        self.objects.append((oid, start, crc & 0xFFFFFFFF, data, adler))
        return oid, adler

    def cut(self, start: int) -> None:
        """Drop the last blob (the repository had it after all): the pack ends at ``start`` again."""
        self.objects.pop()
        os.ftruncate(self.fd, start)
        os.lseek(self.fd, start, os.SEEK_SET)
        self.offset = start
        self.miscounted()

    def miscounted(self) -> None:
        """A chunk the count included is not new after all: the trailer will be hashed again."""
        self._sha = None

    def finish(self) -> str:
        if self._sha is None or self.count != len(self.objects):
            header = b"PACK" + struct.pack(">II", 2, len(self.objects))
            os.pwrite(self.fd, header, 0)
            self._sha = hashlib.sha1(header)
            for _, _, _, data, adler in self.objects:
                for p in _stored_pieces(data, adler):
                    self._sha.update(p)
        trailer = self._sha.digest()
        os.write(self.fd, trailer)
        os.close(self.fd)
        self.fd = -1
        entries = [(oid, off, crc) for oid, off, crc, _, _ in self.objects]
        return install_pack(self.pack_dir, self.tmp, entries, trailer)

    def abort(self) -> None:
        if self.fd != -1:
            os.close(self.fd)
            self.fd = -1
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)


TMP_PACK = "tmp_tvault_pack_"  # temp names like git's own tmp_pack_*/tmp_idx_*: no .pack/.idx
TMP_IDX = "tmp_tvault_idx_"  # suffix, so gc's pack-garbage cleaner never takes them for a lone index


def temp_file(pack_dir: str, prefix: str) -> tuple[int, str]:
    """A new temp file in ``pack_dir``, ``flock``-ed while this process lives (see ``reclaim``)."""
    fd, path = tempfile.mkstemp(prefix=prefix, dir=pack_dir)
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)
    return fd, path


def install_pack(pack_dir: str, tmp_pack: str, entries: list[tuple[str, int, int]], trailer: bytes) -> str:
    """Give a finished temp pack its index and ``.keep`` and make it visible; returns its name.

    Order as git's index-pack (``finish_tmp_packfile``): ``.keep`` first, then
    ``.pack``, then ``.idx``. ``git repack`` sorts packs into kept and not kept
    by listing ``*.pack`` and looking for a ``.keep`` beside each, and deletes
    the unkept ones it listed: a ``.pack`` must never exist without its
    ``.keep``. git reads a pack only once its ``.idx`` exists. If a step fails,
    what this call created is removed again (a ``.keep`` or ``.pack`` left
    alone would be unreclaimable garbage).
    """
    name = trailer.hex()
    base = os.path.join(pack_dir, "pack-" + name)
    if os.path.exists(base + ".idx") and os.path.exists(base + ".pack") and os.path.exists(base + ".keep"):
        os.unlink(tmp_pack)  # the same bytes are installed already (another writer)
        return name
    ifd, idx_tmp = temp_file(pack_dir, TMP_IDX)
    created: list[str] = []
    try:
        with os.fdopen(ifd, "wb") as f:
            f.write(idx_v2(entries, trailer))
        os.chmod(tmp_pack, 0o444)
        os.chmod(idx_tmp, 0o444)
        try:
            kfd = os.open(base + ".keep", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            pass  # kept already (a twin writer, or a killed one: its .keep protects us just as well)
        else:
            created.append(base + ".keep")
            with os.fdopen(kfd, "w") as f:
                f.write(KEEP_TEXT + "\n")
        _step("keep")
        os.replace(tmp_pack, base + ".pack")
        created.append(base + ".pack")
        _step("pack")
        os.replace(idx_tmp, base + ".idx")
        created.clear()
    finally:
        for path in (idx_tmp, tmp_pack, *reversed(created)):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
    return name


def _step(name: str) -> None:
    """A named point between install steps; tests put a ``git gc`` here to hit races every time."""


def write_pieces(fd: int, pieces: Pieces) -> int:
    """Write buffers in order with ``writev`` batches, finishing short writes; returns the bytes written."""
    total = 0
    for i in range(0, len(pieces), _BATCH):
        batch = pieces[i : i + _BATCH]
        n = os.writev(fd, batch)
        want = _total(batch)
        if n != want:  # short write (disk full?): finish it piece by piece
            done = n
            for p in batch:
                ln = p.nbytes if isinstance(p, memoryview) else len(p)
                if done >= ln:
                    done -= ln
                    continue
                mv = memoryview(p)[done:]
                while mv.nbytes:
                    mv = mv[os.write(fd, mv) :]
                done = 0
        total += want
    return total


def _total(pieces: Pieces) -> int:
    return sum(p.nbytes if isinstance(p, memoryview) else len(p) for p in pieces)


def idx_v2(entries: list[tuple[str, int, int]], pack_sha: bytes) -> bytes:
    objs = sorted(entries)
    fanout = [0] * 256
    for oid, _, _ in objs:
        fanout[int(oid[:2], 16)] += 1
    running = 0
    for i in range(256):
        running += fanout[i]
        fanout[i] = running
    large: list[int] = []
    offsets = []
    for _, off, _ in objs:
        if off < 0x80000000:
            offsets.append(off)
        else:
            offsets.append(0x80000000 | len(large))
            large.append(off)
    body = b"".join(
        [
            b"\xfftOc",
            struct.pack(">I", 2),
            struct.pack(">256I", *fanout),
            b"".join(bytes.fromhex(o) for o, _, _ in objs),
            struct.pack(">%dI" % len(objs), *(c for _, _, c in objs)),
            struct.pack(">%dI" % len(objs), *offsets),
            struct.pack(">%dQ" % len(large), *large),
            pack_sha,
        ]
    )
    return body + hashlib.sha1(body).digest()
