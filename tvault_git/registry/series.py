"""Step metrics: learning curves recorded during training and stored with the entries.

``tvault.log_metrics(step=120, loss=0.31, lr=1e-3)`` appends to this process's
series; every ``log_all`` afterwards stores the series recorded so far (so the
entry of epoch 3 carries the curve up to epoch 3, and a run's last entry the
whole run). ``tvault.clear_metrics()`` starts a new series, e.g. between two
runs in one process. Stored as ``steps.json`` (docs/FORMAT.md): a tensor table
of one int64 ``step`` column and one float32 column per metric, NaN where a
metric was not logged at that step.

Writing needs no torch here (log_all converts); reading is torch-free so that
``git tvault show`` and the web UI stay light.
"""

from __future__ import annotations

import itertools
import math
import numbers
import sys
import threading
import warnings
from array import array
from dataclasses import dataclass
from typing import Any

import pygit2

from tvault_git.errors import CorruptEntry, InvalidInput
from tvault_git.gitutil.lazy import ensure_present
from tvault_git.registry import entries as registry
from tvault_git.registry.query import lower_is_better
from tvault_git.spec.format import STEPS, validate_tensor_record
from tvault_git.spec.tables import parse_table

STEP = "step"  # the step column's name; no metric may use it
MAX_SERIES_BYTES = 256 * 1024 * 1024  # readers refuse more (validated before any column is read)
MAX_COLUMNS = 1000


def _value(v: Any, name: str) -> float:
    if hasattr(v, "item") and callable(v.item) and not isinstance(v, (str, bytes)):
        try:
            if getattr(v, "numel", lambda: 1)() != 1:
                raise InvalidInput(f"step metric {name!r} must be a single number, got shape {tuple(v.shape)}")
            v = v.item()  # torch / numpy scalars
        except (TypeError, ValueError):
            pass
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise InvalidInput(f"step metric {name!r} must be a number, got {type(v).__name__} {v!r}")
    return float(v)


class StepSeries:
    """Rows keyed by step (a step logged twice merges, the later value winning), columns of float32."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._steps = array("q")
            self._row: dict[int, int] = {}
            self._cols: dict[str, array[float]] = {}
            self._warned_nan = False

    def __len__(self) -> int:
        return len(self._steps)

    def record(self, step: Any, values: dict[str, Any]) -> None:
        if hasattr(step, "item") and callable(step.item) and getattr(step, "ndim", 0) == 0:
            step = step.item()  # a 0-d tensor or numpy integer (trainer.global_step may be one)
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or int(step) < 0:
            raise InvalidInput(f"step must be a non-negative integer (the global step), got {step!r}")
        step = int(step)
        if not values:
            raise InvalidInput("log_metrics needs at least one value, e.g. tvault.log_metrics(step=10, loss=0.3)")
        clean = {}
        for k, v in values.items():
            if not isinstance(k, str) or not k or k == STEP or "\n" in k or len(k) > 200:
                raise InvalidInput(f"step metric name {k!r} is invalid: a non-empty name other than 'step'")
            f = _value(v, k)
            if math.isnan(f):  # NaN marks "not logged" in the columns; a NaN loss is kept as missing
                if not self._warned_nan:
                    warnings.warn(
                        f"tvault: step metric {k!r} is NaN at step {step}; it is stored as not logged", stacklevel=3
                    )
                    self._warned_nan = True
                continue
            clean[k] = f
        with self._lock:
            if len(self._cols) + len(set(clean) - set(self._cols)) > MAX_COLUMNS:
                raise InvalidInput(f"at most {MAX_COLUMNS} step metrics per series")
            row = self._row.get(step)
            if row is None:
                row = len(self._steps)
                self._row[step] = row
                self._steps.append(step)
                for col in self._cols.values():
                    col.append(math.nan)
            for k, f in clean.items():
                have = self._cols.get(k)
                if have is None:
                    have = self._cols[k] = array("f", [math.nan]) * len(self._steps)
                have[row] = f  # rounds to float32 here, as stored

    def columns(self) -> dict[str, array[Any]] | None:
        """Column name -> array (int64 ``step``, float32 metrics), rows by ascending step; None when empty."""
        with self._lock:
            if not self._steps:
                return None
            st = self._steps
            if all(a < b for a, b in itertools.pairwise(st)):  # logged in order (the usual case): plain copies
                return {STEP: array("q", st), **{k: array("f", self._cols[k]) for k in sorted(self._cols)}}
            order = sorted(range(len(st)), key=st.__getitem__)
            cols: dict[str, array[Any]] = {STEP: array("q", (st[i] for i in order))}
            for k in sorted(self._cols):
                src = self._cols[k]
                cols[k] = array("f", (src[i] for i in order))
        return cols


_SERIES = StepSeries()


def log_metrics(step: int, **values: Any) -> None:
    """Record metric values at a training step; the next ``log_all`` stores them with its entry.

    Cheap (no I/O): call it every step or every N steps. Values are kept as float32.
    """
    _SERIES.record(step, values)


def clear_metrics() -> None:
    """Forget the recorded series (start of a new run in the same process)."""
    _SERIES.clear()


def pending() -> dict[str, array[Any]] | None:
    return _SERIES.columns()


# --- reading ---------------------------------------------------------------------------


@dataclass
class Series:
    steps: list[int]
    columns: dict[str, list[float | None]]  # None: not logged at that step

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per metric: points logged, last (step, value), best (step, value) and the direction used."""
        out = {}
        for name, col in self.columns.items():
            pts = [(s, v) for s, v in zip(self.steps, col) if v is not None]
            if not pts:
                continue
            low = lower_is_better(name)
            finite = [p for p in pts if math.isfinite(p[1])] or pts
            best = min(finite, key=lambda p: (p[1], p[0])) if low else max(finite, key=lambda p: (p[1], -p[0]))
            last = pts[-1][1] if math.isfinite(pts[-1][1]) else str(pts[-1][1])  # JSON has no inf
            out[name] = {
                "points": len(pts),
                "last": [pts[-1][0], last],
                "best": list(best),
                "mode": "min" if low else "max",
            }
        return out

    def to_json(self) -> dict[str, Any]:
        """For plots: inf and missing as null (JSON has neither)."""
        return {
            "steps": self.steps,
            "columns": {
                k: [v if v is not None and math.isfinite(v) else None for v in col] for k, col in self.columns.items()
            },
        }


def _blob_bytes(repo: pygit2.Repository, chunks: list[str], nbytes: int, chunk_bytes: int, where: str) -> bytes:
    parts = []
    ensure_present(repo, chunks, f"chunks of {where}")
    for i, oid in enumerate(chunks):
        want = min(chunk_bytes, nbytes - i * chunk_bytes)
        try:
            obj = repo.get(oid)
        except (ValueError, pygit2.GitError):
            obj = None
        if not isinstance(obj, pygit2.Blob):
            raise CorruptEntry(f"{where}: chunk {oid[:12]} is missing; fetch the entry again")
        if obj.size != want:
            raise CorruptEntry(f"{where}: chunk {oid[:12]} is {obj.size} bytes, expected {want}")
        parts.append(obj.data)  # libgit2 checks the object id as it reads
    return b"".join(parts)


def read(repo: pygit2.Repository, entry_id: str) -> Series | None:
    """The entry's step series, validated before any column is read; None if it has none."""
    where = f"entry {entry_id[:10]}: {STEPS}"
    doc = registry.read_json(repo, entry_id, STEPS)
    if doc is None:
        return None
    table = parse_table(doc, where)  # the table's own chunk size, checked
    recs = table.tensors
    if STEP not in recs or len(recs) > MAX_COLUMNS + 1:
        raise CorruptEntry(f"{where} has no '{STEP}' column or too many columns")
    checked = {}
    total = 0
    rows = None
    for name, rec in recs.items():
        dtype, shape, nbytes, chunks = validate_tensor_record(name, rec, where, table.chunk_bytes)
        want = "int64" if name == STEP else "float32"
        if dtype != want or len(shape) != 1 or (rows is not None and shape[0] != rows):
            raise CorruptEntry(f"{where}: column {name!r} must be {want} with one value per step")
        rows = shape[0]
        total += nbytes
        checked[name] = (dtype, nbytes, chunks)
    if total > MAX_SERIES_BYTES:
        raise CorruptEntry(f"{where} holds {total} bytes of series, over the {MAX_SERIES_BYTES} byte limit")
    cols: dict[str, array[Any]] = {}
    for name, (dtype, nbytes, chunks) in checked.items():
        arr = array("q" if dtype == "int64" else "f")
        arr.frombytes(_blob_bytes(repo, chunks, nbytes, table.chunk_bytes, where))
        if sys.byteorder == "big":
            arr.byteswap()
        cols[name] = arr
    steps = list(cols.pop(STEP))
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise CorruptEntry(f"{where}: steps are not strictly increasing")
    return Series(steps, {k: [None if math.isnan(v) else v for v in col] for k, col in cols.items()})
