"""Tensors <-> raw little-endian bytes in git blobs (the safetensors idea, in git)."""

from __future__ import annotations

import sys
from typing import Any, Iterable, Mapping

import pygit2
import torch

from . import objects, packread
from .errors import CorruptEntry, InvalidInput
from .format import CHUNK_BYTES, DTYPES, validate_tensor_record

if sys.byteorder != "little":  # pragma: no cover - no such host in CI
    raise ImportError("tvault-git stores little-endian tensors and needs a little-endian host")

_TORCH_DTYPES: dict[str, torch.dtype] = {n: getattr(torch, n) for n in DTYPES if hasattr(torch, n)}
_DTYPE_NAMES = {v: k for k, v in _TORCH_DTYPES.items()}


def dtype_name(dt: torch.dtype) -> str:
    try:
        return _DTYPE_NAMES[dt]
    except KeyError:
        raise InvalidInput(f"tensor dtype {dt} is not supported by the registry format") from None


def _as_bytes(t: torch.Tensor, name: str) -> tuple[torch.Tensor, memoryview]:
    """A contiguous CPU copy only when needed, and a zero-copy byte view of it."""
    if t.layout != torch.strided:
        raise InvalidInput(f"tensor {name!r} has layout {t.layout}; convert it to dense (.to_dense()) before logging")
    if t.is_quantized:
        raise InvalidInput(f"tensor {name!r} is quantized; dequantize it before logging")
    if t.device.type == "meta":
        raise InvalidInput(f"tensor {name!r} is on the meta device and has no data")
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
    return t, memoryview(flat.numpy()).cast("B")


def store_tensors(repo: pygit2.Repository, tensors: Mapping[str, Any], what: str = "state_dict") -> tuple[dict[str, dict], list[str], int]:
    """Write every tensor as chunked blobs; returns (records in order, all blob ids, new bytes).

    Tensors that share memory (tied weights) are hashed once.
    """
    records: dict[str, dict] = {}
    chunks: list[memoryview] = []
    keep: list[torch.Tensor] = []  # keep CPU copies alive until written
    layout: list[tuple[str, int, int]] = []  # name, first chunk index, chunk count
    seen: dict[tuple, tuple[int, int]] = {}
    for name, t in tensors.items():
        if not isinstance(name, str):
            raise InvalidInput(f"{what} key {name!r} is not a string")
        if not isinstance(t, torch.Tensor):
            raise InvalidInput(f"{what} entry {name!r} is a {type(t).__name__}, not a tensor")
        dt = dtype_name(t.dtype)
        key = None
        if t.device.type != "meta" and t.layout == torch.strided and t.numel() > 0:
            key = (t.device.type, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)
        records[name] = {"dtype": dt, "shape": list(t.shape), "nbytes": t.numel() * DTYPES[dt]}
        if key is not None and key in seen:
            layout.append((name, *seen[key]))
            continue
        cpu, mv = _as_bytes(t, name)
        keep.append(cpu)
        first = len(chunks)
        if mv.nbytes == 0:
            chunks.append(mv)
        else:
            for off in range(0, mv.nbytes, CHUNK_BYTES):
                chunks.append(mv[off : off + CHUNK_BYTES])
        span = (first, len(chunks) - first)
        if key is not None:
            seen[key] = span
        layout.append((name, *span))
    ids, new_bytes = objects.write_blobs(repo, chunks)
    for name, first, count in layout:
        records[name]["chunks"] = ids[first : first + count]
    return records, sorted(set(ids)), new_bytes


def read_tensor(repo: pygit2.Repository, name: str, rec: Any, where: str, device: str | torch.device = "cpu") -> torch.Tensor:
    """Read one tensor, validating shape, size and checksums; never returns garbage."""
    dtype, shape, nbytes, chunks = validate_tensor_record(name, rec, where)
    tdtype = _TORCH_DTYPES.get(dtype)
    if tdtype is None:
        raise CorruptEntry(f"{where}: tensor {name!r} has dtype {dtype}, which this torch build lacks")
    out = torch.empty(shape, dtype=tdtype)
    if nbytes:
        buf = memoryview(out.reshape(-1).view(torch.uint8).numpy()).cast("B")
        pos = 0
        for i, oid in enumerate(chunks):
            ln = min(CHUNK_BYTES, nbytes - pos)
            try:
                packread.read_blob_into(repo, oid, buf[pos : pos + ln])
            except CorruptEntry as e:
                raise CorruptEntry(f"{where}: tensor {name!r} chunk {i} ({oid[:12]}) is damaged: {e}; refusing to load it") from None
            pos += ln
    if str(device) != "cpu":
        out = out.to(device)
    return out


def iter_tensors(repo: pygit2.Repository, records: Mapping[str, Any], where: str, names: Iterable[str] | None = None):
    for name in names if names is not None else records:
        if name not in records:
            raise InvalidInput(f"{where} has no tensor named {name!r}")
        yield name, read_tensor(repo, name, records[name], where)
