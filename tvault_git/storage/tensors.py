"""Tensors <-> raw little-endian bytes in git blobs (the safetensors idea, in git)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pygit2
import torch

from tvault_git.errors import CorruptEntry, InvalidInput
from tvault_git.spec import format as fmt
from tvault_git.spec.format import DTYPES, validate_tensor_record
from tvault_git.storage import packread, packwrite
from tvault_git.storage.packread import check_stored, fetch_chunks  # torch-free; here for the tensor readers

if sys.byteorder != "little":  # pragma: no cover - no such host in CI
    raise ImportError("tvault-git stores little-endian tensors and needs a little-endian host")

_TORCH_DTYPES: dict[str, torch.dtype] = {n: getattr(torch, n) for n in DTYPES if hasattr(torch, n)}
_DTYPE_NAMES = {v: k for k, v in _TORCH_DTYPES.items()}


def dtype_name(dt: torch.dtype) -> str:
    try:
        return _DTYPE_NAMES[dt]
    except KeyError:
        raise InvalidInput(f"tensor dtype {dt} is not supported by the registry format") from None


def check_loggable(t: torch.Tensor, name: str) -> None:
    """Refuse what the format cannot hold (before a background log copies or writes anything)."""
    if t.layout != torch.strided:
        raise InvalidInput(f"tensor {name!r} has layout {t.layout}; convert it to dense (.to_dense()) before logging")
    if t.is_quantized:
        raise InvalidInput(f"tensor {name!r} is quantized; dequantize it before logging")
    if t.device.type == "meta":
        raise InvalidInput(f"tensor {name!r} is on the meta device and has no data")
    dtype_name(t.dtype)


def _as_bytes(t: torch.Tensor, name: str) -> tuple[torch.Tensor, memoryview]:
    """A contiguous CPU copy only when needed, and a zero-copy byte view of it."""
    check_loggable(t, name)
    t = t.detach()
    if t.device.type != "cpu":
        t = t.to("cpu")
    if t.is_conj():
        t = t.resolve_conj()
    if t.is_neg():
        t = t.resolve_neg()
    if not t.is_contiguous():
        t = t.contiguous()
    if t.numel() == 0:
        return t, memoryview(b"")
    flat = t.reshape(-1).view(torch.uint8)
    return t, flat.numpy().data.cast("B")


def store_tensors(
    repo: pygit2.Repository, tensors: Mapping[str, Any], what: str = "state_dict"
) -> tuple[dict[str, dict[str, Any]], list[str], int]:
    """Write every tensor as chunked blobs; returns (records in order, all blob ids, new bytes).

    Tensors that share memory (tied weights) are hashed once. Chunks are ``fmt.CHUNK_BYTES``, read
    when called (the table's ``chunk_bytes`` comes from the same definition).
    """
    chunk_bytes = fmt.CHUNK_BYTES
    records: dict[str, dict[str, Any]] = {}
    chunks: list[memoryview] = []
    keep: list[torch.Tensor] = []  # keep CPU copies alive until written
    layout: list[tuple[str, int, int]] = []  # name, first chunk index, chunk count
    seen: dict[tuple[Any, ...], tuple[int, int]] = {}
    keys: list[tuple[Any, ...] | None] = []
    for name, t in tensors.items():
        if not isinstance(name, str):
            raise InvalidInput(f"{what} key {name!r} is not a string")
        if not isinstance(t, torch.Tensor):
            raise InvalidInput(f"{what} entry {name!r} is a {type(t).__name__}, not a tensor")
        dt = dtype_name(t.dtype)
        key = None
        if t.device.type != "meta" and t.layout == torch.strided and t.numel() > 0:
            key = (
                t.device.type,
                t.untyped_storage().data_ptr(),
                t.storage_offset(),
                tuple(t.shape),
                tuple(t.stride()),
                t.dtype,
            )
        records[name] = {"dtype": dt, "shape": list(t.shape), "nbytes": t.numel() * DTYPES[dt]}
        if key is not None and key in seen:
            layout.append((name, *seen[key]))
            continue
        cpu, mv = _as_bytes(t, name)
        keep.append(cpu)
        first = len(chunks)
        # Memo key only when the bytes are the tensor's own memory (not a temporary copy).
        own = (
            cpu.device == t.device and cpu.untyped_storage().data_ptr() == t.untyped_storage().data_ptr()
            if t.numel()
            else False
        )
        base = (cpu.untyped_storage().data_ptr(), cpu.storage_offset(), t._version, cpu.dtype) if own else None
        if mv.nbytes == 0:
            chunks.append(mv)
            keys.append(None)
        else:
            for off in range(0, mv.nbytes, chunk_bytes):
                chunks.append(mv[off : off + chunk_bytes])
                keys.append(None if base is None else base + (off, min(chunk_bytes, mv.nbytes - off)))
        span = (first, len(chunks) - first)
        if key is not None:
            seen[key] = span
        layout.append((name, *span))
    ids, new_bytes = packwrite.write_blobs(repo, chunks, keys=keys)
    for name, first, count in layout:
        records[name]["chunks"] = ids[first : first + count]
    return records, sorted(set(ids)), new_bytes


_HUGE = 1 << 21
_madvise: Any = None


def _empty(shape: Any, dtype: torch.dtype) -> torch.Tensor:
    """``torch.empty``, backed by transparent huge pages where Linux offers them (``madvise`` mode).

    A fresh 1 GB state_dict costs 262,144 page faults with 4 KiB pages: about a
    third of a second here, as long as the copy itself. With 2 MiB pages the
    first touch is three times cheaper. Elsewhere (or if anything fails) it is
    a plain ``torch.empty``.
    """
    global _madvise
    out = torch.empty(shape, dtype=dtype)
    n = out.numel() * out.element_size()
    if n < 2 * _HUGE or not sys.platform.startswith("linux"):
        return out
    if _madvise is None:
        try:
            import ctypes

            fn = ctypes.CDLL(None, use_errno=True).madvise
            fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            _madvise = fn
        except (OSError, AttributeError):
            _madvise = False
    if _madvise:
        p = out.data_ptr()
        lo, hi = (p + _HUGE - 1) & ~(_HUGE - 1), (p + n) & ~(_HUGE - 1)
        if hi > lo:
            _madvise(lo, hi - lo, 14)  # MADV_HUGEPAGE; an error only means 4 KiB pages
    return out


def _alloc(name: str, rec: Any, where: str, chunk_bytes: int) -> tuple[torch.Tensor, list[tuple[str, memoryview, int]]]:
    """Validate a record and allocate its tensor; returns the tensor and its chunk reads."""
    dtype, shape, nbytes, chunks = validate_tensor_record(name, rec, where, chunk_bytes)
    tdtype = _TORCH_DTYPES.get(dtype)
    if tdtype is None:
        raise CorruptEntry(f"{where}: tensor {name!r} has dtype {dtype}, which this torch build lacks")
    try:
        out = _empty(shape, tdtype)
    except (RuntimeError, MemoryError):
        raise InvalidInput(
            f"{where}: not enough memory for tensor {name!r} ({nbytes} bytes); load fewer tensors (names=) or free memory"
        ) from None
    reads = []
    if nbytes:
        buf = out.reshape(-1).view(torch.uint8).numpy().data.cast("B")
        for i, oid in enumerate(chunks):
            reads.append((oid, buf[i * chunk_bytes : min(nbytes, (i + 1) * chunk_bytes)], i))
    return out, reads


def read_tensors(
    repo: pygit2.Repository,
    records: Mapping[str, Any],
    where: str,
    names: Iterable[str] | None = None,
    threads: int = 2,
    *,
    chunk_bytes: int,
    max_bytes: int | None = None,
) -> dict[str, torch.Tensor]:
    """Read tensors, validating shape, size and checksums; never returns garbage.

    ``chunk_bytes``: the table's value (``spec.tables.parse_table`` validated it). Before anything
    is allocated, every record is validated, every chunk's size is read from its object header and
    the declared bytes are bound to the distinct bytes stored (``spec.format.check_declared``;
    ``max_bytes``: the caller's own budget, -1 for none).
    Chunks are read in a small thread pool: ``preadv`` and Adler-32 both
    release the GIL, so copying one chunk overlaps checking another.
    """
    wanted = list(records) if names is None else list(names)
    out: dict[str, torch.Tensor] = {}
    tasks: list[tuple[str, str, memoryview, int]] = []
    for name in wanted:
        if name not in records:
            raise InvalidInput(f"{where} has no tensor named {name!r}")
    fetch_chunks(repo, [records[n] for n in wanted], where)
    check_stored(repo, [(n, records[n]) for n in wanted], where, max_bytes, chunk_bytes)
    for name in wanted:
        t, reads = _alloc(name, records[name], where, chunk_bytes)
        out[name] = t
        tasks += [(name, oid, mv, i) for oid, mv, i in reads]

    def run(task: tuple[str, str, memoryview, int]) -> None:
        name, oid, mv, i = task
        try:
            packread.read_blob_into(repo, oid, mv)
        except CorruptEntry as e:
            raise CorruptEntry(
                f"{where}: tensor {name!r} chunk {i} ({oid[:12]}) is damaged: {e}; refusing to load it", tensor=name
            ) from None

    if len(tasks) > 1 and threads > 1:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for _ in pool.map(run, tasks):
                pass
    else:
        for task in tasks:
            run(task)
    return out


def stream_pairs(
    repo: pygit2.Repository,
    items: Iterable[tuple[str, Any, Any]],
    where_a: str,
    where_b: str,
    *,
    chunk_a: int,
    chunk_b: int,
    max_bytes: int | None = None,
) -> Iterator[tuple[str, torch.Tensor, torch.Tensor | None, bool]]:
    """Values of tensor pairs of equal dtype and shape, block by block: ``(name, a, b, last)``.

    ``a`` and ``b`` are flat tensors over one block, the larger of the two tables' chunk sizes
    (``chunk_a``, ``chunk_b``: powers of two, so a block is whole chunks on either side; with equal
    sizes a block is one chunk). ``b`` is None where both sides share the block's blobs (same
    bytes, read once). A reader thread fetches the next pair (both sides at once) while the caller
    works on this one, into two reusable buffer pairs: diffing two 1 GB models holds a few blocks,
    never whole models. A yielded block is valid until the next iteration.
    """
    block = max(chunk_a, chunk_b)
    plan: list[tuple[str, torch.dtype, int, list[str], list[str], bool]] = []
    biggest = 0
    items = list(items)
    fetch_chunks(repo, [r for _, ra, rb in items for r in (ra, rb)], f"{where_a} and {where_b}")
    check_stored(repo, [(n, ra) for n, ra, _ in items], where_a, max_bytes, chunk_a)
    check_stored(repo, [(n, rb) for n, _, rb in items], where_b, max_bytes, chunk_b)
    for name, ra, rb in items:
        dt, _, nbytes, ca = validate_tensor_record(name, ra, where_a, chunk_a)
        _, _, _, cb = validate_tensor_record(name, rb, where_b, chunk_b)
        tdtype = _TORCH_DTYPES.get(dt)
        if tdtype is None:
            raise CorruptEntry(f"{where_a}: tensor {name!r} has dtype {dt}, which this torch build lacks")
        n = max(1, -(-nbytes // block))
        for j in range(n):
            size = max(0, min(block, nbytes - j * block))
            biggest = max(biggest, size)
            xs = ca[j * block // chunk_a : (j + 1) * block // chunk_a]
            ys = cb[j * block // chunk_b : (j + 1) * block // chunk_b]
            plan.append((name, tdtype, size, xs, ys, j == n - 1))
    slots = [(torch.empty(biggest, dtype=torch.uint8), torch.empty(biggest, dtype=torch.uint8)) for _ in range(2)]

    def fetch(k: int, side: int) -> torch.Tensor | None:
        name, tdtype, size, xs, ys, _ = plan[k]
        if side == 1 and ys == xs:
            return None
        oids, where, step = (xs, where_a, chunk_a) if side == 0 else (ys, where_b, chunk_b)
        view = slots[k % 2][side][:size]
        out = view.numpy().data.cast("B")
        for i, oid in enumerate(oids):
            try:
                packread.read_blob_into(repo, oid, out[i * step : min(size, (i + 1) * step)])
            except CorruptEntry as e:
                raise CorruptEntry(
                    f"{where}: tensor {name!r} chunk {oid[:12]} is damaged: {e}; refusing to use it", tensor=name
                ) from None
        return view.view(tdtype)

    if not plan:
        return
    with ThreadPoolExecutor(max_workers=2) as pool:  # both sides of the next pair at once
        pending = (pool.submit(fetch, 0, 0), pool.submit(fetch, 0, 1))
        for k in range(len(plan)):
            a, b = pending[0].result(), pending[1].result()
            assert a is not None  # side 0 is always read; side 1 is None when it shares side 0's chunks
            if k + 1 < len(plan):
                pending = (pool.submit(fetch, k + 1, 0), pool.submit(fetch, k + 1, 1))
            yield plan[k][0], a, b, plan[k][5]
