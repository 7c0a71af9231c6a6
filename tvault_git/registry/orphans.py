"""Entries whose training commit is gone, or that no note lists any more (a rewrite without hooks).

After ``git commit --amend`` or ``git rebase`` without tvault's hooks, note lines stay on the old
commits. Once git prunes those (``git gc --prune=now``), the entries are listed on a commit that
does not exist; ``git notes prune`` then deletes their notes. Their refs under ``refs/tvault/``
keep the objects, so nothing is lost: this module finds them (``git tvault orphans``, ``fsck``,
the mark in ``log``/``show``), and hooks/rewrites.py re-attaches them. Torch-free.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pygit2

from tvault_git.gitutil.repo import tree_of
from tvault_git.gitutil.run import run_git
from tvault_git.registry import notes
from tvault_git.spec.format import NOTES_REF, REF_PREFIX

GONE = "gone"  # listed on a commit that is not in the repository
UNREACHABLE = "unreachable"  # listed on a commit no branch, tag, remote branch or HEAD reaches (reflog only)
UNINDEXED = "unindexed"  # an entry ref no note lists (git notes prune, or a plain fetch of refs/tvault/*)
HISTORY_DEPTH = 500  # notes commits searched for the last line of an unindexed entry


@dataclass(frozen=True)
class Orphan:
    entry: str
    commit: str  # the commit it is (or was last) listed on; for an unindexed entry without history, ''
    kind: str  # GONE, UNREACHABLE or UNINDEXED
    line: notes.NoteLine | None  # its note line (for an unindexed entry: the last one in the notes history)

    def why(self) -> str:
        if self.kind == GONE:
            return f"its training commit {self.commit[:10]} is gone (rewritten without tvault's hooks?)"
        if self.kind == UNREACHABLE:
            return (
                f"its training commit {self.commit[:10]} is on no branch (amended or rebased; only the reflog keeps it)"
            )
        where = f" (last listed on {self.commit[:10]})" if self.commit else ""
        return f"no note lists it{where} (git notes prune?)"


def has_commit(repo: pygit2.Repository, sha: str) -> bool:
    try:
        obj = repo.get(sha)
    except (ValueError, pygit2.GitError):
        return False
    return obj is not None and obj.type == pygit2.enums.ObjectType.COMMIT


def entry_refs(repo: pygit2.Repository) -> set[str]:
    """Ids of the entry refs ``refs/tvault/<40 hex>`` (raw names: no Python object per ref)."""
    want = REF_PREFIX.encode()
    out = set()
    for r in repo.raw_listall_references():
        if r.startswith(want):
            rest = r[len(want) :].decode("ascii", "replace")
            if len(rest) == 40 and notes._ENTRY_RE.fullmatch(rest):
                out.add(rest)
    return out


def live_commits(repo: pygit2.Repository) -> set[str]:
    """Every commit a branch, tag, remote-tracking branch or HEAD reaches (what a rewrite leaves)."""
    args = ["rev-list", "--branches", "--tags", "--remotes"]
    if not repo.head_is_unborn:
        args.append("HEAD")
    return set(run_git(repo, args).split())


def find(repo: pygit2.Repository, reachability: bool = False) -> list[Orphan]:
    """Orphaned entries, oldest commit order aside: sorted by (kind, entry id).

    ``reachability`` also lists entries on commits that still exist but no branch reaches (one
    ``git rev-list`` over the history: for ``orphans``/``reattach``, not for every ``log``).
    """
    out: list[Orphan] = []
    live = live_commits(repo) if reachability else None
    for commit, lines in notes.walk(repo):
        shown = [n for n in lines if not n.removed]
        if not shown:
            continue
        if not has_commit(repo, commit):
            out += [Orphan(n.entry, commit, GONE, n) for n in shown]
        elif live is not None and commit not in live:
            out += [Orphan(n.entry, commit, UNREACHABLE, n) for n in shown]
    for eid, (commit, line) in unindexed(repo).items():
        out.append(Orphan(eid, commit, UNINDEXED, line))
    out.sort(key=lambda o: (o.kind, o.entry, o.commit))
    return out


def listed_ids(repo: pygit2.Repository) -> set[str]:
    """Every entry id some note line names (removed ones too), without parsing the lines."""
    out: set[str] = set()
    _, tree = notes._notes_tree(repo, NOTES_REF)
    if tree is None:
        return out
    for sha, (_, blob) in notes._flatten(repo, tree).items():
        out.update(notes._ENTRY_RE.findall(notes.note_text(repo, blob, sha) or ""))
    return out


def unindexed(repo: pygit2.Repository) -> dict[str, tuple[str, notes.NoteLine | None]]:
    """Entry refs no note lists: id -> (commit, line) last listed in the notes history ('', None: never).

    Named ones keep their version numbers (names.versions counts them), so ``git notes prune``
    after a rewrite cannot renumber a model.
    """
    extra = entry_refs(repo)
    if not extra:
        return {}
    extra -= listed_ids(repo)
    if not extra:
        return {}
    last = last_lines(repo, extra)
    return {e: last.get(e, ("", None)) for e in sorted(extra)}


def count(repo: pygit2.Repository) -> int:
    """How many entries are orphaned (gone commit or unindexed), from the query cache: one object
    lookup per annotated commit and one ref listing, for the warning under ``git tvault log``."""
    from tvault_git.registry import cache

    con = cache.refresh(repo)
    per_commit = dict(con.execute("SELECT commit_id, count(DISTINCT id) FROM entries GROUP BY commit_id").fetchall())
    ids = [r[0] for r in con.execute("SELECT DISTINCT id FROM entries")]
    return count_gone(repo, per_commit, ids)


def count_gone(repo: pygit2.Repository, per_commit: dict[str, int], ids: Iterable[str]) -> int:
    """Entries on a commit of ``per_commit`` (commit -> entries listed) that is gone, plus entry refs
    missing from ``ids`` (the listed entries). The notes are walked only when a ref looks unindexed
    (it may be a removed entry, which is not an orphan)."""
    n = sum(k for c, k in per_commit.items() if not has_commit(repo, c))
    extra = entry_refs(repo) - set(ids)
    if extra:
        for _, lines in notes.walk(repo):
            extra -= {x.entry for x in lines}
            if not extra:
                break
    return n + len(extra)


def last_lines(repo: pygit2.Repository, wanted: set[str]) -> dict[str, tuple[str, notes.NoteLine]]:
    """Per entry id, the commit and line that last listed it in the notes history (newest first,
    at most HISTORY_DEPTH notes commits), so a re-attached line keeps its ``published=`` and name."""
    found: dict[str, tuple[str, notes.NoteLine]] = {}
    try:
        ref = repo.references.get(NOTES_REF)
        tip = ref.peel(pygit2.Commit) if ref is not None else None
    except (ValueError, pygit2.GitError):
        tip = None
    if tip is None:
        return found
    seen: set[pygit2.Oid] = set()  # notes commits, and trees and blobs already read (history shares most)
    done: set[pygit2.Oid] = set()
    todo = [tip]
    while todo and len(seen) < HISTORY_DEPTH and len(found) < len(wanted):
        c = todo.pop(0)
        if c.id in seen:
            continue
        seen.add(c.id)
        stack: list[tuple[str, pygit2.Tree]] = [("", c.tree)]
        while stack:
            prefix, node = stack.pop()
            if node.id in done:
                continue
            done.add(node.id)
            for e in node:
                full = prefix + (e.name or "")
                if e.type == pygit2.enums.ObjectType.TREE and len(full) < 40:
                    stack.append((full, tree_of(repo, e.id)))
                elif e.type == pygit2.enums.ObjectType.BLOB and len(full) == 40 and e.id not in done:
                    done.add(e.id)
                    text = notes.note_text(repo, e.id, full) or ""
                    if any(w in text for w in wanted):
                        for n in notes.parse(text):
                            if n.entry in wanted and n.entry not in found and not n.removed:
                                found[n.entry] = (full, n)
        todo += list(c.parents)
    return found
