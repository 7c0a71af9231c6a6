"""Weights statistics with numpy, for ``diff`` processes that have not imported torch.

``import torch`` costs most of a small model's ``git tvault diff`` (1.8 s of
2.3 s for 6 MB): numpy computes the same statistics (``compute._Stats``:
float32 math for float32 and narrower, float64 for float64 and integers,
sums in Python floats) on the same chunk blocks. Dtypes numpy lacks
(bfloat16, float8) and big reads go through torch as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pygit2

from tvault_git.diff.sums import DiffSums
from tvault_git.errors import CorruptEntry
from tvault_git.spec.format import CHUNK_BYTES, validate_tensor_record
from tvault_git.storage import packread

DTYPES = {
    "float64": np.float64,
    "float32": np.float32,
    "float16": np.float16,
    "complex128": np.complex128,
    "complex64": np.complex64,
    "int64": np.int64,
    "int32": np.int32,
    "int16": np.int16,
    "int8": np.int8,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "uint32": np.uint32,
    "uint64": np.uint64,
    "bool": np.bool_,
}
MAX_BYTES = 256 * 1024 * 1024  # beyond this torch's multithreaded kernels pay for their import


def usable(items: list[tuple[str, Any, Any]]) -> bool:
    total = 0
    for _, ra, _ in items:
        if not isinstance(ra, dict) or ra.get("dtype") not in DTYPES:
            return False
        total += int(ra.get("nbytes") or 0)
    return total <= MAX_BYTES


def stream_pairs(
    repo: pygit2.Repository,
    items: Iterable[tuple[str, Any, Any]],
    where_a: str,
    where_b: str,
    *,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[tuple[str, np.ndarray, np.ndarray | None, bool]]:
    """Like ``storage.tensors.stream_pairs`` for two tables of one chunk size, with numpy arrays
    (``b`` None where the blobs are the same)."""
    buf_a = buf_b = None
    for name, ra, rb in items:
        dt, _, nbytes, ca = validate_tensor_record(name, ra, where_a, chunk_bytes)
        _, _, _, cb = validate_tensor_record(name, rb, where_b, chunk_bytes)
        for i, (x, y) in enumerate(zip(ca, cb)):
            size = max(0, min(chunk_bytes, nbytes - i * chunk_bytes))
            if buf_a is None or buf_a.size < size:
                buf_a, buf_b = np.empty(size, np.uint8), np.empty(size, np.uint8)
            blocks = []
            for side, (oid, buf, where) in enumerate(((x, buf_a, where_a), (y, buf_b, where_b))):
                if side == 1 and y == x:
                    blocks.append(None)
                    continue
                view = buf[:size]
                try:
                    packread.read_blob_into(repo, oid, memoryview(view))
                except CorruptEntry as e:
                    raise CorruptEntry(
                        f"{where}: tensor {name!r} chunk {oid[:12]} is damaged: {e}; refusing to use it"
                    ) from None
                blocks.append(view.view(DTYPES[dt]))
            yield name, blocks[0], blocks[1], i == len(ca) - 1


class Stats(DiffSums):
    """``compute._Stats`` over numpy blocks."""

    def add(self, a: np.ndarray, b: np.ndarray | None) -> None:
        if np.iscomplexobj(a):
            a = a.view(a.real.dtype)
            b = None if b is None else b.view(b.real.dtype)
        wide = a.dtype == np.float64 or not np.issubdtype(a.dtype, np.floating)
        work = np.float64 if wide else np.float32
        a = a.astype(work, copy=False)
        self.numel += a.size
        na = float(np.linalg.norm(a)) if a.size else 0.0
        self.na2 += na * na
        if b is None:
            self.nb2 += na * na
            self.ab += na * na
            return
        b = b.astype(work, copy=False)
        nb = float(np.linalg.norm(b)) if b.size else 0.0
        self.nb2 += nb * nb
        if not a.size:
            return
        self.ab += float(np.dot(a, b))
        d = np.subtract(a, b)
        l2 = float(np.linalg.norm(d))
        self.l2sq += l2 * l2
        self.max_abs = max(self.max_abs, -float(d.min()), float(d.max()))
        self.changed += int(np.count_nonzero(d))
