"""Partial clones: fetching the objects a read needs from the promisor remote, in one batch.

A ``git clone --filter=blob:none`` holds commits and trees but not blobs; git fetches a missing
blob from the promisor remote the moment it needs it. libgit2 (our reader) never does: it just
reports the object missing. So every read path names the objects it is about to open and calls
``ensure_present`` first: the missing ones arrive in one ``git fetch`` (the command git's own
lazy fetch runs), and only those -- reading one tensor fetches that tensor's chunks, not the
model. Outside partial clones this costs one config lookup per call.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable

import pygit2

from tvault_git.errors import RemoteError
from tvault_git.gitutil.repo import common_dir, git_env
from tvault_git.textfmt import printable

_cache: dict[str, tuple[tuple[int, int], str | None]] = {}


def promisor_remote(repo: pygit2.Repository) -> str | None:
    """The remote git would fetch missing objects from: ``extensions.partialClone``, else the
    first ``remote.<name>.promisor=true``; None when the repository is not a partial clone.

    Every read asks, so the answer is kept while the repository's config file is unchanged.
    """
    path = os.path.join(common_dir(repo), "config")
    try:
        st = os.stat(path)
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = (0, 0)
    hit = _cache.get(path)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    name = _read_promisor(repo)
    _cache[path] = (stamp, name)
    return name


def _read_promisor(repo: pygit2.Repository) -> str | None:
    try:
        cfg = repo.config
        name = cfg["extensions.partialClone"] if "extensions.partialClone" in cfg else None  # noqa: SIM401 (no Config.get)
        if name:
            return str(name)
        for entry in cfg:
            key = entry.name
            if key.startswith("remote.") and key.endswith(".promisor") and _truthy(entry.value):
                return key[len("remote.") : -len(".promisor")]
    except (KeyError, ValueError, pygit2.GitError):
        return None
    return None


def _truthy(value: str | None) -> bool:
    return (value or "true").strip().lower() in ("true", "yes", "on", "1")


def _has(repo: pygit2.Repository, oid: str) -> bool:
    try:
        return repo.odb.exists(oid)
    except (ValueError, pygit2.GitError):
        return True  # not an object id: nothing to fetch, the read itself reports it


def missing_promised(repo: pygit2.Repository, oids: Iterable[str | pygit2.Oid]) -> list[str]:
    """The ids in ``oids`` absent here that the promisor remote can supply ([] outside partial clones)."""
    if promisor_remote(repo) is None:
        return []
    seen: dict[str, None] = {}
    for o in oids:
        s = str(o)
        if s not in seen and not _has(repo, s):
            seen[s] = None
    return list(seen)


def ensure_present(repo: pygit2.Repository, oids: Iterable[str | pygit2.Oid], what: str = "objects") -> int:
    """Fetch the ``oids`` that are missing here from the promisor remote, in one fetch; returns how many.

    Outside a partial clone (or when all are here) nothing happens, and a missing object is left
    for the caller's damaged-entry path. An unreachable remote is one RemoteError naming it and
    the number of objects, never a traceback. ``what``: what the objects are, for that message.
    """
    remote = promisor_remote(repo)
    if remote is None:
        return 0
    want = missing_promised(repo, oids)
    if not want:
        return 0
    args = [
        "git",
        "-c",
        "fetch.negotiationAlgorithm=noop",
        "fetch",
        remote,
        "--no-tags",
        "--no-write-fetch-head",
        "--recurse-submodules=no",
        "--filter=blob:none",
        "--stdin",
    ]
    try:
        p = subprocess.run(
            args,
            cwd=repo.workdir or repo.path,
            input="".join(f"{o}\n" for o in want).encode(),
            capture_output=True,
            env=git_env(repo, {"GIT_TERMINAL_PROMPT": "0"}),
        )
    except OSError as e:
        raise RemoteError(f"cannot fetch {len(want)} missing {what} from promisor remote '{remote}': {e}") from None
    if p.returncode != 0:
        lines = [ln.strip() for ln in p.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        k = next((k for k in range(len(lines) - 1, -1, -1) if lines[k].startswith("fatal:")), len(lines) - 1)
        why = " ".join(lines[k : k + 2]) if lines else "git fetch failed"  # "fatal: unable to connect to X:" + why
        raise RemoteError(
            f"cannot fetch {len(want)} missing {what} from promisor remote '{remote}' "
            f"(this is a partial clone): {printable(why)}; check that the remote is reachable and try again"
        )
    still = [o for o in want if not _has(repo, o)]
    if still:
        raise RemoteError(
            f"promisor remote '{remote}' did not send {len(still)} of {len(want)} missing {what} "
            f"(first {still[0][:12]}); the remote may have lost them"
        )
    return len(want)
