"""Aliases from Python (``git tvault alias`` for scripts and training callbacks)."""

from __future__ import annotations

from typing import Any

from tvault_git.api.read import _repo
from tvault_git.registry import names


def set_alias(name: str, ref: str, alias: str, repo: Any = None) -> str:
    """Point ``name@alias`` at the version ``ref`` names (an id, ``NAME@3``, ``HEAD:0``); returns the entry id."""
    return names.set_alias(_repo(repo), name, ref, alias).entry.id


def remove_alias(name: str, alias: str, repo: Any = None) -> None:
    """Drop ``name@alias`` (recorded as a removal, so it merges like any change); the entry stays."""
    names.remove_alias(_repo(repo), name, alias)


def aliases(name: str, repo: Any = None) -> dict[str, str]:
    """``name``'s stored aliases: alias -> entry id."""
    return names.aliases(_repo(repo), name)
