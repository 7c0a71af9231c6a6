"""A model's versions as rows: what ``git tvault history NAME`` prints and the web history page draws.

Why here: both front ends need each version's result, metrics and author next to its
number and aliases, and must agree on what a version whose objects are not fetched (or
are damaged) shows. The version numbering itself is names.versions'. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pygit2

from tvault_git.errors import RefNotFound, TvaultError
from tvault_git.registry import names, query
from tvault_git.registry.entries import Entry
from tvault_git.spec.manifest import Manifest, author_email, author_name
from tvault_git.spec.values import iso_to_instant


@dataclass
class VersionRow:
    """One version of a model with the manifest fields a listing shows."""

    version: names.Version
    result: Any = None
    metrics: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)
    author: str | None = None
    email: str | None = None
    message: str | None = None
    dirty: bool | None = None
    fetched: bool = True  # False: indexed (pulled notes) but its objects are not here, or damaged

    @property
    def entry(self) -> Entry:
        return self.version.entry


def _row(v: names.Version, m: Manifest, fetched: bool = True) -> VersionRow:
    return VersionRow(
        v,
        result=m.get("result"),
        metrics=dict(m.get("metrics") or {}),
        tags=dict(m.get("tags") or {}),
        author=author_name(m),
        email=author_email(m),
        message=m.get("message"),
        dirty=m.get("dirty"),
        fetched=fetched,
    )


def version_rows(repo: pygit2.Repository, name: str) -> list[VersionRow]:
    """Versions of ``name``, oldest first, each read from its manifest; a version whose objects are
    missing, damaged or removed says so in ``message`` (``git tvault history``)."""
    rows = []
    for v in names.versions(repo, name):
        try:
            row = _row(v, v.entry.manifest)
        except RefNotFound:  # indexed (e.g. from a remote's notes) but objects not fetched
            row = VersionRow(v, message=f"(objects not here: git tvault fetch REMOTE {v.entry.id[:12]})", fetched=False)
        except TvaultError as e:  # here, but damaged or newer: say so, not "not here"
            row = VersionRow(v, message=f"(damaged: {e}; see git tvault fsck)", fetched=False)
        if v.entry.removed:
            row.message = "(removed with git tvault rm)"
        rows.append(row)
    return rows


@dataclass
class ModelHistory:
    """The versions of one model and which rows the computed aliases (latest, best) point at."""

    name: str
    rows: list[VersionRow]
    computed: dict[str, str]  # 'latest' / 'best' -> entry id, by names' own rule


def model_history(repo: pygit2.Repository, name: str) -> ModelHistory:
    """Versions of one model, oldest first, their fields from the cache (one query, not a manifest per
    version); entries whose note lines lack the name (older writers) are numbered from their manifests."""
    by_id = {r["id"]: r for r in query.find(repo, name=name)} if not any(c in name for c in "*?[") else {}
    try:
        vs = names.versions(repo, name)
    except RefNotFound:
        if not by_id:
            raise
        vs = _versions_from_manifests(repo, name, list(by_id.values()))
    rows = []
    for v in vs:
        r = by_id.get(v.entry.id)
        if r is not None:
            rows.append(
                VersionRow(
                    v,
                    result=r.get("result"),
                    metrics=r.get("metrics") or {},
                    tags=r.get("tags") or {},
                    author=r.get("author"),
                    email=r.get("email"),
                    message=r.get("message"),
                    dirty=r.get("dirty"),
                )
            )
            continue
        try:
            rows.append(_row(v, v.entry.manifest))
        except TvaultError:  # indexed (pulled notes) but its objects are not fetched yet
            rows.append(VersionRow(v, fetched=False))
    computed: dict[str, str] = {}
    if rows:
        computed["latest"] = rows[-1].entry.id
        top = names.best(vs)  # names.resolve(name, "best") would walk every note again
        if top is not None and not any("best" in v.aliases for v in vs):  # a stored best wins
            computed["best"] = top.entry.id
    return ModelHistory(name, rows, computed)


def _versions_from_manifests(repo: pygit2.Repository, name: str, rows: list[dict[str, Any]]) -> list[names.Version]:
    """Versions for entries whose manifests carry ``name`` but whose note lines do not (older writers).

    Same numbering rule as names.versions: oldest first by (created, entry id).
    """
    rows = sorted(rows, key=lambda r: (iso_to_instant(r["created"]) or 0.0, r["id"]))
    return [
        names.Version(k + 1, Entry(r["id"], r["commit"], r["index"], name, _repo=repo), r["created"] or "", [])
        for k, r in enumerate(rows)
    ]


__all__ = ["ModelHistory", "VersionRow", "model_history", "version_rows"]
