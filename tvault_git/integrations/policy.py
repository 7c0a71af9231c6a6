"""What both training callbacks share: which checkpoints a run keeps, and turning framework
objects (hparams, TrainingArguments, logged tensors) into tags and numbers.

Keeping is by aliases, never by deletion: entries are immutable and shared by
union merges (a removed entry would come back from a teammate's clone), so a
checkpoint that falls out of the top k merely loses its alias and stays a
version of the model (``git tvault history NAME``).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import tvault_git as tvault

MAX_TAG_TEXT = 2000  # a repr longer than this is cut: tags are for reading and filtering


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON value for a tag: plain data kept, anything else as its (short) repr."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        return f if math.isfinite(f) else str(f)
    if depth < 8 and isinstance(value, (list, tuple)):
        return [jsonable(v, depth + 1) for v in value]
    if depth < 8 and isinstance(value, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if hasattr(value, "value") and isinstance(getattr(value, "value", None), (str, int)):
        return value.value  # enums (IntervalStrategy.STEPS -> "steps")
    text = repr(value)
    return text if len(text) <= MAX_TAG_TEXT else text[:MAX_TAG_TEXT] + "..."


def number(value: Any) -> float | None:
    """A finite float from a logged value (tensor, numpy or Python number); None otherwise."""
    if hasattr(value, "numel") and callable(value.numel):
        if value.numel() != 1:
            return None
        value = value.item()
    elif hasattr(value, "item") and callable(value.item) and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def numbers_of(mapping: Any) -> dict[str, float]:
    """The finite scalar values of a metrics mapping (non-scalars and NaN/inf left out)."""
    out = {}
    for k, v in dict(mapping or {}).items():
        f = number(v)
        if f is not None and isinstance(k, str) and k:
            out[k] = f
    return out


@dataclass
class TopK:
    """``NAME@best``, ``NAME@best-2`` ... ``NAME@best-k`` over this run's entries by the monitored
    value, and ``NAME@last``. ``k = -1`` ranks all (only ``best`` is set then); ``k = 0`` none."""

    name: str
    mode: str = "min"
    k: int = 3
    repo: Any = None
    ranked: list[tuple[float, int, str]] = field(default_factory=list)  # (value, order, entry id)

    def __post_init__(self) -> None:
        if self.mode not in ("min", "max"):
            raise tvault.InvalidInput(f"mode must be 'min' or 'max', got {self.mode!r}")
        if not isinstance(self.k, int) or self.k < -1:
            raise tvault.InvalidInput(f"save_top_k must be -1 (all), 0 or a positive number, got {self.k!r}")

    def _key(self, value: float, order: int) -> tuple[float, int]:
        return (value if self.mode == "min" else -value, -order)  # ties: the later one ranks higher

    def would_keep(self, value: float | None) -> bool:
        """Whether an entry with ``value`` would enter the top k (so is worth logging without ``last``)."""
        if value is None or self.k == 0:
            return False
        if self.k == -1 or len(self.ranked) < self.k:
            return True
        worst = self.ranked[self.k - 1]
        return self._key(value, len(self.ranked) + 1) < self._key(worst[0], worst[1])

    def aliases_for(self) -> dict[str, str]:
        top = self.ranked if self.k == -1 else self.ranked[: self.k]
        out = {}
        for i, (_, _, eid) in enumerate(top):
            if i == 0:
                out["best"] = eid
            elif self.k != -1:
                out[f"best-{i + 1}"] = eid
        return out

    def add(self, entry_id: str, value: float | None, last: bool) -> dict[str, str]:
        """Record a logged entry and move the aliases; returns the aliases now set by this policy."""
        if value is not None and self.k != 0:
            self.ranked.append((value, len(self.ranked) + 1, entry_id))
            self.ranked.sort(key=lambda t: self._key(t[0], t[1]))
        want = self.aliases_for()
        if last:
            want["last"] = entry_id
        have = tvault.aliases(self.name, repo=self.repo)
        for alias, eid in want.items():
            if have.get(alias) != eid:
                tvault.set_alias(self.name, eid, alias, repo=self.repo)
        # ranks this run no longer fills (a longer earlier run under the same name): drop, not repoint
        for alias in have:
            if alias.startswith("best-") and alias not in want and alias[5:].isdigit():
                tvault.remove_alias(self.name, alias, repo=self.repo)
        return want
