"""The original ``tvault`` package's Python functions, forwarded to tvault-git (see ``tvault/``).

Seed scripts call ``tvault.log_all(model, tags=..., result=acc.item(), optimizer=...)``, sometimes
with ``log_dir=``/``model_dir=``; those keywords named the seed's pickle folder and the folder it
scanned for source, and mean nothing here (entries are git objects, source is found from the
model's classes), so they are accepted and ignored with one warning. The seed's ``result=-1``
default meant "no result". Its functions that edited an already logged record (``add_tag``,
``add_result``, ``log_optimizer``, ``log_scheduler``) cannot work on immutable entries: they say
which ``log_all`` keyword to use instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from tvault_git.errors import InvalidInput, TvaultError

TorchVaultError = TvaultError  # the seed's exception name

_SEED_DEFAULTS = {"log_dir": "./model_log", "model_dir": "./"}
_warned = False


def _ignore_seed_keywords(kw: dict[str, Any]) -> None:
    """Warn once per process when a seed-only keyword is given a non-default value."""
    global _warned
    given = [k for k in _SEED_DEFAULTS if k in kw]
    for k in given:
        kw.pop(k)
    if given and not _warned:
        _warned = True
        warnings.warn(
            f"tvault: {', '.join(given)} ignored: tvault-git keeps entries in the git repository (see 'git tvault log')",
            stacklevel=3,
        )


def log_all(
    model: Any, tags: Mapping[str, Any] | None = None, result: Any = -1, optimizer: Any = None, **kw: Any
) -> Any:
    """The seed's ``log_all``; further tvault-git keywords (``name=``, ``metrics=``, ``message=``) pass through."""
    from tvault_git.api.log import log_all as _log_all

    _ignore_seed_keywords(kw)
    if type(result) is int and result == -1:  # the seed's "no result" default (it tested `is not -1`)
        result = None
    return _log_all(model, tags=dict(tags or {}), result=result, optimizer=optimizer, **kw)


def log(model: Any, **kw: Any) -> Any:
    """The seed's ``log(model)``: an entry with the model alone."""
    return log_all(model, **kw)


def _immutable(what: str, instead: str) -> None:
    raise InvalidInput(
        f"tvault.{what} edited the last logged record; tvault-git entries are immutable: pass {instead} to tvault.log_all"
    )


def log_optimizer(optimizer: Any, **kw: Any) -> None:
    _immutable("log_optimizer", "optimizer=")


def log_scheduler(scheduler: Any, **kw: Any) -> None:
    _immutable("log_scheduler", "scheduler=")


def add_tag(tag_type: str = "", tag: Any = "", sha: str = "", **kw: Any) -> None:
    _immutable("add_tag", "tags={...}")


def add_result(result: Any = 0, sha: str = "", **kw: Any) -> None:
    _immutable("add_result", "result=")


def _run(args: list[str]) -> None:
    """Run a ``git tvault`` command in-process, printing what it prints; errors raise."""
    from tvault_git.cli.app import cli

    try:
        cli.main(args=args, prog_name="git tvault", standalone_mode=False)
    except SystemExit as e:  # --exit-code style exits
        if e.code not in (0, None):
            raise


def diff_f(sha1: str = "", index1: int = -1, sha2: str = "", index2: int = -1, **kw: Any) -> None:
    """The seed's ``diff_f``: print the diff of ``sha1:index1`` and ``sha2:index2`` (index -1: the last)."""
    _ignore_seed_keywords(kw)
    kw.pop("ask_gpt", None)
    kw.pop("out", None)
    from tvault_git.gitutil.repo import open_repo
    from tvault_git.registry.entries import entries_on, resolve_commit

    def ref(sha: str, index: int) -> str:
        if not sha:
            raise InvalidInput("tvault.diff_f needs sha1= and sha2= (training commits)")
        if index == -1:
            n = len(entries_on(open_repo(), resolve_commit(open_repo(), sha)))
            index = max(n - 1, 0)
        return f"{sha}:{index}"

    _run(["diff", "--no-pager", ref(sha1, index1), ref(sha2, index2)])


diff = diff_f


def find_f(
    condition: str = "hash", hash: str = "", tag_type: str = "", tag: Any = "", min: Any = 0, max: Any = 100, **kw: Any
) -> None:
    """The seed's ``find_f``: print the entries matching one condition (hash, result or tag)."""
    _ignore_seed_keywords(kw)
    if condition == "hash":
        args = ["find", "--hash", hash or "HEAD"]
    elif condition == "result":
        args = ["find", "--min", str(min), "--max", str(max)]
    elif condition == "tag":
        args = ["find", "--tag", str(tag_type), str(tag)]
    else:
        raise InvalidInput(f"condition {condition!r} is not one of hash, result, tag")
    _run(args)


find = find_f
