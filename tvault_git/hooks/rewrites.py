"""Re-attaching entries after a rewrite that ran without tvault's hooks (``git tvault reattach``).

The post-rewrite hook gets the (old, new) pairs from git and moves the note lines
(``notes.move``). Without the hook, the pairs have to be found again: this module
is that matching, and it applies the result the hook's way (``notes.move`` for
notes still on the old commit; one ``notes.add`` copying the last known line,
``published=`` included, for an entry whose note ``git notes prune`` deleted).

Matching, for an orphan listed on old commit O (registry/orphans.py), among the
commits a branch, tag, remote branch or HEAD reaches:
1. tree: a live commit with O's tree (O's own tree while O exists, else the
   manifest's ``commit_info.tree``): ``commit --amend`` of the message only, or a
   rebase that did not move the base;
2. author email, author time and subject (all kept by rebase and amend), or the
   same author and time with the same ``git patch-id`` while O exists (a reword);
3. the reflog: ``commit (amend)`` records old -> new (also an amend that changed
   the code and reset the author), followed until a live commit.
A match must be unique; anything else is listed as unmatched, never guessed.
Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pygit2

from tvault_git.errors import GitCommandError, TvaultError
from tvault_git.gitutil.run import run_git
from tvault_git.registry import entries, notes, orphans


@dataclass(frozen=True)
class Info:
    """What identifies a commit across a rewrite."""

    tree: str | None
    author: str | None
    time: int | None
    subject: str | None


@dataclass
class Plan:
    matched: list[tuple[orphans.Orphan, str, str]] = field(default_factory=list)  # (orphan, new commit, how)
    unmatched: list[tuple[orphans.Orphan, str]] = field(default_factory=list)  # (orphan, why not)


def _live_info(repo: pygit2.Repository) -> dict[str, Info]:
    """Every live commit's identifying fields, in one ``git log``."""
    args = ["log", "--branches", "--tags", "--remotes", "--format=%H%x00%T%x00%ae%x00%at%x00%s"]
    if not repo.head_is_unborn:
        args.append("HEAD")
    try:
        out = run_git(repo, args)
    except GitCommandError:
        return {}
    found: dict[str, Info] = {}
    for line in out.split("\n"):
        p = line.split("\x00")
        if len(p) == 5 and p[3].isdigit():
            found[p[0]] = Info(p[1], p[2], int(p[3]), p[4][:200])
    return found


def _info_of(repo: pygit2.Repository, o: orphans.Orphan) -> Info | None:
    """O's fields: from O itself while it exists, else from the manifest when O is its training commit."""
    if o.commit and orphans.has_commit(repo, o.commit):
        c = repo[o.commit]
        return Info(str(c.tree_id), c.author.email, int(c.author.time), c.message.split("\n", 1)[0][:200])
    try:
        m = entries.read_manifest(repo, o.entry)
    except TvaultError:
        return None
    ci: Any = m.get("commit_info")
    if not isinstance(ci, dict) or (o.commit and m.get("commit") != o.commit):
        return None
    t = ci.get("time")
    return Info(
        ci.get("tree") if isinstance(ci.get("tree"), str) else None,
        ci.get("author") if isinstance(ci.get("author"), str) else None,
        t if isinstance(t, int) and not isinstance(t, bool) else None,
        ci.get("subject") if isinstance(ci.get("subject"), str) else None,
    )


def _patch_id(repo: pygit2.Repository, commit: str) -> str | None:
    try:
        diff = run_git(repo, ["show", "--format=", "--no-color", commit])
        out = run_git(repo, ["patch-id", "--stable"], input=diff.encode())
    except GitCommandError:
        return None
    return out.split()[0] if out.split() else None


def _reflog_successors(repo: pygit2.Repository) -> dict[str, str]:
    """old -> new from every reflog's ``commit (amend)`` records."""
    nxt: dict[str, str] = {}
    for name in ["HEAD", *(r for r in repo.references if r.startswith("refs/heads/"))]:
        try:
            log = list(repo.references[name].log()) if name != "HEAD" else list(repo.head.log())
        except (KeyError, ValueError, pygit2.GitError):
            continue
        for e in log:
            if e.message.startswith("commit (amend)") and str(e.oid_old) != "0" * 40:
                nxt[str(e.oid_old)] = str(e.oid_new)
    return nxt


def _one(cands: list[str]) -> str | None:
    return cands[0] if len(cands) == 1 else None


def plan(repo: pygit2.Repository) -> Plan:
    """Match every orphan to a live commit (see the module docstring); nothing is written."""
    found = orphans.find(repo, reachability=True)
    out = Plan()
    if not found:
        return out
    live = _live_info(repo)
    by_tree: dict[str, list[str]] = {}
    by_who: dict[tuple[str | None, int | None], list[str]] = {}
    for sha, inf in live.items():
        by_tree.setdefault(inf.tree or "", []).append(sha)
        by_who.setdefault((inf.author, inf.time), []).append(sha)
    succ = _reflog_successors(repo)
    cache: dict[str, tuple[str | None, str]] = {}
    for o in found:
        if o.kind == orphans.UNINDEXED:  # its note was deleted, its commit may be fine
            if o.commit in live:
                out.matched.append((o, o.commit, "the commit it was listed on"))
                continue
            try:
                base = entries.read_manifest(repo, o.entry).get("commit")
            except TvaultError:
                base = None
            if not o.commit and isinstance(base, str) and base in live:
                out.matched.append((o, base, "its manifest's commit"))
                continue
        key = o.commit or o.entry
        if key not in cache:
            cache[key] = _match(repo, o, live, by_tree, by_who, succ)
        new, how = cache[key]
        if new is None:
            out.unmatched.append((o, how))
        else:
            out.matched.append((o, new, how))
    return out


def _match(
    repo: pygit2.Repository,
    o: orphans.Orphan,
    live: dict[str, Info],
    by_tree: dict[str, list[str]],
    by_who: dict[tuple[str | None, int | None], list[str]],
    succ: dict[str, str],
) -> tuple[str | None, str]:
    inf = _info_of(repo, o)
    if inf is not None and inf.tree:
        cands = [c for c in by_tree.get(inf.tree, []) if c != o.commit]
        if len(cands) > 1:  # the same code on several commits: the one the rebase kept
            cands = [c for c in cands if (live[c].author, live[c].time) == (inf.author, inf.time)]
        if _one(cands):
            return cands[0], "same tree"
    if inf is not None and inf.author is not None and inf.time is not None:
        same_who = [c for c in by_who.get((inf.author, inf.time), []) if c != o.commit]
        hit = _one([c for c in same_who if live[c].subject == inf.subject])
        if hit:
            return hit, "same author, date and message"
        if same_who and o.commit and orphans.has_commit(repo, o.commit):
            pid = _patch_id(repo, o.commit)
            hit = _one([c for c in same_who if pid is not None and _patch_id(repo, c) == pid])
            if hit:
                return hit, "same author, date and patch"
    cur, steps = o.commit, 0
    while cur in succ and steps < 100:
        cur, steps = succ[cur], steps + 1
        if cur in live:
            return cur, "the reflog (commit --amend)"
    if inf is None:
        return None, "nothing recorded about its commit (an entry from before commit_info) and no reflog record"
    return None, "no live commit has its tree, or its author, date and message, and no reflog record names it"


def apply(repo: pygit2.Repository, p: Plan) -> int:
    """Write the plan: notes on old commits move (one update), pruned lines are copied back; returns how many entries."""
    pairs = sorted({(o.commit, new) for o, new, _ in p.matched if o.kind != orphans.UNINDEXED})
    if pairs:
        notes.move(repo, pairs)
    for o, new, _ in p.matched:
        if o.kind != orphans.UNINDEXED:
            continue
        line = o.line
        if line is None:
            m = entries.read_manifest(repo, o.entry)
            res = m.get("result")
            name = m.get("name") if isinstance(m.get("name"), str) else None
            created = m.get("created") if isinstance(m.get("created"), str) else None
            notes.add(repo, new, o.entry, name, None if res is None else repr(float(res)), created=created)
        else:
            notes.add(
                repo,
                new,
                o.entry,
                line.name,
                line.result,
                created=line.created,
                display=line.display,
                published=line.published,
            )
    return len(p.matched)
