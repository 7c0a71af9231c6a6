"""Writers beside ``git gc`` / ``git gc --auto`` (gc.auto=1), with pauses injected at each install
step and small packs merged all the time: nothing is lost, no writer fails, and gc never dies
because a pack it listed vanished ("unable to add recent objects")."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time

import pygit2

import tvault_git as tv
from tests.helpers import GIT_ENV, git
from tvault_git.gitutil.repo import gc_lock
from tvault_git.storage import packmerge

WRITER = """
import os, sys, time, torch
import tvault_git as tv
from tvault_git.storage import packmerge, packwrite
packmerge.MERGE_AT = 3  # merge all the time, beside gc
_replace = os.replace
def slow_replace(a, b, *k, **kw):  # a descheduled writer, at every rename
    time.sleep(0.003)
    r = _replace(a, b, *k, **kw)
    time.sleep(0.003)
    return r
packwrite.os.replace = slow_replace
packwrite._step = lambda name: time.sleep(0.003)
w, n = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    torch.manual_seed(w * 1000 + i)
    tv.log_all(torch.nn.Linear(32, 32), result=float(i), name=f"w{w}")
print("done")
"""


def _digest(sd: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(sd):
        h.update(k.encode() + sd[k].contiguous().numpy().tobytes())
    return h.hexdigest()


def test_writers_beside_gc_loop_lose_nothing(repo):
    import torch

    git(repo, "config", "gc.auto", "1")
    git(repo, "config", "gc.autoDetach", "false")
    env = {**os.environ, **GIT_ENV}
    n_writers, n = 3, 8
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(w), str(n)],
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(n_writers)
    ]
    failures, runs = [], 0
    while any(w.poll() is None for w in writers):
        for cmd in (["gc", "-q"], ["gc", "--auto", "-q"], ["repack", "-a", "-d", "-q"]):
            p = subprocess.run(["git", *cmd], cwd=repo, capture_output=True, text=True, env=env)
            runs += 1
            # a merger holds git's own gc lock for the milliseconds it deletes packs: a manual gc
            # starting then is refused exactly as beside another gc; anything else is a failure
            refused = "already running" in p.stderr
            if p.returncode != 0 and not refused:
                failures.append((cmd, p.returncode, p.stderr))
        time.sleep(0.01)
    for w in writers:
        out, err = w.communicate()
        assert w.returncode == 0 and out.strip() == "done", err
    assert runs >= 3 and not failures, [f[2].splitlines()[0] for f in failures]
    git(repo, "gc", "-q")
    git(repo, "fsck", "--full", "--no-dangling")
    for w in range(n_writers):
        for i in range(n):
            torch.manual_seed(w * 1000 + i)
            assert _digest(tv.load(f"w{w}@{i + 1}")) == _digest(torch.nn.Linear(32, 32).state_dict())


def test_packs_are_not_deleted_while_a_git_gc_runs(repo, monkeypatch):
    """A running gc holds gc.pid (pid and host, as git writes it): the merger leaves its sources."""
    import torch

    monkeypatch.setattr(packmerge, "MERGE_AT", 3)
    pid_file = repo / ".git" / "gc.pid"
    import socket

    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        pid_file.write_text(f"{sleeper.pid} {socket.gethostname()}")
        for i in range(3):
            tv.log_all(torch.nn.Linear(8, i + 1))
        pack_dir = str(repo / ".git/objects/pack")
        assert len(packmerge.tvault_packs(pack_dir)) == 4  # three sources kept beside the merged copy
        with gc_lock(pygit2.Repository(str(repo))) as lock:
            assert not lock.acquired
        p = subprocess.run(["git", "gc", "--auto"], cwd=repo, capture_output=True, text=True)
        assert p.returncode == 0
    finally:
        sleeper.kill()
        sleeper.wait()
    # that gc is gone (its pid is dead): the next merge deletes the sources, and takes and drops the lock
    tv.log_all(torch.nn.Linear(8, 9))
    assert len(packmerge.tvault_packs(pack_dir)) == 1 and not pid_file.exists()
    git(repo, "fsck", "--full", "--no-dangling")


def test_gc_lock_never_takes_git_gc_pid_lock_when_free(repo, monkeypatch):
    """git gc dies at once ("Unable to create '.../gc.pid.lock': File exists") when that lock is
    there; a merger creating it on every merge made a user's ``git gc`` fail beside heavy logging.
    A free gc.pid is taken without it; a stale one is replaced under it (as git does)."""
    import socket

    r = pygit2.Repository(str(repo))
    made: list[str] = []
    real_open = os.open

    def spy(path, flags, *a, **k):
        made.append(os.fspath(path))
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", spy)
    pid_file = repo / ".git" / "gc.pid"
    with gc_lock(r) as lock:
        assert lock.acquired and pid_file.read_text() == f"{os.getpid()} {socket.gethostname()}"
        with gc_lock(r) as other:  # held: a second taker (a gc, another merger) is refused
            assert not other.acquired
    assert not pid_file.exists()
    assert not [p for p in made if p.endswith("gc.pid.lock")], made

    dead = subprocess.Popen(["true"])
    dead.wait()
    pid_file.write_text(f"{dead.pid} {socket.gethostname()}")  # a killed gc's file
    with gc_lock(r) as lock:
        assert lock.acquired
    assert not pid_file.exists()

    other_host = "gc-host-elsewhere"  # git gc running on another machine: never taken
    pid_file.write_text(f"1 {other_host}")
    with gc_lock(r) as lock:
        assert not lock.acquired
    assert pid_file.read_text() == f"1 {other_host}"


def test_object_writes_are_tried_again_after_a_vanished_fanout_directory(repo):
    """git prune rmdirs empty objects/xx directories; a loose-object write that loses that race
    fails once ("failed to rename lockfile ... No such file or directory") and is run again."""
    import pygit2
    import pytest

    from tvault_git.gitutil.repo import OBJECT_WRITE_TRIES, open_repo, retry_locked, retry_object_writes

    r = open_repo(str(repo))
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise pygit2.GitError("failed to rename lockfile to '.git/objects/f0/abc': No such file or directory")
        return str(r.create_blob(b"x"))

    assert retry_object_writes(flaky) == str(r.create_blob(b"x")) and len(calls) == 2
    calls.clear()
    assert retry_locked(flaky, "refs/notes/tvault", repo=r) and len(calls) == 2  # a notes step writes blobs too

    def broken() -> str:
        calls.append(1)
        raise pygit2.GitError("disk full")

    calls.clear()
    with pytest.raises(pygit2.GitError, match="disk full"):
        retry_object_writes(broken)
    assert len(calls) == OBJECT_WRITE_TRIES  # a real failure is raised, after a few quick tries
