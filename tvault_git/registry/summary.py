"""The entry row every listing shows: ``log``/``find`` (``--json`` too), ``show --json``, the web entries table.

Why one definition: the row used to be built three times (from the cache in query.py, from the
manifest in the CLI, again in the web), with the ``COMMIT7:INDEX`` ref spelled in each.
"""

from __future__ import annotations

import json
from typing import Any, TypedDict

from tvault_git.registry.entries import Entry
from tvault_git.spec.manifest import author_email, author_name


class _Row(TypedDict):
    id: str
    ref: str  # COMMIT7:INDEX, what users type
    commit: str
    index: int
    name: str | None
    result: Any
    metrics: dict[str, Any]
    tags: dict[str, Any]
    author: str | None
    email: str | None
    created: str | None
    branch: str | None
    dirty: bool | None
    message: str | None


class EntrySummary(_Row, total=False):
    version: int | None  # NAME@N: set by find (query._add_versions), absent in show --json
    orphaned: bool  # set by log: the training commit is gone or unreachable (registry/orphans.py)


def of_entry(e: Entry) -> EntrySummary:
    """The row from the entry's manifest (reads it when not read yet)."""
    m = e.manifest
    return {
        "id": e.id,
        "ref": e.ref,
        "commit": e.commit,
        "index": e.index,
        "name": m.get("name"),
        "result": m.get("result"),
        "metrics": m.get("metrics") or {},
        "tags": m.get("tags") or {},
        "author": author_name(m),
        "email": author_email(m),
        "created": m.get("created"),
        "branch": m.get("branch"),
        "dirty": m.get("dirty"),
        "message": m.get("message"),
    }


def of_row(row: tuple[Any, ...]) -> EntrySummary:
    """The row from the cache's entries table (``query._COLUMNS``, in that order)."""
    eid, commit, idx, name, result, metrics, tags, author, email, created, branch, dirty, message = row
    return {
        "id": eid,
        "ref": f"{commit[:7]}:{idx}",
        "commit": commit,
        "index": idx,
        "name": name,
        "result": json.loads(result) if result is not None else None,
        "metrics": json.loads(metrics) if metrics else {},
        "tags": json.loads(tags) if tags else {},
        "author": author,
        "email": email,
        "created": created,
        "branch": branch,
        "dirty": bool(dirty),
        "message": message,
    }


__all__ = ["EntrySummary", "of_entry", "of_row"]
