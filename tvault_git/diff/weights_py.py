"""Weights statistics in plain Python, for diffs whose changed tensors are small.

Importing numpy costs a ``git tvault diff`` process 60-100 ms; comparing a
few kilobytes of changed values (a bias, a norm, a small head) takes a few
milliseconds in Python. Same statistics as ``compute._Stats``; sums are
done in double precision (plain ``sum``: inf and nan propagate as in numpy) for every dtype (numpy and torch use float32 math
for float32), so the last digits may differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pygit2

from tvault_git.diff.sums import DiffSums
from tvault_git.errors import CorruptEntry
from tvault_git.spec.format import CHUNK_BYTES, validate_tensor_record
from tvault_git.storage import packread

FORMATS = {
    "float64": "d",
    "float32": "f",
    "int64": "q",
    "int32": "i",
    "int16": "h",
    "int8": "b",
    "uint8": "B",
    "uint16": "H",
    "uint32": "I",
    "uint64": "Q",
    "bool": "B",
}
MAX_BYTES = 256 * 1024  # changed bytes of both sides together; beyond this numpy pays for its import


def usable(items: list[tuple[str, Any, Any]]) -> bool:
    total = 0
    for _, ra, _ in items:
        if not isinstance(ra, dict) or ra.get("dtype") not in FORMATS:
            return False
        total += 2 * int(ra.get("nbytes") or 0)
    return total <= MAX_BYTES


def stream_pairs(
    repo: pygit2.Repository,
    items: Iterable[tuple[str, Any, Any]],
    where_a: str,
    where_b: str,
    *,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[tuple[str, memoryview, memoryview | None, bool]]:
    """Like ``weights_np.stream_pairs``, with typed memoryviews (``b`` None where the blobs are the same)."""
    for name, ra, rb in items:
        dt, _, nbytes, ca = validate_tensor_record(name, ra, where_a, chunk_bytes)
        _, _, _, cb = validate_tensor_record(name, rb, where_b, chunk_bytes)
        for i, (x, y) in enumerate(zip(ca, cb)):
            size = max(0, min(chunk_bytes, nbytes - i * chunk_bytes))
            blocks: list[memoryview | None] = []
            for side, (oid, where) in enumerate(((x, where_a), (y, where_b))):
                if side == 1 and y == x:
                    blocks.append(None)
                    continue
                buf = bytearray(size)
                try:
                    packread.read_blob_into(repo, oid, memoryview(buf))
                except CorruptEntry as e:
                    raise CorruptEntry(
                        f"{where}: tensor {name!r} chunk {oid[:12]} is damaged: {e}; refusing to use it"
                    ) from None
                blocks.append(memoryview(buf).cast(FORMATS[dt]))
            assert blocks[0] is not None
            yield name, blocks[0], blocks[1], i == len(ca) - 1


class Stats(DiffSums):
    """``compute._Stats`` over typed memoryviews."""

    def add(self, a: memoryview, b: memoryview | None) -> None:
        xs = a.tolist()
        self.numel += len(xs)
        na2 = sum(x * x for x in xs)
        self.na2 += na2
        if b is None:
            self.nb2 += na2
            self.ab += na2
            return
        ys = b.tolist()
        self.nb2 += sum(y * y for y in ys)
        self.ab += sum(x * y for x, y in zip(xs, ys))
        d = [x - y for x, y in zip(xs, ys)]
        self.l2sq += sum(v * v for v in d)
        if d:
            self.max_abs = max(self.max_abs, -min(d), max(d))
        self.changed += sum(1 for v in d if v != 0)
