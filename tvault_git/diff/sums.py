"""The running sums of a weights diff, and the one place they become the reported statistics.

Three backends add chunks to them (torch in ``compute``, numpy in ``weights_np``, plain Python in
``weights_py`` for small diffs that should not import either); they must report identically, so
the arithmetic from sums to ``l2``/``relative``/``cosine`` lives here once. Torch- and numpy-free.
"""

from __future__ import annotations

import math
from typing import Any


def finite(v: float | None) -> float | None:
    """``v`` unless it is None, NaN or infinite (JSON has no NaN; the diff says "n/a")."""
    return v if v is not None and math.isfinite(v) else None


class DiffSums:
    """Sums of a², b², a·b, (a-b)², max |a-b| and the count of changed values, carried in Python
    floats (double) across chunks whatever the backend computed each chunk in."""

    def __init__(self) -> None:
        self.l2sq = self.na2 = self.nb2 = self.ab = self.max_abs = 0.0
        self.changed = self.numel = 0

    def result(self) -> dict[str, Any]:
        """L2 of the difference, ||a-b||/||a||, max |a-b|, cosine (clamped to [-1, 1]), counts."""
        l2, na, nb = math.sqrt(self.l2sq), math.sqrt(self.na2), math.sqrt(self.nb2)
        rel = l2 / na if na > 0 else (0.0 if l2 == 0 else None)
        cos = self.ab / (na * nb) if na > 0 and nb > 0 else None
        if cos is not None:
            cos = max(-1.0, min(1.0, cos))
        return {
            "l2": finite(l2),
            "relative": finite(rel),
            "max_abs": finite(self.max_abs),
            "cosine": finite(cos),
            "changed_values": self.changed,
            "numel": self.numel,
        }
