"""Git object storage for tensor data: a pack writer that skips zlib's work.

Why not ``Repository.create_blob``? libgit2 deflates every blob at the default
level, and deflate spends its time failing to compress random-looking floats
(~20 MB/s here). A git object may legally be a zlib stream of *stored* blocks
(level 0), which git and libgit2 read normally. We write new blobs straight
into one pack file per entry (one sequential write) with a v2 ``.idx`` and a
``.keep`` file, so that ``git gc`` leaves the pack alone instead of
recompressing and delta-searching weights; ``git push`` reuses the stored
representation as it is.

Work per byte: SHA-1 (object id) and Adler-32 (zlib trailer), run for all
chunks first in a thread pool so that the object count is known before the
pack header is written; then CRC-32 (index) and the pack's SHA-1 trailer while
writing, the trailer hash in a second thread.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
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


def write_blobs(repo: pygit2.Repository, chunks: Sequence[memoryview], threads: int = 2) -> tuple[list[str], int]:
    """Store every buffer as a git blob; returns (ids in order, bytes newly written).

    Blobs the repository already has are not written again (content
    addressing across entries and models). New ones go into one pack that is
    installed atomically: ``.pack``, then ``.keep``, then ``.idx`` (git only
    sees a pack once its index exists), so an interrupted call leaves at most
    a ``tmp_*`` file that nothing reads.
    """
    chunks = [memoryview(c).cast("B") if memoryview(c).format != "B" else memoryview(c) for c in chunks]
    if len(chunks) > 1 and threads > 1:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            ids = list(pool.map(blob_id, chunks))
    else:
        ids = [blob_id(c) for c in chunks]
    new: dict[str, tuple[memoryview, int]] = {}
    odb = repo.odb
    for c, (oid, adler) in zip(chunks, ids):
        if oid not in new and not odb.exists(oid):
            new[oid] = (c, adler)
    if new:
        _write_pack(repo, new)
    return [oid for oid, _ in ids], sum(c.nbytes for c, _ in new.values())


def _write_pack(repo: pygit2.Repository, new: dict[str, tuple[memoryview, int]]) -> str:
    pack_dir = os.path.join(repo.path, "objects", "pack")
    os.makedirs(pack_dir, exist_ok=True)
    fd, tmp_pack = tempfile.mkstemp(prefix="tmp_tvault_", suffix=".pack", dir=pack_dir)
    idx_tmp = None
    try:
        sha = hashlib.sha1()
        entries: list[tuple[str, int, int]] = []  # oid, offset, crc
        offset = 0
        with ThreadPoolExecutor(max_workers=1) as hasher:
            pending = []

            def emit(pieces: list) -> None:
                nonlocal offset
                pending.append(hasher.submit(_update_all, sha, pieces))
                os.writev(fd, pieces) if _total(pieces) < (1 << 31) else [os.write(fd, p) for p in pieces]
                offset += _total(pieces)

            emit([b"PACK" + struct.pack(">II", 2, len(new))])
            for oid, (data, adler) in new.items():
                start = offset
                pieces = _stored_pieces(data, adler)
                crc = 0
                for i in range(0, len(pieces), _BATCH):
                    batch = pieces[i : i + _BATCH]
                    for p in batch:
                        crc = zlib.crc32(p, crc)
                    emit(batch)
                entries.append((oid, start, crc & 0xFFFFFFFF))
            for f in pending:
                f.result()
        trailer = sha.digest()
        os.write(fd, trailer)

        os.close(fd)
        fd = -1
        name = trailer.hex()
        base = os.path.join(pack_dir, "pack-" + name)
        ifd, idx_tmp = tempfile.mkstemp(prefix="tmp_tvault_", suffix=".idx", dir=pack_dir)
        with os.fdopen(ifd, "wb") as f:
            f.write(_idx_v2(entries, trailer))
            f.flush()

        os.chmod(tmp_pack, 0o444)
        os.chmod(idx_tmp, 0o444)
        os.replace(tmp_pack, base + ".pack")
        with open(base + ".keep", "w") as f:
            f.write("tvault-git: weights, stored uncompressed on purpose\n")
        os.replace(idx_tmp, base + ".idx")
        return name
    finally:
        if fd != -1:
            os.close(fd)
        for p in (tmp_pack, idx_tmp):
            if p and os.path.exists(p):
                os.unlink(p)


def _update_all(h, pieces: list) -> None:
    for p in pieces:
        h.update(p)


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
