"""How manifest values are read back: metric/tag numbers and ``created`` instants (one rule each).

Every reader that sorts, plots, compares or indexes these values uses these two functions, so
the CLI, the web UI, the cache and the diff can never disagree on what counts as a number or
which entry is newer.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any


def as_number(value: Any) -> float | None:
    """``value`` as a float when it is a finite JSON number (bools are not numbers), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def iso_to_instant(text: Any) -> float | None:
    """An ISO-8601 time (``created=``, alias times) as POSIX seconds; None when it is not one.

    Instants, not strings, order entries: ``10:00+09:00`` is before ``05:00+00:00``. A trailing
    ``Z`` is UTC (Python 3.10's ``fromisoformat`` rejects it); a time without offset is taken as UTC.
    """
    if not isinstance(text, str):
        return None
    try:
        d = _dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    return d.timestamp()
