"""Opening the user's repository, the git config the registry relies on, and safe (compare-and-swap) ref updates."""

from __future__ import annotations

import contextlib
import datetime
import functools
import getpass
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import pygit2

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: stale locks are left to the user
    fcntl = None  # type: ignore[assignment]

from tvault_git.errors import CorruptEntry, LockTimeout, NoCommits, NotARepository, StorageError, TvaultError
from tvault_git.spec.format import BLOB_DIR

T = TypeVar("T")
_O = TypeVar("_O")

_ATTR_LINE = f"{BLOB_DIR}/** -delta -diff"
_configured: set[str] = set()


#: What ``repo=`` accepts across the public API: an open repository, a path inside one, or None (the cwd).
RepoLike = str | os.PathLike[str] | pygit2.Repository | None


def open_repo_like(repo: RepoLike) -> pygit2.Repository:
    """The repository for a ``repo=`` argument: an open one as is, else ``open_repo(path)``."""
    return repo if isinstance(repo, pygit2.Repository) else open_repo(repo)


def open_repo(path: str | os.PathLike[str] | None = None) -> pygit2.Repository:
    """The repository git itself would use: ``GIT_DIR``/``GIT_WORK_TREE`` first, else discovery.

    Why: ``git --git-dir=A --work-tree=B tvault ...`` and hook environments pass the repository
    in ``GIT_DIR`` (git sets it for its subcommands); ignoring it split one job across two repos
    (our objects in the repo around the cwd, git's fetches in ``GIT_DIR``). With ``path`` (``-C``,
    ``repo=``) discovery starts there, honouring ``GIT_CEILING_DIRECTORIES`` and
    ``GIT_DISCOVERY_ACROSS_FILESYSTEM`` as git does.
    """
    env_dir = os.environ.get("GIT_DIR")
    if path is None and env_dir:
        return _open_git_dir(os.path.abspath(env_dir), os.environ.get("GIT_WORK_TREE"))
    start = os.fspath(path) if path is not None else os.getcwd()
    across = os.environ.get("GIT_DISCOVERY_ACROSS_FILESYSTEM", "").lower() in ("1", "true", "yes", "on")
    ceiling = os.environ.get("GIT_CEILING_DIRECTORIES")
    try:
        if ceiling:
            found = pygit2.discover_repository(start, across, ceiling)
        else:
            found = pygit2.discover_repository(start, across)
    except pygit2.GitError as e:
        raise NotARepository(f"cannot open {start!r}: {e}") from None
    if found is None:
        raise NotARepository(f"not inside a git repository: {start} (run 'git init' first, or pass repo=PATH)")
    return pygit2.Repository(found)


def _open_git_dir(git_dir: str, work_tree: str | None) -> pygit2.Repository:
    """Open ``GIT_DIR`` with the work tree git would give it (``GIT_WORK_TREE``, core.worktree, else the cwd)."""
    try:
        repo = pygit2.Repository(git_dir, pygit2.enums.RepositoryOpenFlag.NO_SEARCH)
    except pygit2.GitError as e:
        raise NotARepository(f"GIT_DIR={git_dir} is not a git repository: {e}") from None
    if work_tree:
        repo.workdir = os.path.abspath(work_tree)
    elif not repo.is_bare and "core.worktree" not in repo.config and os.path.basename(git_dir.rstrip("/")) != ".git":
        # git: GIT_DIR without GIT_WORK_TREE or core.worktree -> the cwd is the top of the work tree
        repo.workdir = os.getcwd()
    return repo


def common_dir(repo: pygit2.Repository) -> str:
    """The git dir that holds objects and refs: a linked worktree's ``commondir``, else ``repo.path``.

    Every path tvault writes (packs, its cache, info/attributes, locks) is built from this: a
    pack under ``.git/worktrees/<name>/objects`` is one git never reads.
    """
    path = repo.path
    try:
        with open(os.path.join(path, "commondir")) as f:
            rel = f.read().strip()
        return os.path.normpath(os.path.join(path, rel))
    except OSError:
        return os.path.normpath(path)


def pack_dir(repo: pygit2.Repository) -> str:
    """``objects/pack`` of the common git dir."""
    return os.path.join(common_dir(repo), "objects", "pack")


def tvault_dir(repo: pygit2.Repository) -> str:
    """``tvault/`` in the common git dir: the derived cache and tvault's guard files."""
    return os.path.join(common_dir(repo), "tvault")


def git_env(repo: pygit2.Repository, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a git subprocess that must act on ``repo`` and no other.

    An inherited ``GIT_DIR`` (a hook, ``git --git-dir``) would otherwise win over the cwd we
    pass, and a ``repo=`` argument would act on one repository while git acts on another.
    tvault reads git's messages (errors it classifies, porcelain), so they must not depend on the
    user's UI language: ``LC_ALL=C`` and an empty ``LANGUAGE`` (gettext reads ``LANGUAGE`` first).
    """
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR")}
    env["GIT_DIR"] = repo.path
    if repo.workdir:
        env["GIT_WORK_TREE"] = repo.workdir
    env.update(extra or {})
    env["LC_ALL"], env["LANGUAGE"] = "C", ""
    return env


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
    common = common_dir(repo)
    if common in _configured:
        return
    info = os.path.join(common, "info")
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
    _configured.add(common)


def retry_locked(fn: Callable[[], T], what: str, timeout: float = 60.0, repo: pygit2.Repository | None = None) -> T:
    """Run a compare-and-swap step again while another process holds the lock or won the race.

    A step asks for another round by raising ``Conflict`` (``commit_to_ref`` and ``merge_history``
    do, after checking that the ref really moved or is locked) or when libgit2 reports an existing
    ref (``pygit2.AlreadyExistsError``); any other error propagates. Nothing here reads libgit2's
    English messages. With ``repo``, a ref lock that a killed writer left behind is removed once it
    is ``STALE_LOCK_S`` old (see ``_clear_stale_lock``), so an OOM kill or a preempted job in the
    middle of ``log_all`` does not block the next one.
    """
    deadline = time.monotonic() + timeout
    delay = 0.002
    unexplained = 0
    object_failures = 0
    while True:
        lock: str | None = None
        try:
            if repo is None:
                return fn()
            with shared_umask(repo):
                return fn()
        except _Conflict as e:
            lock, why = e.lock, str(e)
            unexplained = unexplained + 1 if e.unexplained is not None else 0
            if e.unexplained is not None and unexplained > _UNEXPLAINED_TRIES:
                raise e.unexplained from None  # the same failure with no other writer in sight: real
        except pygit2.AlreadyExistsError as e:  # another writer created the ref first: go again
            why = str(e)
        except (pygit2.GitError, OSError) as e:
            denied = permission_problem(repo, what, str(e))
            if denied is not None:
                raise denied from None
            # a step writes loose objects too: a concurrent prune's rmdir of an empty fan-out
            # directory fails one of them (retry_object_writes); a real failure repeats and is raised
            object_failures += 1
            if object_failures >= OBJECT_WRITE_TRIES:
                raise
            why = str(e)
        if repo is not None and lock is not None and _clear_stale_lock(common_dir(repo), lock, repo.path):
            continue
        if time.monotonic() > deadline:
            held = f"; if no other git process is running, delete {lock}" if lock else ""
            raise LockTimeout(f"could not update {what} for {timeout:.0f}s: {why}{held}", ref=what) from None
        time.sleep(delay)
        delay = min(delay * 1.7, 0.1)


STALE_LOCK_S = 5.0
_UNEXPLAINED_TRIES = 8
OBJECT_WRITE_TRIES = 5


def retry_object_writes(fn: Callable[[], T]) -> T:
    """Run ``fn`` (writes of loose objects, which are content-addressed: running it again is
    harmless) again when libgit2 fails to write an object, up to ``OBJECT_WRITE_TRIES`` times.

    Why: ``git prune`` (inside ``git gc``) and ``git prune-packed`` (``repack -d``) rmdir every empty
    fan-out directory ``objects/xx``. libgit2 creates that directory, writes its temporary file and
    renames it in; a prune in between makes the write fail ("failed to rename lockfile ... No such
    file or directory"), which a second try, recreating the directory, does not meet again. The
    error is never read: a real failure (disk full) fails every try and is raised as it was.
    """
    delay = 0.002
    for _ in range(OBJECT_WRITE_TRIES - 1):
        try:
            return fn()
        except (pygit2.GitError, OSError):
            time.sleep(delay)
            delay *= 3
    return fn()  # the last try: its error is the caller's


def _clear_stale_lock(git_dir: str, lock: str, own_dir: str | None = None) -> bool:
    """Remove the ``*.lock`` file ``lock`` if it is inside ``git_dir`` (the common dir) or
    ``own_dir`` (a linked worktree's) and stale; True if removed.

    git and libgit2 hold a ref lock for the milliseconds of one update, so a
    lock older than ``STALE_LOCK_S`` has no live owner. Removers serialize on
    an ``flock`` (released by the kernel even if we die), so two of them can
    never both see the stale file and then delete a fresh lock taken between.
    """
    if fcntl is None:
        return False
    path = os.path.realpath(lock)
    root = os.path.realpath(git_dir)
    roots = [root] + ([os.path.realpath(own_dir)] if own_dir else [])
    if not any(path.startswith(r + os.sep) for r in roots):
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
    """Raised inside a retry_locked step to ask for another round; ``lock``: the ref's lock file, if held."""

    def __init__(self, message: str, lock: str | None = None, unexplained: Exception | None = None) -> None:
        super().__init__(message)
        self.lock = lock
        self.unexplained = unexplained  # a libgit2 error with no sign of another writer (see _race)


Conflict = _Conflict


def ref_tip(repo: pygit2.Repository, ref: str) -> pygit2.Commit | None:
    """The commit ``ref`` points at; None when it does not exist (or cannot be read).

    A ref that points at something other than a commit (a damaged or hostile remote copied with a
    plain ``git fetch``) is a one-line CorruptEntry, never a traceback.
    """
    try:
        r = repo.references.get(ref)
    except pygit2.GitError:
        return None
    if r is None:
        return None
    try:
        return r.peel(pygit2.Commit)
    except (ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        raise CorruptEntry(
            f"{ref} does not point at a commit; delete it with 'git update-ref -d {ref}' and pull again"
        ) from None


def _race(repo: pygit2.Repository, ref: str, expected: pygit2.Oid | None, e: Exception) -> _Conflict:
    """A Conflict for a failed ref update, decided from the repository, not from libgit2's text:
    another writer holds the ref's lock file, or moved the ref away from ``expected``. Without either
    sign it is ``unexplained``: a writer that took the lock and gave up (its own parent was stale)
    leaves no trace, so retry_locked retries those a few times and then raises ``e`` itself."""
    lock = os.path.join(common_dir(repo), *ref.split("/")) + ".lock"
    if os.path.exists(lock):
        return _Conflict(str(e), lock)
    if isinstance(e, pygit2.AlreadyExistsError) or getattr(ref_tip(repo, ref), "id", None) != expected:
        return _Conflict(str(e))
    return _Conflict(str(e), unexplained=e)


def merge_history(
    repo: pygit2.Repository,
    ref: str,
    theirs: pygit2.Commit,
    merged_tree: Callable[[pygit2.Commit | None], pygit2.Oid],
    what: str,
) -> bool:
    """Bring another history of ``ref`` (a remote's notes or aliases) in; True when ``ref`` moved.

    Creates the ref, or fast-forwards it, when that gives exactly ``merged_tree(ours)`` (ours is
    None when the ref does not exist yet); otherwise commits that tree with parents (ours, theirs). Compare-and-swap,
    retried while another writer moves the ref.
    """
    sig = signature(repo)
    moved = [False]

    def step() -> None:
        try:
            r = repo.references.get(ref)
        except pygit2.GitError:
            r = None
        seen = r.target if r is not None else None
        try:
            ours = None if r is None else r.peel(pygit2.Commit)
            if ours is not None and (ours.id == theirs.id or repo.descendant_of(ours.id, theirs.id)):
                return
            # Their history is adopted as is only when merging would give the same tree: a remote
            # cannot make us take lines or records the merge rule refuses (re-pointed entries,
            # future-dated aliases) just by building on our tip.
            tree = merged_tree(ours)
            if tree == theirs.tree_id and (ours is None or repo.descendant_of(theirs.id, ours.id)):
                if r is None:
                    repo.references.create(ref, theirs.id, force=False)
                else:
                    r.set_target(theirs.id, message=f"tvault: fast-forward {what}")
                moved[0] = True
                return
            if ours is None:
                c = repo.create_commit(None, sig, sig, f"tvault: merge {what}\n", tree, [theirs.id])
                repo.references.create(ref, c, force=False)
            else:  # parents (ours, theirs), even when nothing of theirs was taken: the next pull is a no-op
                repo.create_commit(ref, sig, sig, f"tvault: merge {what}\n", tree, [ours.id, theirs.id])
            moved[0] = True
        except (pygit2.GitError, OSError) as e:  # another writer moved or locked the ref: start over
            raise _race(repo, ref, seen, e) from None  # type: ignore[arg-type]

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
        raise _race(repo, ref, parent, e) from None


# --- core.sharedRepository -----------------------------------------------------------------

_PERM_GROUP = 0o660
_PERM_EVERYBODY = 0o664
_umask_lock = threading.RLock()
_umask_depth = 0
_umask_saved = 0o022


def shared_perm(repo: pygit2.Repository) -> int | None:
    """The file mode bits ``core.sharedRepository`` asks for (git's ``git_config_perm``), or None.

    ``group``/``true``/``1`` -> 0660, ``all``/``world``/``everybody``/``2`` -> 0664, an octal
    ``0xxx`` -> that mode; ``umask``/``false``/``0`` or unset -> None (the user's umask rules).
    """
    try:
        value = repo.config["core.sharedRepository"]
    except (KeyError, pygit2.GitError):
        return None
    v = str(value).strip().lower()
    if v in ("", "umask", "false", "no", "off", "0"):
        return None
    if v in ("group", "true", "yes", "on", "1"):
        return _PERM_GROUP
    if v in ("all", "world", "everybody", "2"):
        return _PERM_EVERYBODY
    try:
        mode = int(v, 8)
    except ValueError:
        return None
    return (mode & 0o666) | 0o600 if mode else None


@contextlib.contextmanager
def shared_umask(repo: pygit2.Repository) -> Iterator[None]:
    """Create files and directories with the permissions a shared repository needs, as git does.

    git chmods every file it creates (``adjust_shared_perm``); libgit2, which writes our loose
    objects, refs and lock files, does not. So while tvault writes into a shared repository the
    process umask lets the group (and, for ``all``, others) bits through: fan-out directories
    become ``rwxrwsr-x`` (setgid is inherited from git's own directories) and ref files
    ``rw-rw-r--``, and a teammate's next write does not fail with Permission denied. Nested and
    concurrent uses from threads share one umask change. Outside shared repositories: no effect.
    """
    global _umask_depth, _umask_saved
    perm = shared_perm(repo)
    if perm is None:
        yield
        return
    dir_bits = perm | ((perm & 0o444) >> 2)  # x wherever r: directories must be searchable
    with _umask_lock:
        current = os.umask(0)
        if _umask_depth == 0:
            _umask_saved = current
        os.umask(current & ~dir_bits & 0o777)
        _umask_depth += 1
    try:
        yield
    finally:
        with _umask_lock:
            _umask_depth -= 1
            if _umask_depth == 0:
                os.umask(_umask_saved)


def adjust_shared_perm(repo: pygit2.Repository, path: str) -> None:
    """chmod a file or directory tvault created the way git's ``adjust_shared_perm`` would."""
    perm = shared_perm(repo)
    if perm is None:
        return
    try:
        st = os.stat(path)
        mode = st.st_mode & 0o7777
        tweak = perm
        if not mode & 0o200:
            tweak &= ~0o222  # read-only files (packs, indexes) stay read-only
        if mode & 0o100 or os.path.isdir(path):
            tweak |= (tweak & 0o444) >> 2
        new = mode | tweak
        if os.path.isdir(path):
            new |= 0o2000
        if new != mode:
            os.chmod(path, new)
    except OSError:
        pass  # not ours to fix (another user's file); git itself only warns here


def writes_shared(repo_of: Callable[..., pygit2.Repository | None]) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorator: run an API call that writes into a repository inside ``shared_umask``.

    ``repo_of(*args, **kwargs)`` returns the repository the call will write to (or None when it
    cannot be known yet: then the call opens it itself and gets the user's umask).
    """

    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def inner(*args: object, **kwargs: object) -> T:
            try:
                repo = repo_of(*args, **kwargs)
            except TvaultError:
                repo = None  # let the call itself raise its one-line error
            if repo is None:
                return fn(*args, **kwargs)
            with shared_umask(repo):
                return fn(*args, **kwargs)

        return inner

    return wrap


def repo_keyword(*_args: object, repo: object = None, **_kwargs: object) -> pygit2.Repository:
    """For ``writes_shared``: the repository named by a call's ``repo=`` keyword (default: discovery)."""
    return open_repo_like(repo)  # type: ignore[arg-type]


def permission_problem(repo: pygit2.Repository | None, what: str, msg: str) -> StorageError | None:
    """A StorageError for a write refused by file permissions (never worth retrying), else None."""
    if "Permission denied" not in msg and "Operation not permitted" not in msg:
        return None
    where = common_dir(repo) if repo is not None else "the repository"
    return StorageError(
        f"cannot write {what}: permission denied in {where}; if teammates share this repository, "
        "set 'git config core.sharedRepository group' and make its files group-writable "
        "(chmod -R g+rwX, chgrp -R GROUP), or ask the owner of the files named above"
    )


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
        """Take ``gc.pid`` without ever holding ``gc.pid.lock`` while it is free.

        git gc takes ``gc.pid.lock`` with no timeout and dies ("Unable to create
        '.../gc.pid.lock': File exists") if it is there: a merger taking that lock on every merge
        made a user's ``git gc`` beside heavy logging fail. So ``gc.pid`` is created directly
        (a hard link: atomic, and refused when one exists). A gc that had already read "no
        gc.pid" under its lock renames its own over ours; so once no lock is held, ``gc.pid``
        must still be ours. Only a stale ``gc.pid`` (a killed gc) is replaced under the lock, as
        git itself does.
        """
        lock = self.path + ".lock"
        tmp = f"{self.path}.tvault-{os.getpid()}-{threading.get_ident()}"
        try:
            with open(tmp, "w") as f:
                f.write(self.mine)
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                if self._running():
                    return self  # a gc (or another tvault) holds it
                return self._replace_stale(lock)
            except OSError:
                return self  # no hard links here: leave the packs for gc
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        deadline = time.monotonic() + 2.0
        while os.path.exists(lock) and time.monotonic() < deadline:
            time.sleep(0.001)  # a gc deciding right now: it sees ours (backs off) or renames its own
        try:
            with open(self.path) as f:
                ours = f.read().strip() == self.mine
        except OSError:
            ours = False
        self.acquired = ours and not os.path.exists(lock)
        if ours and not self.acquired:  # a lock left by a killed git: do not leave our gc.pid behind
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        return self

    def _replace_stale(self, lock: str) -> gc_lock:
        """``gc.pid`` of a gc that died: replaced under ``gc.pid.lock``, as git gc replaces it."""
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


@dataclass(frozen=True)
class CommitInfo:
    """A commit as a page shows it: id, message and subject, author, date (ISO, with its offset)."""

    id: str
    message: str
    subject: str
    author: str
    email: str
    date: str


def commit_info(repo: pygit2.Repository, sha: str | None) -> CommitInfo | None:
    """The commit ``sha`` as git knows it; None when it is not in this clone (a pulled registry),
    is not a commit, or git cannot decode it (an ``encoding`` header Python does not know)."""
    if not sha:
        return None
    try:
        c = repo.get(sha)
        if c is None or c.type != pygit2.enums.ObjectType.COMMIT:
            return None
        assert isinstance(c, pygit2.Commit)
        when = datetime.datetime.fromtimestamp(
            c.commit_time, datetime.timezone(datetime.timedelta(minutes=c.commit_time_offset))
        )
        return CommitInfo(
            id=str(c.id),
            message=c.message,
            subject=c.message.split("\n", 1)[0],
            author=c.author.name,
            email=c.author.email,
            date=when.isoformat(),
        )
    except (LookupError, UnicodeDecodeError, ValueError, pygit2.GitError):
        return None


def has_object(repo: pygit2.Repository, sha: str) -> bool:
    """Whether ``sha`` names an object in this repository (False for a malformed id)."""
    try:
        return sha in repo
    except (ValueError, pygit2.GitError):
        return False


def _typed(repo: pygit2.Repository, oid: pygit2.Oid | str, cls: type[_O], what: str) -> _O:
    obj = repo[oid]
    if not isinstance(obj, cls):
        raise CorruptEntry(f"object {str(oid)[:12]} is not a {what}; the repository is damaged")
    return obj


def blob_of(repo: pygit2.Repository, oid: pygit2.Oid | str) -> pygit2.Blob:
    """``repo[oid]`` as a blob (pygit2 types lookups as Object); CorruptEntry when it is another kind."""
    return _typed(repo, oid, pygit2.Blob, "blob")


def tree_of(repo: pygit2.Repository, oid: pygit2.Oid | str) -> pygit2.Tree:
    """``repo[oid]`` as a tree; CorruptEntry when it is another kind."""
    return _typed(repo, oid, pygit2.Tree, "tree")


def commit_of(repo: pygit2.Repository, oid: pygit2.Oid | str) -> pygit2.Commit:
    """``repo[oid]`` as a commit; CorruptEntry when it is another kind."""
    return _typed(repo, oid, pygit2.Commit, "commit")
