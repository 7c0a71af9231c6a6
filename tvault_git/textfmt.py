"""Plain-text formatting shared by the CLI, the diff and the web pages: no click, no torch."""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any


def human_bytes(n: int) -> str:
    v = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if v < 1024 or unit == "TiB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1024
    return f"{n} B"


def short_date(iso: str | None) -> str:
    if not iso:
        return "-"
    try:
        return _dt.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, str):
        return v
    return json.dumps(v, sort_keys=True)


def fmt_tags(tags: dict[str, Any]) -> str:
    return " ".join(f"{k}={fmt_value(v)}" for k, v in sorted(tags.items()))
