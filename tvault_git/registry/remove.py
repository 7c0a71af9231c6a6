"""Removing an entry from the index (``git tvault rm``): the way out of a damaged or unwanted entry.

A removal is a note line, ``removed <entry-id>``, added to every note that lists the entry, so it
merges and travels like any other line (a teammate who pulls it stops seeing the entry too, and
pulling the entry's old lines again does not bring it back). The entry keeps its slot: ``C:N`` of
the entries after it, and version numbers, never shift. The local entry ref is deleted, so
``git gc`` can drop the objects. Torch-free.
"""

from __future__ import annotations

import pygit2

from tvault_git.errors import RefNotFound, StorageError
from tvault_git.gitutil.repo import commit_to_ref, retry_locked, tree_of
from tvault_git.registry import notes
from tvault_git.registry.entries import Entry, resolve
from tvault_git.spec.format import NOTES_REF, REF_PREFIX


def remove(repo: pygit2.Repository, ref: str) -> tuple[str, list[str]]:
    """Mark the entry ``ref`` names removed on every commit that lists it; returns (id, commits)."""
    e: Entry = resolve(repo, ref)  # an id works for a damaged entry too: resolving reads no manifest
    eid = e.id

    def step() -> list[str]:
        parent, tree = notes._notes_tree(repo, NOTES_REF)
        if tree is None:
            raise RefNotFound(f"entry {eid[:10]} is not indexed")
        cur, done = tree, []
        for commit, (path, blob) in sorted(notes._flatten(repo, tree).items()):
            text = notes.note_text(repo, blob, commit)
            if text is None:
                continue
            lines = notes.parse(text)
            if not any(n.entry == eid and not n.removed for n in lines):
                continue
            body = (text if text.endswith("\n") or not text else text + "\n") + f"removed {eid}\n"
            cur = tree_of(repo, notes._write_path(repo, cur, path, repo.create_blob(body.encode())))
            done.append(commit)
        if not done:
            raise RefNotFound(f"entry {eid[:10]} is not listed in the index (already removed?)")
        commit_to_ref(repo, NOTES_REF, f"tvault: remove {eid[:12]} from {len(done)} note(s)\n", cur.id, parent)
        return done

    try:
        done = retry_locked(step, NOTES_REF, repo=repo)
        r = repo.references.get(REF_PREFIX + eid)
        if r is not None:
            r.delete()
    except (OSError, pygit2.GitError) as err:
        raise StorageError(f"could not record the removal: {err}") from None
    return eid, done
