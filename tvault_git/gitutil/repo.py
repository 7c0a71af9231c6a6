"""Opening the user's repository, the git config the registry relies on, and safe (compare-and-swap) ref updates."""

from __future__ import annotations

import getpass
import os
import re
import socket
import time
from collections.abc import Callable
from typing import TypeVar

import pygit2

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: stale locks are left to the user
    fcntl = None  # type: ignore[assignment]

from tvault_git.errors import NoCommits, NotARepository, TvaultError
from tvault_git.spec.format import BLOB_DIR

T = TypeVar("T")

_ATTR_LINE = f"{BLOB_DIR}/** -delta -diff"
_configured: set[str] = set()


def open_repo(path: str | os.PathLike | None = None) -> pygit2.Repository:
    """Discover the repository containing ``path`` (default: the current directory)."""
    start = os.fspath(path) if path is not None else os.getcwd()
    try:
        found = pygit2.discover_repository(start)
    except pygit2.GitError as e:
        raise NotARepository(f"cannot open {start!r}: {e}") from None
    if found is None:
        raise NotARepository(f"not inside a git repository: {start} (run 'git init' first, or pass repo=PATH)")
    return pygit2.Repository(found)


def head_commit(repo: pygit2.Repository) -> pygit2.Commit:
    if repo.head_is_unborn:
        raise NoCommits("the repository has no commits yet; commit your training code first (git commit)")
    return repo.head.peel(pygit2.Commit)


def signature(repo: pygit2.Repository) -> pygit2.Signature:
    """The git identity as git resolves it (GIT_AUTHOR_* first, then config);
    falls back to user@host so that logging never fails on it."""
    env_name, env_email = os.environ.get("GIT_AUTHOR_NAME"), os.environ.get("GIT_AUTHOR_EMAIL")
    try:
        sig = repo.default_signature
        name, email = sig.name, sig.email
    except (KeyError, pygit2.GitError):
        name = getpass.getuser() if hasattr(os, "getuid") else "unknown"
        email = f"{name}@{socket.gethostname()}"
    return pygit2.Signature(env_name or name, env_email or email)


def ensure_config(repo: pygit2.Repository) -> None:
    """Keep ``git gc`` and ``git push`` from delta-searching weight blobs.

    Weight chunks live under ``tvault-blobs/`` in entry trees; ``-delta`` tells
    pack-objects not to try deltas there (which on floats is slow and useless).
    The packs we write carry ``.keep`` files, so repacking does not recompress.
    """
    if repo.path in _configured:
        return
    info = os.path.join(repo.path, "info")
    attrs = os.path.join(info, "attributes")
    try:
        existing = open(attrs).read() if os.path.exists(attrs) else ""
        if _ATTR_LINE not in existing.splitlines():
            os.makedirs(info, exist_ok=True)
            with open(attrs, "a") as f:
                if existing and not existing.endswith("\n"):
                    f.write("\n")
                f.write(_ATTR_LINE + "\n")
    except OSError:
        pass  # read-only repo: reading still works, only gc speed suffers
    _configured.add(repo.path)


def retry_locked(fn: Callable[[], T], what: str, timeout: float = 60.0, repo: pygit2.Repository | None = None) -> T:
    """Run a compare-and-swap step again while another process holds the lock or won the race.

    With ``repo``, a ref lock that a killed writer left behind is removed once
    it is ``STALE_LOCK_S`` old (see ``_clear_stale_lock``), so an OOM kill or a
    preempted job in the middle of ``log_all`` does not block the next one.
    """
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        try:
            return fn()
        except (pygit2.GitError, _Conflict) as e:
            msg = str(e)
            if (
                not isinstance(e, _Conflict)
                and "lock" not in msg
                and "tip is not the first parent" not in msg
                and "already exists" not in msg
                and "modified" not in msg
            ):
                raise
            if repo is not None and _clear_stale_lock(repo.path, msg):
                continue
            if time.monotonic() > deadline:
                raise TvaultError(
                    f"could not update {what} for {timeout:.0f}s: {msg}; if no other git process is running, delete the .lock file it names"
                ) from None
            time.sleep(delay)
            delay = min(delay * 1.7, 0.1)


STALE_LOCK_S = 5.0
_LOCK_PATH = re.compile(r"'([^']+\.lock)'")


def _clear_stale_lock(git_dir: str, msg: str) -> bool:
    """Remove the ``*.lock`` file named in ``msg`` if it is inside ``git_dir`` and stale; True if removed.

    git and libgit2 hold a ref lock for the milliseconds of one update, so a
    lock older than ``STALE_LOCK_S`` has no live owner. Removers serialize on
    an ``flock`` (released by the kernel even if we die), so two of them can
    never both see the stale file and then delete a fresh lock taken between.
    """
    m = _LOCK_PATH.search(msg)
    if m is None or fcntl is None:
        return False
    path = os.path.realpath(m.group(1))
    root = os.path.realpath(git_dir)
    if not path.startswith(root + os.sep):
        return False
    try:
        os.makedirs(os.path.join(root, "tvault"), exist_ok=True)
        with open(os.path.join(root, "tvault", "stale-locks"), "a") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            try:
                if time.time() - os.stat(path).st_mtime < STALE_LOCK_S:
                    return False
                os.unlink(path)
            except FileNotFoundError:
                return True  # gone already: retry at once
            return True
    except OSError:
        return False


class _Conflict(Exception):
    """Raised inside a retry_locked step to ask for another round."""


Conflict = _Conflict


def merge_history(
    repo: pygit2.Repository,
    ref: str,
    theirs: pygit2.Commit,
    merged_tree: Callable[[pygit2.Commit], pygit2.Oid],
    what: str,
) -> bool:
    """Bring another history of ``ref`` (a remote's notes or aliases) in; True when ``ref`` moved.

    Creates the ref, or fast-forwards it, when that loses nothing; otherwise
    commits ``merged_tree(ours)`` with parents (ours, theirs). Compare-and-swap,
    retried while another writer moves the ref.
    """
    sig = signature(repo)
    moved = [False]

    def step() -> None:
        try:
            r = repo.references.get(ref)
        except pygit2.GitError:
            r = None
        try:
            if r is None:
                repo.references.create(ref, theirs.id, force=False)
                moved[0] = True
                return
            ours = r.peel(pygit2.Commit)
            if ours.id == theirs.id or repo.descendant_of(ours.id, theirs.id):
                return
            if repo.descendant_of(theirs.id, ours.id):
                r.set_target(theirs.id, message=f"tvault: fast-forward {what}")
                moved[0] = True
                return
            repo.create_commit(ref, sig, sig, f"tvault: merge {what}\n", merged_tree(ours), [ours.id, theirs.id])
            moved[0] = True
        except (pygit2.GitError, OSError) as e:  # another writer moved the ref: start over
            raise Conflict(str(e)) from None

    retry_locked(step, ref, repo=repo)
    return moved[0]


def commit_to_ref(
    repo: pygit2.Repository, ref: str, message: str, tree: pygit2.Oid, parent: pygit2.Oid | None
) -> pygit2.Oid:
    """Commit ``tree`` onto ``ref`` as a compare-and-swap from ``parent`` (None: the ref must not exist yet).

    libgit2 checks an existing tip against the first parent, but creates a
    missing ref with force: two writers starting the same ref would both
    "win" and one entry line would be lost. A new ref is therefore created
    with force=False. Raises Conflict (retry_locked starts over) on any race.
    """
    sig = signature(repo)
    try:
        if parent is not None:
            return repo.create_commit(ref, sig, sig, message, tree, [parent])
        oid = repo.create_commit(None, sig, sig, message, tree, [])
        repo.references.create(ref, oid, force=False)
        return oid
    except (pygit2.GitError, OSError) as e:  # lost the race, or the ref is locked
        raise Conflict(str(e)) from None
