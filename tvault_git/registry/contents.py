"""An entry's parts read in one place: what ``git tvault show`` prints and the web entry page draws.

Why one loader: the CLI, the web UI and the diff each used to read source.json,
weights.json, optimizer.json ... themselves, with slightly different rules for a
missing or damaged part. Here every part is read once, with the registry's size
limits and JSON rules; front ends only format the typed record. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pygit2

from tvault_git.registry import entries
from tvault_git.registry.entries import Entry
from tvault_git.spec.format import ARCHITECTURE, CONFIGURATION, OPTIMIZER, PATCH, SCHEDULER, SOURCE_INDEX
from tvault_git.spec.manifest import Manifest


@dataclass(frozen=True)
class EntryContents:
    """The parts of one entry as stored (JSON parts parsed, text parts decoded); absent parts are empty."""

    entry: Entry
    manifest: Manifest
    source: dict[str, Any]  # source.json: objects, external, missing ({} when absent or not an object)
    weights: dict[str, dict[str, Any]]  # weights.json records by tensor name (shape, dtype, nbytes, ...)
    architecture: str  # '' when absent; a note when over its size limit
    optimizer: Any  # optimizer.json as stored (None when absent)
    scheduler: Any  # scheduler.json as stored (None when absent)
    configuration: Any  # configuration.json as stored (None when absent)
    _repo: pygit2.Repository = field(repr=False, compare=False)
    _tree: pygit2.Tree = field(repr=False, compare=False)

    @property
    def objects(self) -> list[dict[str, Any]]:
        """Captured source objects (classes, functions, values) that are well-formed records."""
        return [o for o in self.source.get("objects") or [] if isinstance(o, dict)]

    def text(self, path: str) -> str:
        """A text part of the entry by path (a captured source file, the patch): '' when absent."""
        return entries.read_text(self._repo, self._tree, path)

    def patch(self) -> str:
        """The uncommitted changes the entry was trained with ('' for a clean work tree)."""
        return self.text(PATCH) if self.manifest.get("dirty") else ""


def load_contents(repo: pygit2.Repository, entry: Entry) -> EntryContents:
    """Every small part of ``entry`` (not the tensors). Raises CorruptEntry for a damaged JSON part."""
    manifest = entry.manifest
    tree = entries.entry_tree(repo, entry.id)
    src = entries.read_json(repo, entry.id, SOURCE_INDEX)
    return EntryContents(
        entry=entry,
        manifest=manifest,
        source=src if isinstance(src, dict) else {},
        weights=entries.weight_records(repo, entry.id),
        architecture=entries.read_text(repo, tree, ARCHITECTURE),
        optimizer=entries.read_json(repo, entry.id, OPTIMIZER),
        scheduler=entries.read_json(repo, entry.id, SCHEDULER),
        configuration=entries.read_json(repo, entry.id, CONFIGURATION),
        _repo=repo,
        _tree=tree,
    )


__all__ = ["EntryContents", "load_contents"]
