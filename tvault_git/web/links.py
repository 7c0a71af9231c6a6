"""Link helpers: the same templates link to routes (the live app) or to relative files (the export)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlencode

from tvault_git.spec.format import NAME_RE


class Links:
    """URLs of the live app; ``ExportLinks`` maps the same calls onto relative file names."""

    live = True

    def static(self, path: str) -> str:
        return "/static/" + path

    def entries(self, page: int = 1, **params: Any) -> str:
        q = [(k, v) for k, v in params.items() if v not in (None, "", [], ())]
        flat: list[tuple[str, Any]] = []
        for k, v in q:
            flat += [(k, x) for x in v] if isinstance(v, (list, tuple)) else [(k, v)]
        if page > 1:
            flat.append(("page", page))
        return "/" + ("?" + urlencode(flat) if flat else "")

    def entry(self, eid: str) -> str:
        return "/entry/" + quote(eid, safe="")

    def compare(self, a: str, b: str) -> str:
        return "/compare?" + urlencode([("a", a), ("b", b)])

    def compare_many(self, ids: Iterable[str]) -> str:
        return "/compare?" + urlencode([("ids", i) for i in ids])

    def compare_prev(self, eid: str) -> str | None:
        return "/compare?" + urlencode([("a", eid)])

    def models(self) -> str:
        return "/models"

    def model(self, name: str) -> str:
        return "/model/" + quote(name, safe="")

    def download(self, eid: str) -> str | None:
        return "/download/" + quote(eid, safe="") + ".safetensors"


class ExportLinks(Links):
    """Flat, relative file names, so the exported folder works from any URL or from disk."""

    live = False

    def __init__(self, weights: bool = False) -> None:
        self.weights = weights

    def static(self, path: str) -> str:
        return "static/" + path

    def entries(self, page: int = 1, **params: Any) -> str:
        return "index.html" if page <= 1 else f"entries-{page}.html"

    def entry(self, eid: str) -> str:
        return f"entry-{safe_name(eid)}.html"

    def compare(self, a: str, b: str) -> str:
        return f"compare-{safe_name(a)}-{safe_name(b)}.html"

    def compare_many(self, ids: Iterable[str]) -> str:
        return "#"

    def compare_prev(self, eid: str) -> str | None:
        return None  # the entry page links its predecessor comparison by file name

    def models(self) -> str:
        return "models.html"

    def model(self, name: str) -> str:
        return f"model-{safe_name(name)}.html"

    def download(self, eid: str) -> str | None:
        return f"weights/{safe_name(eid)}.safetensors" if self.weights else None


def safe_name(s: str) -> str:
    """A file-name-safe spelling of a registry string (names from remotes are not trusted)."""
    return s if NAME_RE.match(s) else "x" + s.encode("utf-8").hex()


def download_name(name: str) -> str:
    """A ``Content-Disposition`` file name: anything but ``[A-Za-z0-9._-]`` becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


__all__ = ["ExportLinks", "Links", "download_name", "safe_name"]
