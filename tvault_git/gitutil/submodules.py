"""The uncommitted changes inside a superproject's submodules, as one patch.

The superproject's own diff of a dirty submodule is only ``Subproject commit X-dirty``: the code
that ran is not in it. A training job whose model lives in a submodule needs the submodule's
commit and its own tracked changes to be reproducible, so the entry's patch carries them too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import pygit2

from tvault_git.errors import GitCommandError
from tvault_git.gitutil.run import run_git

_CHANGED = ~(pygit2.enums.FileStatus.CURRENT | pygit2.enums.FileStatus.IGNORED | pygit2.enums.FileStatus.WT_NEW)


def submodule_patches(repo: pygit2.Repository, skip: Iterable[str] = ()) -> str:
    """For each initialised submodule with tracked changes in its work tree: a header line naming
    its path and HEAD commit, then its patch against that commit with superproject paths
    (``a/<sub>/file``), so ``show --patch`` reads as one change. ``skip``: superproject paths to
    leave out (files edited after they were imported). Nested submodules are followed."""
    if repo.is_bare or not repo.workdir:
        return ""
    try:
        paths = repo.listall_submodules()
    except pygit2.GitError:
        return ""
    skip = set(skip)
    parts: list[str] = []
    for path in sorted(paths):
        parts.append(_one(os.path.join(repo.workdir, path), path, skip))
    return "".join(parts)


def _one(workdir: str, prefix: str, skip: set[str]) -> str:
    try:
        sub = pygit2.Repository(workdir, pygit2.enums.RepositoryOpenFlag.NO_SEARCH)
    except pygit2.GitError:
        return ""  # not initialised (no work tree): nothing ran from it
    if sub.head_is_unborn or not sub.workdir:
        return ""
    changed = {p for p, f in sub.status(untracked_files="no").items() if f & _CHANGED}
    inner = _nested(sub, prefix, skip)
    if not changed and not inner:
        return ""
    head = str(sub.head.target)
    out = f"Submodule {prefix} {head} contains modified content\n"
    excludes = [f":(exclude){p[len(prefix) + 1 :]}" for p in skip if p.startswith(prefix + "/")]
    try:
        out += run_git(
            sub,
            [
                "diff",
                "HEAD",
                "--no-color",
                "--no-ext-diff",
                "--ignore-submodules=all",  # nested ones come next, in full
                f"--src-prefix=a/{prefix}/",
                f"--dst-prefix=b/{prefix}/",
                "--",
                ".",
                *excludes,
            ],
        )
    except GitCommandError as e:
        out += f"(the changes could not be read: {e})"
    return out.rstrip("\n") + "\n" + inner


def _nested(sub: pygit2.Repository, prefix: str, skip: set[str]) -> str:
    try:
        paths = sub.listall_submodules()
    except pygit2.GitError:
        return ""
    return "".join(_one(os.path.join(sub.workdir, p), f"{prefix}/{p}", skip) for p in sorted(paths))
