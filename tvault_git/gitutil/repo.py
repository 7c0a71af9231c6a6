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

from tvault_git.errors import NoCommits, NotARepository, StorageError, TvaultError
from tvault_git.spec.format import BLOB_DIR

T = TypeVar("T")

_ATTR_LINE = f"{BLOB_DIR}/** -delta -diff"
_configured: set[str] = set()


def open_repo(path: str | os.PathLike | None = None) -> pygit2.Repository:
    """The repository git itself would use: ``path`` (a work tree or git dir, searched
    upwards), else ``GIT_DIR``/``GIT_WORK_TREE`` as git reads them (so ``git
    --git-dir=A --work-tree=B tvault`` works), else the one around the current directory."""
    env_dir = os.environ.get("GIT_DIR") if path is None else None
    if env_dir:
        git_dir = os.path.abspath(env_dir)
        try:
            repo = pygit2.Repository(git_dir, pygit2.enums.RepositoryOpenFlag.NO_SEARCH)
        except pygit2.GitError as e:
            raise NotARepository(
                f"GIT_DIR={env_dir!r} is not a git repository ({e}); unset GIT_DIR or fix it"
            ) from None
        work = os.environ.get("GIT_WORK_TREE")
        if work:
            repo.workdir = os.path.abspath(work)
        return repo
    start = os.fspath(path) if path is not None else os.getcwd()
    try:
        found = pygit2.discover_repository(start)
    except pygit2.GitError as e:
        raise NotARepository(f"cannot open {start!r}: {e}") from None
    if found is None:
        raise NotARepository(f"not inside a git repository: {start} (run 'git init' first, or pass repo=PATH)")
    return pygit2.Repository(found)


def common_dir(repo: pygit2.Repository) -> str:
    """The git dir shared by all work trees: objects, refs and tvault's own files live there.

    A linked work tree (``git worktree add``) has its own git dir under
    ``.git/worktrees/<name>`` naming the common one in its ``commondir`` file;
    git reads objects only from the common dir, so every path starts here.
    """
    path = repo.path
    try:
        with open(os.path.join(path, "commondir")) as f:
            rel = f.read().strip()
    except OSError:
        return os.path.normpath(path)
    return os.path.normpath(os.path.join(path, rel))


def pack_dir(repo: pygit2.Repository) -> str:
    """``objects/pack`` of the common git dir (``GIT_OBJECT_DIRECTORY`` when set, as git does)."""
    objects = os.environ.get("GIT_OBJECT_DIRECTORY") or os.path.join(common_dir(repo), "objects")
    return os.path.join(objects, "pack")


def tvault_dir(repo: pygit2.Repository, create: bool = False) -> str:
    """``<common git dir>/tvault``: the query cache and tvault's lock files."""
    path = os.path.join(common_dir(repo), "tvault")
    if create and not os.path.isdir(path):
        os.makedirs(path, exist_ok=True)
        adjust_shared_perm(repo, path)
    return path


def shared_mode(repo: pygit2.Repository) -> int:
    """The permission bits ``core.sharedRepository`` asks for (0: the umask decides), as git reads it."""
    try:
        v = str(repo.config["core.sharedRepository"]).strip().lower()
    except (KeyError, ValueError, pygit2.GitError):
        return 0
    if v in ("", "umask", "false", "no", "off", "0"):
        return 0
    if v in ("group", "true", "yes", "on", "1"):
        return 0o660
    if v in ("all", "world", "everybody", "2"):
        return 0o664
    try:
        return int(v, 8) & 0o666 if v.startswith("0") else 0
    except ValueError:
        return 0


def adjust_shared_perm(repo: pygit2.Repository, path: str) -> None:
    """Give a file or directory tvault created the modes git's ``adjust_shared_perm`` would."""
    mode = shared_mode(repo)
    if not mode:
        return
    try:
        st = os.stat(path)
        old = st.st_mode & 0o7777
        if os.path.isdir(path):
            new = old | mode | ((mode & 0o444) >> 2) | 0o2000  # x where r; setgid keeps the group
        else:
            new = old | (mode & (0o666 if old & 0o200 else 0o444))
        if new != old:
            os.chmod(path, new)
    except OSError:
        pass  # not ours to change: git would fail the same way


class shared_umask:
    """While tvault (and libgit2 inside it) writes, create files the group can write, as git does.

    libgit2 does not apply ``core.sharedRepository`` to the loose objects'
    fan-out directories and ref files it makes; a group-writable umask for
    the duration of the write gives them git's modes.
    """

    def __init__(self, repo: pygit2.Repository) -> None:
        mode = shared_mode(repo)
        self.mask = (0o777 & ~(mode | ((mode & 0o444) >> 2))) if mode else None
        self.old: int | None = None

    def __enter__(self) -> shared_umask:
        if self.mask is not None:
            self.old = os.umask(0)
            os.umask(self.old & self.mask)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.old is not None:
            os.umask(self.old)


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
    info = os.path.join(common_dir(repo), "info")
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
            if "Permission denied" in msg or "permission denied" in msg:
                raise StorageError(
                    f"could not update {what}: {msg}; ask whoever owns the file for group write access "
                    "(git config core.sharedRepository group)"
                ) from None
            if repo is not None and _clear_stale_lock(common_dir(repo), msg):
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


GC_PID_MAX_AGE_S = 12 * 3600  # git ignores a gc.pid this old


class gc_lock:
    """Hold git's own gc lock (``gc.pid``, as ``lock_repo_for_gc`` in builtin/gc.c takes it).

    ``git gc`` lists every pack at its start and opens each index later; a
    pack deleted in between makes it die "unable to add recent objects". So
    tvault deletes packs (merging, reclaiming) only while it holds the lock a
    running gc holds: a gc that is running makes ``acquired`` False (try again
    later), and one starting meanwhile waits for us as it would for another gc
    (``--auto``: skipped quietly).
    """

    def __init__(self, repo: pygit2.Repository) -> None:
        self.path = os.path.join(common_dir(repo), "gc.pid")
        self.mine = f"{os.getpid()} {socket.gethostname()}"
        self.acquired = False

    def _running(self) -> bool:
        try:
            st = os.stat(self.path)
            with open(self.path) as f:
                pid_s, _, host = f.read().strip().partition(" ")
        except (OSError, ValueError):
            return False
        if time.time() - st.st_mtime > GC_PID_MAX_AGE_S:
            return False
        if host != socket.gethostname():
            return True
        try:
            os.kill(int(pid_s), 0)
        except PermissionError:
            return True
        except (OSError, ValueError):
            return False
        return True

    def __enter__(self) -> gc_lock:
        lock = self.path + ".lock"
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError:
            return self  # a gc is taking the lock right now
        try:
            if self._running():
                return self
            os.write(fd, self.mine.encode())
            os.close(fd)
            fd = -1
            os.replace(lock, self.path)
            self.acquired = True
            return self
        finally:
            if fd != -1:
                os.close(fd)
                os.unlink(lock)

    def __exit__(self, *exc: object) -> None:
        if not self.acquired:
            return
        try:
            with open(self.path) as f:
                if f.read().strip() == self.mine:
                    os.unlink(self.path)
        except OSError:
            pass
