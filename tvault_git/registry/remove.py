"""Removing an entry from the index (``git tvault rm``): the way out of a damaged or unwanted entry.

A removal is a note line, ``removed <entry-id>``, added to every note that lists the entry, so it
merges and travels like any other line (a teammate who pulls it stops seeing the entry too, and
pulling the entry's old lines again does not bring it back). The entry keeps its slot: ``C:N`` of
the entries after it, and version numbers, never shift. The local entry ref is deleted, so
``git gc`` can drop the objects, and aliases pointing at the entry are dropped. Torch-free.
"""

from __future__ import annotations

import pygit2

from tvault_git.errors import StorageError
from tvault_git.gitutil.repo import commit_to_ref, retry_locked, tree_of
from tvault_git.registry import names, notes
from tvault_git.registry.entries import Entry, resolve
from tvault_git.spec.format import NOTES_REF, REF_PREFIX


def resolve_all(repo: pygit2.Repository, refs: list[str]) -> list[Entry]:
    """The entries ``refs`` name, each once, all resolved before anything is removed (one bad ref
    removes nothing)."""
    out: dict[str, Entry] = {}
    for r in refs:
        e = resolve(repo, r)
        out.setdefault(e.id, e)
    return list(out.values())


def remove_ids(repo: pygit2.Repository, ids: list[str]) -> dict[str, list[str]]:
    """Mark every entry of ``ids`` removed, in one update of the notes (a retention policy removes
    hundreds); returns id -> the commits it was removed from (ids listed nowhere are left out)."""
    want = set(ids)

    def step() -> dict[str, list[str]]:
        parent, tree = notes._notes_tree(repo, NOTES_REF)
        if tree is None:
            return {}
        cur: pygit2.Tree = tree
        done: dict[str, list[str]] = {}
        for commit, (path, blob) in sorted(notes._flatten(repo, tree).items()):
            text = notes.note_text(repo, blob, commit)
            if text is None:
                continue
            hit = sorted({n.entry for n in notes.parse(text) if n.entry in want and not n.removed})
            if not hit:
                continue
            body = (text if text.endswith("\n") or not text else text + "\n") + "".join(f"removed {e}\n" for e in hit)
            cur = tree_of(repo, notes._write_path(repo, cur, path, notes.write_note(repo, body)))
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
        if done:  # an alias never points at a removed entry (NAME@best would name nothing)
            names.remove_aliases_to(repo, done)
    except (OSError, pygit2.GitError) as err:
        raise StorageError(f"could not record the removal: {err}") from None
    return done
