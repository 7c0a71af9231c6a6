"""Running the ``git`` CLI for a repository: one call, one error (``GitCommandError``).

The environment is ``git_env(repo)``: git acts on ``repo`` and no other, and speaks the C locale,
because tvault reads what it prints.
"""

from __future__ import annotations

import subprocess

import pygit2

from tvault_git.errors import GitCommandError
from tvault_git.gitutil.repo import git_env


def run_git(
    repo: pygit2.Repository, args: list[str], *, input: bytes | None = None, env: dict[str, str] | None = None
) -> str:
    """``git <args>`` on ``repo``; its stdout (stripped). GitCommandError with git's stderr on failure."""
    p = subprocess.run(
        ["git", *args], cwd=repo.workdir or repo.path, input=input, capture_output=True, env=git_env(repo, env)
    )
    if p.returncode != 0:
        err = p.stderr.decode("utf-8", "replace").strip()
        raise GitCommandError(f"git {args[0]} failed: {err}", args=tuple(args), returncode=p.returncode, stderr=err)
    return p.stdout.decode("utf-8", "replace").strip()
