"""Concurrent writers and killed writers leave a consistent registry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pygit2
import pytest
import torch
from conftest import git

from tvault_git.registry import entries as registry

WORKER = textwrap.dedent(
    """
    import sys, torch
    import tvault_git as tvault
    sys.path.insert(0, ".")
    from model import Net
    wid, n = int(sys.argv[1]), int(sys.argv[2])
    torch.manual_seed(wid)
    m = Net()
    for i in range(n):
        with torch.no_grad():
            m.fc2.bias.add_(1.0)
        tvault.log_all(m, tags={"worker": wid, "i": i}, result=float(i))
    """
)


def test_eight_processes_log_concurrently(repo):
    (repo / "worker.py").write_text(WORKER)
    procs = [
        subprocess.Popen([sys.executable, "worker.py", str(w), "25"], cwd=repo, stderr=subprocess.PIPE, text=True)
        for w in range(8)
    ]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    r = pygit2.Repository(str(repo))
    head = str(r.head.target)
    es = registry.entries_on(r, head)
    assert len(es) == 200
    assert sorted(e.index for e in es) == list(range(200))
    assert len({e.id for e in es}) == 200
    seen = {(e.manifest["tags"]["worker"], e.manifest["tags"]["i"]) for e in es}
    assert seen == {(w, i) for w in range(8) for i in range(25)}
    git(repo, "fsck", "--full", "--strict")


KILLER = textwrap.dedent(
    """
    import sys, torch
    import tvault_git as tvault
    sys.path.insert(0, ".")
    m = torch.nn.Sequential(torch.nn.Linear(512, 512), torch.nn.Linear(512, 512))
    print("ready", flush=True)
    i = 0
    while True:
        with torch.no_grad():
            for p in m.parameters():
                p.add_(1.0)
        tvault.log_all(m, result=float(i))
        i += 1
    """
)


def test_killed_writer_leaves_no_partial_entry(repo):
    (repo / "killer.py").write_text(KILLER)
    delays = [0.05, 0.13, 0.21, 0.34, 0.55, 0.8]
    for d in delays:
        p = subprocess.Popen([sys.executable, "killer.py"], cwd=repo, stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        time.sleep(d)
        p.send_signal(signal.SIGKILL)
        p.wait()
        _check_consistent(repo)
    # the repo is still usable afterwards: a kill inside a ref update leaves its .lock file, which
    # the next writer clears once it is stale; git gc then runs as on any repo
    import tvault_git as tvault

    before = len(registry.entries(pygit2.Repository(str(repo))))
    m = torch.nn.Linear(4, 4)
    tvault.log_all(m, result=1.0, repo=str(repo))
    tvault.log_all(m, result=2.0, repo=str(repo))
    assert len(registry.entries(pygit2.Repository(str(repo)))) == before + 2
    git(repo, "gc", "--quiet")
    _check_consistent(repo, expect=None)


def test_a_lock_left_by_a_killed_writer_is_cleared_once_stale(repo):
    """A SIGKILL between taking and releasing the notes ref lock leaves refs/notes/tvault.lock; git
    holds ref locks for milliseconds, so one that is seconds old has no owner."""
    import tvault_git as tvault
    from tvault_git.gitutil import repo as repo_mod

    m = torch.nn.Linear(4, 4)
    tvault.log_all(m, result=1.0)
    lock = repo / ".git/refs/notes/tvault.lock"
    lock.write_text("")
    old = time.time() - repo_mod.STALE_LOCK_S - 1
    os.utime(lock, (old, old))
    e = tvault.log_all(m, result=2.0)
    assert not lock.exists() and e.index == 1
    # a fresh lock belongs to a live writer: it is waited for, never removed
    lock.write_text("")
    threading.Timer(0.5, lock.unlink).start()
    t = time.monotonic()
    e = tvault.log_all(m, result=3.0)
    assert e.index == 2 and time.monotonic() - t >= 0.4
    git(repo, "fsck", "--full")
    out = git(repo, "log", "--notes=tvault", "-1").stdout
    assert e.id in out


def _check_consistent(repo: Path, expect: int | None = 4) -> None:
    git(repo, "fsck", "--full")
    r = pygit2.Repository(str(repo))
    for e in registry.entries(r):
        recs = registry.weight_records(r, e.id)  # manifest and weights readable
        for rec in recs.values():
            for c in rec["chunks"]:
                assert c in r.odb
    import tvault_git as tvault

    for e in registry.entries(r)[:2]:
        sd = tvault.load(e.id, repo=str(repo))
        assert expect is None or len(sd) == expect
    visible = [n for n in os.listdir(repo / ".git/objects/pack") if n.startswith("pack-") and n.endswith(".idx")]
    for n in visible:  # every index git reads has its pack (tmp_* files are invisible to git)
        assert (repo / ".git/objects/pack" / (n[:-4] + ".pack")).exists()


def test_temp_packs_of_killed_writers_are_swept_once_stale(repo):
    import tvault_git as tvault
    from tvault_git.storage import packwrite as objects

    pack_dir = repo / ".git/objects/pack"
    pack_dir.mkdir(parents=True, exist_ok=True)
    dead, live = pack_dir / "tmp_tvault_dead.pack", pack_dir / "tmp_tvault_live.pack"
    dead.write_bytes(b"PACK" + b"\0" * 100)
    live.write_bytes(b"PACK")
    old = time.time() - objects.STALE_TMP_S - 1
    os.utime(dead, (old, old))
    tvault.log_all(torch.nn.Linear(3, 3))
    assert not dead.exists() and live.exists()
    git(repo, "fsck", "--full")


def test_a_full_disk_is_a_clear_error_and_leaves_nothing(repo, monkeypatch):
    import errno

    import tvault_git as tvault
    from tvault_git.errors import StorageError
    from tvault_git.storage import packwrite as objects

    real = os.writev
    calls = {"n": 0}

    def writev(fd, bufs):
        calls["n"] += 1
        if calls["n"] > 3:  # fail mid-pack, after the header and a few pieces
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, bufs)

    m = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.Linear(256, 256))
    assert StorageError is tvault.StorageError
    with monkeypatch.context() as mp:  # (monkeypatch.undo would also undo the fixture's chdir)
        mp.setattr(objects.os, "writev", writev)
        with pytest.raises(StorageError, match="No space left on device.*nothing was recorded"):
            tvault.log_all(m, result=1.0, repo=str(repo))
    assert calls["n"] > 3
    assert registry.entries(pygit2.Repository(str(repo))) == []
    assert not [n for n in os.listdir(repo / ".git/objects/pack") if n.startswith("tmp_")]
    e = tvault.log_all(m, result=1.0, repo=str(repo))  # and the next call works
    assert e.index == 0
    git(repo, "fsck", "--full")
