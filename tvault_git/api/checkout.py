"""``git tvault checkout REF [DIR]``: the exact code that trained an entry, on disk.

A linked worktree (``git worktree add --detach``) at the entry's training commit, with the
entry's dirty-tree patch applied, so ``git tvault diff REF`` run there shows no change in the
model's code. Why a worktree: it shares the object store and refs (the registry included) and
leaves the user's own checkout alone. A training commit that is not here is fetched from the
remotes that know the registry; if none has it, the error says which commit is missing.
Torch-free.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field

import pygit2

from tvault_git.errors import InvalidInput, RefNotFound, RemoteError, StorageError
from tvault_git.registry import entries
from tvault_git.spec.format import NAME_RE, PATCH


@dataclass
class CheckedOut:
    path: str
    commit: str
    entry: str
    label: str  # NAME@N, else the short id
    patched: bool
    fetched_from: str | None = None
    untracked: list[str] = field(default_factory=list)  # files present at training time, not recorded


def _label(repo: pygit2.Repository, e: entries.Entry) -> str:
    from tvault_git.registry import names

    name = e.manifest.get("name")
    if isinstance(name, str) and NAME_RE.match(name):
        try:
            for v in names.versions(repo, name):
                if v.entry.id == e.id:
                    return f"{name}@{v.number}"
        except RefNotFound:
            pass
    return e.id[:10]


def default_dir(repo: pygit2.Repository, label: str) -> str:
    """``../<repo>-<name>-v<N>`` beside the work tree (``../<repo>-<id>`` for unnamed entries)."""
    top = (repo.workdir or os.path.dirname(repo.path.rstrip("/"))).rstrip("/")
    name, _, ver = label.partition("@")
    suffix = f"{name}-v{ver}" if ver else name
    return os.path.join(os.path.dirname(top), f"{os.path.basename(top)}-{suffix}")


def _git(
    repo: pygit2.Repository, *args: str, cwd: str | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd or repo.workdir or repo.path, input=stdin, capture_output=True)


def _remotes(repo: pygit2.Repository) -> list[str]:
    """Remotes to ask for a missing training commit: the current branch's first, then the rest."""
    from tvault_git.share import sync

    names = list(repo.remotes.names())
    first = sync.default_remote(repo)
    return ([first] if first in names else []) + [n for n in names if n != first]


def _ensure_commit(repo: pygit2.Repository, commit: str, branch: str | None) -> str | None:
    """Make ``commit`` present, fetching it if needed; returns the remote it came from (None: was here)."""
    if repo.get(commit) is not None:
        return None
    tried = []
    for remote in _remotes(repo):
        tried.append(remote)
        for args in (["fetch", "-q", "--no-tags", remote, commit], ["fetch", "-q", "--no-tags", remote]):
            _git(repo, *args)
            if repo.get(commit) is not None:
                return remote
    where = f"remotes tried: {', '.join(tried)}" if tried else "this repository has no remotes"
    on = f" (it was on branch {branch})" if branch else ""
    raise RemoteError(
        f"the training commit {commit} is not in this repository{on}; {where}. "
        "Fetch the branch that holds it (git fetch REMOTE BRANCH) and run checkout again"
    )


def checkout(repo: pygit2.Repository, ref: str, path: str | None = None) -> CheckedOut:
    """Create the worktree for ``ref``; refuses to touch an existing path."""
    if repo.is_bare:
        raise InvalidInput("checkout needs a repository with a work tree (git worktree add)")
    e = entries.resolve(repo, ref)
    m = e.manifest
    commit = m.get("commit")
    if not isinstance(commit, str) or len(commit) != 40:
        raise InvalidInput(f"entry {e.short} records no training commit")
    label = _label(repo, e)
    dest = os.path.abspath(path or default_dir(repo, label))
    if os.path.lexists(dest):
        raise InvalidInput(
            f"{dest} already exists; checkout never overwrites anything: give another DIR (git tvault checkout {ref} DIR)"
        )
    fetched = _ensure_commit(repo, commit, m.get("branch"))
    p = _git(repo, "worktree", "add", "--detach", "-q", dest, commit)
    if p.returncode != 0:
        raise StorageError(f"git worktree add {dest} failed: {p.stderr.decode('utf-8', 'replace').strip()}")
    patched = False
    if m.get("dirty"):
        patch = entries.read_blob(repo, e.tree(), PATCH) or b""
        if patch.strip():
            p = _git(repo, "apply", "--whitespace=nowarn", "-", cwd=dest, stdin=patch)
            if p.returncode != 0:
                raise StorageError(
                    f"the worktree {dest} is at {commit[:10]}, but the entry's patch did not apply: "
                    f"{p.stderr.decode('utf-8', 'replace').strip()}"
                )
            patched = True
    untracked = [u for u in (m.get("untracked") or []) if isinstance(u, str)]
    return CheckedOut(dest, commit, e.id, label, patched, fetched, untracked)
