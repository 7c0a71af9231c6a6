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


def fmt_config(v: Any, width: int = 120) -> str:
    """A recorded configuration value, readably: tensors, callables, partials and config objects in short."""
    text = _config_text(v)
    return text if len(text) <= width else text[: width - 3] + "..."


def _config_text(v: Any) -> str:
    if isinstance(v, dict):
        cls = v.get("__class__")
        if "__callable__" in v:
            return str(v.get("source") or v["__callable__"])
        if "__same_as__" in v:
            return f"(same object as {v['__same_as__']})"
        if cls in ("torch.Tensor", "numpy.ndarray"):
            vals = f", {fmt_value(v['values'])}" if "values" in v else ""
            sha = f", sha1 {v['sha1'][:10]}" if "sha1" in v and "values" not in v else ""
            return f"tensor(shape={v.get('shape')}, {v.get('dtype')}{vals}{sha})"
        if cls == "functools.partial":
            args = [fmt_value(a) for a in v.get("args") or []]
            args += [f"{k}={fmt_value(x)}" for k, x in (v.get("keywords") or {}).items()]
            return f"partial({', '.join([str(v.get('func'))] + args)})"
        if cls:
            fields = ", ".join(f"{k}={_config_text(x)}" for k, x in v.items() if k != "__class__")
            return f"{str(cls).rsplit('.', 1)[-1]}({fields})"
    if isinstance(v, float) and len(repr(v)) <= 12:
        return repr(v)  # 0.0 stays 0.0, unlike %g
    if isinstance(v, list):
        return "[" + ", ".join(_config_text(x) for x in v) + "]"
    return fmt_value(v)
