"""Code from a sibling git repository (``pip install -e ../mylib``): which commit of it ran.

Its source lies outside the training work tree, so it is not copied into the
entry; the library's own commit, whether its work tree had changes and how big
they were identify the code instead. A clean commit reproduces it; a dirty one
does not, and capture reports that as missing.
"""

from __future__ import annotations

import os
from typing import Any

import pygit2


def _state(git_dir: str, training_root: str) -> dict[str, Any] | None:
    try:
        r = pygit2.Repository(git_dir)
    except (pygit2.GitError, KeyError, ValueError):
        return None
    if r.is_bare or not r.workdir:
        return None
    root = os.path.realpath(r.workdir)
    if root == training_root:
        return None
    out: dict[str, Any] = {"path": os.path.relpath(root, training_root).replace(os.sep, "/")}
    try:
        head = None if r.head_is_unborn else r.head.peel(pygit2.Commit)
        out["commit"] = None if head is None else str(head.id)
        out["branch"] = None if r.head_is_unborn or r.head_is_detached else r.head.shorthand
        status = r.status()
        changed = [p for p, f in status.items() if f & ~pygit2.enums.FileStatus.IGNORED]
        untracked = [p for p, f in status.items() if f & pygit2.enums.FileStatus.WT_NEW]
        patch = head.tree.diff_to_workdir().patch if head is not None and len(changed) > len(untracked) else ""
        out["dirty"] = bool(changed)
        out["patch_bytes"] = len((patch or "").encode("utf-8", "replace"))
        out["untracked"] = len(untracked)
    except (pygit2.GitError, KeyError, ValueError, OSError):
        out.setdefault("commit", None)
        out["dirty"] = None  # unknown: treated as not reproducible
    return out


def library_of(path: str | None, training_root: str, cache: dict[str, Any]) -> dict[str, Any] | None:
    """The git state of the repository (other than the training one) that holds ``path``, or None.

    ``cache``: one per capture (a library may get a new commit between two ``log_all`` calls)."""
    if not path or not os.path.isfile(path):
        return None
    try:
        git_dir = pygit2.discover_repository(os.path.dirname(os.path.realpath(path)))
    except (pygit2.GitError, KeyError, ValueError):
        return None
    if git_dir is None:
        return None
    key = os.path.realpath(git_dir)
    if key not in cache:
        cache[key] = _state(key, os.path.realpath(training_root))
    return cache[key]


def describe(lib: dict[str, Any]) -> str:
    """``../mylib at 1a2b3c4d5e (dirty: 120 B patch, 1 untracked)``: for show, diff and warnings."""
    c = lib.get("commit")
    out = f"{lib.get('path')} at {c[:10] if isinstance(c, str) else 'no commit'}"
    if lib.get("dirty") is None:
        return out + " (state unknown)"
    if lib.get("dirty"):
        bits = [f"{lib.get('patch_bytes') or 0} B patch"]
        if lib.get("untracked"):
            bits.append(f"{lib['untracked']} untracked")
        out += f" (dirty: {', '.join(bits)})"
    return out
