"""Git object storage for tensor data: a pack writer that skips zlib's work.

Why not ``Repository.create_blob``? libgit2 deflates every blob at the default
level, and deflate spends its time failing to compress random-looking floats
(~20 MB/s here). A git object may legally be a zlib stream of *stored* blocks
(level 0), which git and libgit2 read normally. We write new blobs straight
into one pack file per entry (one sequential write) with a v2 ``.idx`` and a
``.keep`` file, so that ``git gc`` leaves the pack alone instead of
recompressing and delta-searching weights; ``git push`` reuses the stored
representation as it is.

Work per byte: SHA-1 (object id) and Adler-32 (zlib trailer) in a thread
pool, the write itself, and CRC-32 (index) and the pack's trailing SHA-1 in
two more threads, all at once (see ``write_blobs`` for how the trailer can
start before the object count is known).
"""

from __future__ import annotations

import hashlib
import os
import queue
import struct
import tempfile
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import pygit2

_STORED_MAX = 0xFFFF  # largest deflate stored block
_ZLIB_HEADER = b"\x78\x01"  # deflate, 32K window, FLEVEL=0 (0x7801 % 31 == 0)
_OBJ_BLOB = 3
_BATCH = 1024  # pieces per write/hash batch


def blob_id(data: memoryview) -> tuple[str, int]:
    """Git blob id (hex) and Adler-32 of ``data``; releases the GIL on big buffers."""
    h = hashlib.sha1(b"blob %d\0" % data.nbytes)
    h.update(data)
    return h.hexdigest(), zlib.adler32(data)


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


def _stored_pieces(data: memoryview, adler: int) -> list:
    """zlib stream of stored blocks, as a list of buffers (no data copy)."""
    n = data.nbytes
    pieces: list = [_type_size_header(_OBJ_BLOB, n) + _ZLIB_HEADER]
    pos = 0
    while True:
        ln = min(_STORED_MAX, n - pos)
        final = pos + ln >= n
        pieces.append(struct.pack("<BHH", 1 if final else 0, ln, ln ^ 0xFFFF))
        pieces.append(data[pos : pos + ln])
        pos += ln
        if final:
            break
    pieces.append(struct.pack(">I", adler & 0xFFFFFFFF))
    return pieces


# Process-local memo of object ids: (identity key) -> (adler32, oid). A hit still
# recomputes Adler-32 over the bytes (cheap) and must match, so a tensor changed
# behind torch's version counter (``p.data.copy_``) is hashed again.
_ID_MEMO: dict[tuple, tuple[int, str]] = {}
_MEMO_MAX = 200_000


def _blob_id_memo(data: memoryview, key: tuple | None) -> tuple[str, int]:
    if key is not None:
        hit = _ID_MEMO.get(key)
        if hit is not None:
            adler = zlib.adler32(data)
            if adler == hit[0]:
                return hit[1], adler
    oid, adler = blob_id(data)
    if key is not None:
        if len(_ID_MEMO) > _MEMO_MAX:
            _ID_MEMO.clear()
        _ID_MEMO[key] = (adler, oid)
    return oid, adler


def write_blobs(
    repo: pygit2.Repository, chunks: Sequence[memoryview], threads: int = 2, keys: Sequence[tuple | None] | None = None
) -> tuple[list[str], int]:
    """Store every buffer as a git blob; returns (ids in order, bytes newly written).

    Blobs the repository already has are not written again (content
    addressing across entries and models). New ones go into one pack that is
    installed atomically: ``.pack``, then ``.keep``, then ``.idx`` (git only
    sees a pack once its index exists), so an interrupted call leaves at most
    a ``tmp_*`` file that nothing reads.

    ``keys`` (optional, one per chunk) identify unchanged memory between calls,
    e.g. (storage pointer, offset, length, torch version counter).

    One pass: object ids (SHA-1) and Adler-32s are computed in a thread pool
    while the main thread writes each new chunk as soon as its id is known; a
    CRC-32 thread (for the index) and a SHA-1 thread (the pack's trailer) read
    the same in-memory buffers beside the write. The pack header holds the
    object count, and the trailer's SHA-1 covers the header first, so the
    writer *speculates* that every chunk from the first new one on is new too
    (true for a newly trained model). When a later chunk turns out to be
    known, the count is fixed and the trailer hashed again at the end.
    """
    views = [memoryview(c).cast("B") for c in chunks]
    keys = list(keys) if keys is not None else [None] * len(views)
    odb = repo.odb
    ids: list[str] = []
    writer: _PackWriter | None = None
    written: set[str] = set()
    new_bytes = 0
    try:
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            futs = [pool.submit(_blob_id_memo, v, k) for v, k in zip(views, keys)]
            for i, (v, f) in enumerate(zip(views, futs)):
                oid, adler = f.result()
                ids.append(oid)
                if oid in written or odb.exists(oid):
                    if writer is not None:
                        writer.miscounted()
                    continue
                if writer is None:
                    writer = _PackWriter(repo, len(views) - i)
                writer.add(oid, v, adler)
                written.add(oid)
                new_bytes += v.nbytes
        if writer is not None:
            writer.finish()
            writer = None
        return ids, new_bytes
    finally:
        if writer is not None:
            writer.abort()


class _PackWriter:
    """One pack being written; its checksums run in two threads beside the write.

    ``count`` is the expected object count (see ``write_blobs``); ``miscounted``
    drops the running trailer SHA-1 and ``finish`` then fixes the header and
    hashes the pack again.
    """

    def __init__(self, repo: pygit2.Repository, count: int) -> None:
        self.pack_dir = os.path.join(repo.path, "objects", "pack")
        os.makedirs(self.pack_dir, exist_ok=True)
        self.fd, self.tmp = tempfile.mkstemp(prefix="tmp_tvault_", suffix=".pack", dir=self.pack_dir)
        self.offset = 0
        self.count = count
        self.objects: list[tuple[str, int, list]] = []  # oid, offset, pieces
        self._q: "queue.Queue[tuple[int, list] | None]" = queue.Queue()  # for the pack SHA-1, in order
        self._crc_q: "queue.Queue[tuple[int, list] | None]" = queue.Queue()
        self._crcs: dict[int, int] = {}
        self._sha = hashlib.sha1()
        self._sha_live = True
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._sha_loop, daemon=True)
        self._crc_thread = threading.Thread(target=self._crc_loop, daemon=True)
        self._thread.start()
        self._crc_thread.start()
        header = b"PACK" + struct.pack(">II", 2, count)
        self._q.put((-1, [header]))
        self._write([header])

    def _write(self, pieces: list) -> None:
        for i in range(0, len(pieces), _BATCH):
            batch = pieces[i : i + _BATCH]
            n = os.writev(self.fd, batch)
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
                        k = os.write(self.fd, mv)
                        mv = mv[k:]
                    done = 0
            self.offset += want

    def add(self, oid: str, data: memoryview, adler: int) -> None:
        pieces = _stored_pieces(data, adler)
        k = len(self.objects)
        self.objects.append((oid, self.offset, pieces))
        if self._sha_live:  # checksums read memory, not the file: they run beside the write
            self._q.put((k, pieces))
        self._crc_q.put((k, pieces))
        self._write(pieces)

    def _sha_loop(self) -> None:
        try:
            while True:
                item = self._q.get()
                if item is None:
                    return
                if not self._sha_live:
                    continue
                for p in item[1]:
                    self._sha.update(p)
        except BaseException as e:  # surfaced in finish()
            self._error = e

    def _crc_loop(self) -> None:
        try:
            while True:
                item = self._crc_q.get()
                if item is None:
                    return
                k, pieces = item
                crc = 0
                for p in pieces:
                    crc = zlib.crc32(p, crc)
                self._crcs[k] = crc & 0xFFFFFFFF
        except BaseException as e:  # surfaced in finish()
            self._error = e

    def miscounted(self) -> None:
        """A chunk the count included is not new after all: the trailer will be hashed again."""
        self._sha_live = False

    def _stop(self) -> None:
        for q, t in ((self._q, self._thread), (self._crc_q, self._crc_thread)):
            if t is not None and t.is_alive():
                q.put(None)
                t.join()

    def finish(self) -> str:
        self._stop()
        if self._error is not None:
            raise self._error
        if not self._sha_live or self.count != len(self.objects):
            header = b"PACK" + struct.pack(">II", 2, len(self.objects))
            os.pwrite(self.fd, header, 0)
            self._sha = hashlib.sha1(header)
            for _, _, pieces in self.objects:
                for p in pieces:
                    self._sha.update(p)
        trailer = self._sha.digest()
        os.write(self.fd, trailer)
        os.close(self.fd)
        self.fd = -1
        name = trailer.hex()
        base = os.path.join(self.pack_dir, "pack-" + name)
        entries = [(oid, off, self._crcs[k]) for k, (oid, off, _) in enumerate(self.objects)]
        ifd, idx_tmp = tempfile.mkstemp(prefix="tmp_tvault_", suffix=".idx", dir=self.pack_dir)
        try:
            with os.fdopen(ifd, "wb") as f:
                f.write(_idx_v2(entries, trailer))
            os.chmod(self.tmp, 0o444)
            os.chmod(idx_tmp, 0o444)
            os.replace(self.tmp, base + ".pack")
            with open(base + ".keep", "w") as f:
                f.write("tvault-git: weights, stored uncompressed on purpose\n")
            os.replace(idx_tmp, base + ".idx")
        finally:
            if os.path.exists(idx_tmp):
                os.unlink(idx_tmp)
        return name

    def abort(self) -> None:
        self._stop()
        if self.fd != -1:
            os.close(self.fd)
            self.fd = -1
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)


def _total(pieces: list) -> int:
    return sum(p.nbytes if isinstance(p, memoryview) else len(p) for p in pieces)


def _idx_v2(entries: list[tuple[str, int, int]], pack_sha: bytes) -> bytes:
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
