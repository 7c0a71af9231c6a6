"""Running the ``git`` CLI: one environment policy and one error for every subprocess.

Output that tvault parses (error messages it classifies, porcelain it reads) must not depend on
the user's UI language, so git runs with ``LC_ALL=C`` and an empty ``LANGUAGE`` (gettext reads
``LANGUAGE`` before ``LC_ALL`` for messages). Without a terminal on stdin nobody can answer a
password prompt, so git fails instead of hanging (``GIT_TERMINAL_PROMPT=0``).
"""

from __future__ import annotations

import os
import subprocess
import sys

from tvault_git.errors import GitCommandError


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a git subprocess whose output is parsed."""
    env = {**os.environ, **(extra or {}), "LC_ALL": "C", "LANGUAGE": ""}
    if not sys.stdin.isatty():
        env.setdefault("GIT_TERMINAL_PROMPT", "0")
    return env


def run_git(args: list[str], *, cwd: str, input: bytes | None = None, env: dict[str, str] | None = None) -> str:
    """``git <args>`` in ``cwd``; its stdout (stripped). GitCommandError with git's stderr on failure."""
    p = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True, env=git_env(env))
    if p.returncode != 0:
        err = p.stderr.decode("utf-8", "replace").strip()
        raise GitCommandError(f"git {args[0]} failed: {err}", args=tuple(args), returncode=p.returncode, stderr=err)
    return p.stdout.decode("utf-8", "replace").strip()
