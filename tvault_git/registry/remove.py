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
from tvault_git.gitutil.repo import commit_to_ref, retry_locked
from tvault_git.registry import notes
from tvault_git.registry.entries import Entry, resolve
from tvault_git.spec.format import NOTES_REF, REF_PREFIX


def remove(repo: pygit2.Repository, ref: str) -> tuple[str, list[str]]:
    """Mark the entry ``ref`` names removed on every commit that lists it; returns (id, commits)."""
    e: Entry = resolve(repo, ref)  # an id works for a damaged entry too: resolving reads no manifest
    done = remove_ids(repo, [e.id])
    if e.id not in done:
        raise RefNotFound(f"entry {e.id[:10]} is not listed in the index (already removed?)")
    return e.id, done[e.id]


def remove_ids(repo: pygit2.Repository, ids: list[str]) -> dict[str, list[str]]:
    """Mark every entry of ``ids`` removed, in one update of the notes (a retention policy removes
    hundreds); returns id -> the commits it was removed from (ids listed nowhere are left out)."""
    want = set(ids)

    def step() -> dict[str, list[str]]:
        parent, tree = notes._notes_tree(repo, NOTES_REF)
        if tree is None:
            return {}
        cur, done = tree, {}
        for commit, (path, blob) in sorted(notes._flatten(repo, tree).items()):
            text = notes.note_text(repo, blob, commit)
            if text is None:
                continue
            hit = sorted({n.entry for n in notes.parse(text) if n.entry in want and not n.removed})
            if not hit:
                continue
            body = (text if text.endswith("\n") or not text else text + "\n") + "".join(f"removed {e}\n" for e in hit)
            cur = repo[notes._write_path(repo, cur, path, repo.create_blob(body.encode()))]
            for e in hit:
                done.setdefault(e, []).append(commit)
        if done:
            what = next(iter(done))[:12] if len(done) == 1 else f"{len(done)} entries"
            commit_to_ref(repo, NOTES_REF, f"tvault: remove {what} from the index\n", cur.id, parent)
        return done

    try:
        done = retry_locked(step, NOTES_REF, repo=repo)
        rest = want - set(done)
        if rest:  # orphans no note lists (git notes prune): deleting the ref is the whole removal
            from tvault_git.registry import orphans

            for eid in sorted(rest - orphans.listed_ids(repo)):
                if repo.references.get(REF_PREFIX + eid) is not None:
                    done[eid] = []
        for eid in done:
            r = repo.references.get(REF_PREFIX + eid)
            if r is not None:
                r.delete()
    except (OSError, pygit2.GitError) as err:
        raise StorageError(f"could not record the removal: {err}") from None
    return done
