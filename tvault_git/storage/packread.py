"""Reading weight blobs at memory speed, straight into the destination tensor.

libgit2 reads a blob into a new buffer, verifies its SHA-1 with the slow
collision-detecting implementation, and Python copies it again (~60 MB/s
here). Our own packs hold blobs as zlib *stored* blocks, so their payload can
be copied from a memory map directly into the tensor and checked with the
zlib Adler-32 trailer. Anything else (loose objects, deltas, packs git wrote
with compression) goes through pygit2, which verifies the object id.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import re
import struct
import threading
import zlib
from collections.abc import Iterable
from typing import Any

import pygit2

from tvault_git.errors import CorruptEntry
from tvault_git.gitutil.lazy import ensure_present
from tvault_git.gitutil.repo import pack_dir as git_pack_dir
from tvault_git.spec.format import check_declared, validate_tensor_record
from tvault_git.storage.packwrite import adler32


class PackIndex:
    """A v2 pack index (``.idx``) and, opened on demand, its pack."""

    def __init__(self, idx_path: str) -> None:
        self.pack_path = idx_path[:-4] + ".pack"
        with open(idx_path, "rb") as f:
            data = f.read()
        if len(data) < 8 + 1024 + 40 or data[:4] != b"\xfftOc" or struct.unpack(">I", data[4:8])[0] != 2:
            raise ValueError("only v2 pack indexes are read directly")
        self.fanout = struct.unpack(">256I", data[8 : 8 + 1024])
        n = self.fanout[255]
        if len(data) < 8 + 1024 + 28 * n + 40:
            raise ValueError("truncated pack index")
        base = 8 + 1024
        self.shas = data[base : base + 20 * n]
        self.crcs = data[base + 20 * n : base + 24 * n]
        self.offsets = data[base + 24 * n : base + 28 * n]
        self.large = data[base + 28 * n : len(data) - 40]
        self.n = n
        self._mm: mmap.mmap | None = None
        self._view: memoryview | None = None
        self._fd: int | None = None

    def _offset(self, i: int) -> int:
        off: int = struct.unpack(">I", self.offsets[4 * i : 4 * i + 4])[0]
        if off & 0x80000000:
            k = off & 0x7FFFFFFF
            if 8 * k + 8 > len(self.large):
                raise CorruptEntry(
                    f"pack index {os.path.basename(self.pack_path)[:-5]}.idx is damaged (a large offset past its table)"
                )
            off = struct.unpack(">Q", self.large[8 * k : 8 * k + 8])[0]
        return off

    def entries(self) -> list[tuple[str, int, int]]:
        """(oid hex, offset, crc32) of every object, in index order."""
        crcs = struct.unpack(">%dI" % self.n, self.crcs)
        return [(self.shas[20 * i : 20 * i + 20].hex(), self._offset(i), crcs[i]) for i in range(self.n)]

    def find(self, oid: bytes) -> int | None:
        lo = self.fanout[oid[0] - 1] if oid[0] else 0
        hi = self.fanout[oid[0]]
        shas = self.shas
        while lo < hi:
            mid = (lo + hi) // 2
            s = shas[20 * mid : 20 * mid + 20]
            if s < oid:
                lo = mid + 1
            elif s > oid:
                hi = mid
            else:
                return self._offset(mid)
        return None

    def __del__(self) -> None:
        # Dropped from the pack list (merged away) and no reader holds it any more: free the file.
        # Never closed while listed: another thread may be inside preadv on this fd.
        fd = getattr(self, "_fd", None)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def fd(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.pack_path, os.O_RDONLY)
        return self._fd

    def view(self) -> memoryview:
        if self._view is None:
            self._view = memoryview(self.mm())
        return self._view

    def mm(self) -> mmap.mmap:
        """The pack mapped, with ``fd()`` opened on the same file (a pack merged away stays readable)."""
        if self._mm is None:
            fd = self.fd()
            self._mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        return self._mm


_lock = threading.Lock()
_packs: dict[str, dict[str, PackIndex | None]] = {}


def _pack_list(repo: pygit2.Repository, refresh: bool = False) -> list[PackIndex]:
    pack_dir = git_pack_dir(repo)
    with _lock:
        known = _packs.setdefault(pack_dir, {})
        if refresh or not known:
            try:
                names = [n for n in os.listdir(pack_dir) if n.startswith("pack-") and n.endswith(".idx")]
            except FileNotFoundError:
                names = []
            if refresh:  # packs merged away (see packs.py) drop out
                for n in [n for n in known if n not in names]:
                    del known[n]
            for n in names:
                if n not in known:
                    try:
                        known[n] = PackIndex(os.path.join(pack_dir, n))
                    except (OSError, ValueError, struct.error):
                        known[n] = None
        return [p for p in known.values() if p is not None]


def _locate(repo: pygit2.Repository, oid: str) -> tuple[PackIndex, int] | None:
    raw = bytes.fromhex(oid)
    for refresh in (False, True):
        for p in _pack_list(repo, refresh):
            off = p.find(raw)
            if off is not None:
                return p, off
    return None


def read_blob_into(repo: pygit2.Repository, oid: str, out: memoryview) -> None:
    """Fill ``out`` with blob ``oid``; raises CorruptEntry on any mismatch."""
    for _ in range(2):
        loc = _locate(repo, oid)
        if loc is None:
            break
        try:
            if _read_stored(loc[0], loc[1], out):
                return
            break
        except _PackGone:  # merged into another pack since we listed them: list again
            _pack_list(repo, refresh=True)
    _read_generic(repo, oid, out)


class _PackGone(Exception):
    pass


def _read_stored(pack: PackIndex, off: int, out: memoryview) -> bool:
    """Fast path; returns False (nothing decided) when the object is not stored-blocks."""
    try:
        mm = pack.mm()
    except FileNotFoundError:
        raise _PackGone() from None
    except (OSError, ValueError):
        return False
    size_total = len(mm)
    if off >= size_total:
        raise CorruptEntry("pack index points past the end of the pack (truncated pack)")
    c = mm[off]
    typ = (c >> 4) & 7
    size = c & 0x0F
    shift = 4
    pos = off + 1
    while c & 0x80:
        if pos >= size_total:
            raise CorruptEntry("truncated pack")
        c = mm[pos]
        size |= (c & 0x7F) << shift
        shift += 7
        pos += 1
    if typ != 3:  # not a plain blob (delta, or wrong type)
        return False
    if size != out.nbytes:
        raise CorruptEntry(f"blob is {size} bytes, expected {out.nbytes}")
    if mm[pos : pos + 2] != b"\x78\x01":
        return False
    if _read_canonical(pack, pos + 2, out):
        return True
    view = pack.view()
    pos += 2
    filled = 0
    while True:
        if pos + 5 > size_total:
            raise CorruptEntry("truncated pack")
        bh = mm[pos]
        if bh & 0x06:  # compressed block (git wrote it): leave it to libgit2
            return False
        ln, nln = struct.unpack("<HH", mm[pos + 1 : pos + 5])
        if ln ^ nln != 0xFFFF or filled + ln > out.nbytes or pos + 5 + ln > size_total:
            raise CorruptEntry("stored block header is damaged or the pack is truncated")
        out[filled : filled + ln] = view[pos + 5 : pos + 5 + ln]
        filled += ln
        pos += 5 + ln
        if bh & 1:
            break
    if filled != out.nbytes:
        raise CorruptEntry(f"blob ends after {filled} of {out.nbytes} bytes")
    if pos + 4 > size_total:
        raise CorruptEntry("truncated pack")
    want = struct.unpack(">I", mm[pos : pos + 4])[0]
    if adler32(out) & 0xFFFFFFFF != want:
        raise CorruptEntry("checksum mismatch (Adler-32)")
    return True


_BATCH_BLOCKS = 16  # blocks per preadv (~1 MiB): checksummed while still in cache


def _read_canonical(pack: PackIndex, pos: int, out: memoryview) -> bool:
    """One copy, kernel to tensor: ``preadv`` scatters block payloads into ``out``
    and the 5-byte block headers into a scratch buffer, which must then equal the
    headers our writer produces. False when the layout differs (nothing decided).

    Reads go ~1 MiB at a time and each piece is added to the Adler-32 right
    away, while it is still in the CPU cache: checksumming a whole 32 MiB chunk
    afterwards streams it from memory a second time.
    """
    n = out.nbytes
    nblocks = max(1, -(-n // 0xFFFF))
    last = n - (nblocks - 1) * 0xFFFF
    expected = struct.pack("<BHH", 0, 0xFFFF, 0) * (nblocks - 1) + struct.pack("<BHH", 1, last, last ^ 0xFFFF)
    scratch = bytearray(5 * nblocks + 4)
    sv = memoryview(scratch)
    fd = pack.fd()
    offset = pos
    adler = 1
    for k0 in range(0, nblocks, _BATCH_BLOCKS):
        k1 = min(nblocks, k0 + _BATCH_BLOCKS)
        iov: list[memoryview] = []
        for i in range(k0, k1):
            iov.append(sv[5 * i : 5 * i + 5])
            iov.append(out[i * 0xFFFF : i * 0xFFFF + (0xFFFF if i < nblocks - 1 else last)])
        if k1 == nblocks:
            iov.append(sv[5 * nblocks :])
        want = sum(b.nbytes for b in iov)
        got = os.preadv(fd, iov, offset)
        if got != want:
            return False  # truncated or odd: the careful path reports it
        offset += want
        adler = adler32(out[k0 * 0xFFFF : min(n, k1 * 0xFFFF)], adler)
    if bytes(sv[: 5 * nblocks]) != expected:
        return False
    want_adler = struct.unpack(">I", sv[5 * nblocks :])[0]
    if adler & 0xFFFFFFFF != want_adler:
        raise CorruptEntry("checksum mismatch (Adler-32)")
    return True


def _read_loose(repo: pygit2.Repository, oid: str, out: memoryview) -> bool:
    """A loose blob inflated here, bounded and hash-checked; False when ``oid`` is not loose.

    libgit2 1.9.7 spins forever in ``Repository.get`` on a loose object whose zlib stream is
    truncated; Python's zlib just reports the stream unfinished.
    """
    path = os.path.join(repo.path, "objects", oid[:2], oid[2:])
    try:
        f = open(path, "rb")
    except OSError:
        return False
    with f:
        d = zlib.decompressobj()
        h = hashlib.sha1()
        header = f"blob {out.nbytes}\0".encode()
        cap = len(header) + out.nbytes
        seen = 0  # bytes inflated so far (header included)
        try:
            while not d.eof:
                data = d.unconsumed_tail or f.read(1 << 20)
                if not data:
                    raise CorruptEntry("the loose object is truncated")
                chunk = d.decompress(data, cap - seen + 1)
                if seen + len(chunk) > cap:
                    raise CorruptEntry(f"the loose object is not a blob of {out.nbytes} bytes")
                h.update(chunk)
                lo, hi = seen, seen + len(chunk)
                if lo < len(header):
                    n = min(hi, len(header)) - lo
                    if chunk[:n] != header[lo : lo + n]:
                        raise CorruptEntry(f"the loose object is not a blob of {out.nbytes} bytes")
                    chunk, lo = chunk[n:], lo + n
                if chunk:
                    out[lo - len(header) : hi - len(header)] = chunk
                seen = hi
        except zlib.error as e:
            raise CorruptEntry(f"the loose object is damaged ({e})") from None
    if seen != cap:
        raise CorruptEntry(f"the loose object is not a blob of {out.nbytes} bytes")
    if h.hexdigest() != oid:
        raise CorruptEntry("the loose object does not match its id")
    return True


def _read_generic(repo: pygit2.Repository, oid: str, out: memoryview) -> None:
    if _read_loose(repo, oid, out):
        return
    ensure_present(repo, [oid], "weight chunk")  # a read no batch covered (a sharded rank's range)
    try:
        obj = repo.get(oid)
    except (pygit2.GitError, ValueError) as e:
        raise CorruptEntry(f"git cannot read the object: {e}") from None
    if obj is None:
        raise CorruptEntry("the object is missing from the repository (fetch the entry again)")
    if obj.type != pygit2.enums.ObjectType.BLOB:
        raise CorruptEntry("the object is not a blob")
    data = obj.read_raw()
    if len(data) != out.nbytes:
        raise CorruptEntry(f"blob is {len(data)} bytes, expected {out.nbytes}")
    out[:] = data


_HEX40 = re.compile(r"[0-9a-f]{40}")


def fetch_chunks(repo: pygit2.Repository, records: Iterable[Any], where: str) -> int:
    """In a partial clone, fetch the chunks of these tensor records that are not here, in one fetch.

    Only the records a read names: loading one tensor of a 1 GB model fetches that tensor's
    chunks. Malformed records are skipped here; ``check_stored`` reports them.
    """
    oids = [
        c
        for rec in records
        if isinstance(rec, dict) and isinstance(rec.get("chunks"), list)
        for c in rec["chunks"]
        if isinstance(c, str) and _HEX40.fullmatch(c)
    ]
    return ensure_present(repo, oids, f"weight chunks of {where}")


def check_stored(
    repo: pygit2.Repository, items: Iterable[tuple[str, Any]], where: str, max_bytes: int | None, chunk_bytes: int
) -> int:
    """Validate records and their chunks' sizes (object headers only) and bound declared bytes to
    distinct stored bytes; returns the declared total. Nothing is allocated or inflated."""
    sizes: dict[str, int] = {}
    declared = 0
    items = list(items)
    fetch_chunks(repo, [rec for _, rec in items], where)
    for name, rec in items:
        _, _, nbytes, chunks = validate_tensor_record(name, rec, where, chunk_bytes)
        declared += nbytes
        for i, c in enumerate(chunks):
            want = max(0, min(chunk_bytes, nbytes - i * chunk_bytes))
            if c not in sizes:
                try:
                    kind, size = repo.odb.read_header(pygit2.Oid(hex=c))
                except (KeyError, ValueError, pygit2.GitError):
                    sizes[c] = want  # no readable header: the read itself reports it, naming the tensor
                    continue
                if kind != pygit2.enums.ObjectType.BLOB:
                    raise CorruptEntry(f"{where}: tensor {name!r} chunk {i} ({c[:12]}) is not a blob")
                sizes[c] = size
            if sizes[c] != want:
                raise CorruptEntry(
                    f"{where}: tensor {name!r} chunk {i} ({c[:12]}) is {sizes[c]} bytes, expected {want}"
                )
    check_declared(declared, sum(sizes.values()), where, max_bytes)
    return declared
