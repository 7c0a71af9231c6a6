"""The manifest (``tvault.json``) as a type: the keys FORMAT.md defines and docs/schema/tvault.schema.json checks.

Why a TypedDict, not a class: the manifest is JSON that older and newer writers produce;
readers keep unknown keys (a 1.x addition) and must tolerate absent optional ones, so the
value stays the parsed dict (what ``show --json`` prints back) and the type only names
what each key holds. ``total=False``: validate_manifest checks presence, the type does not.
"""

from __future__ import annotations

from typing import Any, TypedDict


class Author(TypedDict):
    name: str
    email: str


# "class" is a keyword: the functional form
ModelInfo = TypedDict("ModelInfo", {"class": str, "parameters": int, "tensors": int, "bytes": int}, total=False)


class Imported(TypedDict, total=False):
    """Entries converted from the original tvault (``git tvault import-tvault``)."""

    record: str
    weights: bool


class Manifest(TypedDict, total=False):
    format: str  # "1.0", "1.1": readers accept any 1.x
    kind: str  # "tvault-entry"
    created: str  # ISO 8601 with microseconds and offset
    author: Author
    commit: str  # the training commit (40 hex)
    branch: str | None
    dirty: bool
    untracked: list[str]
    name: str | None
    message: str | None
    tags: dict[str, Any]  # any JSON values, kept with their type
    result: float | int | None
    metrics: dict[str, float | int]
    model: ModelInfo
    versions: dict[str, str]  # python, torch, tvault_git, pygit2
    config: dict[str, Any]  # 1.1: scalar leaves of configuration.json under dotted paths
    missing: list[dict[str, Any]]  # 1.1: repeats source.json's missing list
    drift: list[dict[str, Any]]  # 1.1: files changed on disk between import and log_all
    imported: Imported


def author_name(m: Manifest) -> str | None:
    """The author's name (None for a manifest without one: imported or hand-made entries)."""
    a = m.get("author")
    return a.get("name") if isinstance(a, dict) else None


def author_email(m: Manifest) -> str | None:
    a = m.get("author")
    return a.get("email") if isinstance(a, dict) else None


__all__ = ["Author", "Imported", "Manifest", "ModelInfo", "author_email", "author_name"]
