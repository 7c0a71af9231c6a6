"""Space killed writers leave is reclaimed (``git tvault gc``), never anything a live writer needs."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pygit2
import pytest
import torch

import tvault_git as tv
from tests.helpers import GIT_ENV, git, tvault
from tvault_git.errors import StorageError
from tvault_git.registry import notes
from tvault_git.storage import packmerge, reclaim

# log_all killed between installing its weight pack and publishing the entry
KILLED = """
import os, signal, torch, tvault_git as tv
from tvault_git.api import log
log.commit_entry = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
torch.manual_seed(int(os.environ["SEED"]))
tv.log_all(torch.nn.Linear(256, 256))
"""


def _pack_bytes(repo: Path) -> int:
    d = repo / ".git/objects/pack"
    return sum(os.path.getsize(d / n) for n in os.listdir(d))


def _digest(sd: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(sd):
        h.update(k.encode() + sd[k].contiguous().numpy().tobytes())
    return h.hexdigest()


def _kill_a_writer(repo: Path, seed: int) -> None:
    env = {**os.environ, **GIT_ENV, "SEED": str(seed)}
    p = subprocess.run([sys.executable, "-c", KILLED], cwd=repo, env=env, capture_output=True)
    assert p.returncode == -9, p.stderr


def test_gc_reclaims_what_killed_writers_left_and_keeps_every_entry(repo):
    live = torch.nn.Linear(256, 256)
    e = tv.log_all(live, result=1.0)
    for seed in (1, 2, 3):
        _kill_a_writer(repo, seed)
    pack_dir = repo / ".git/objects/pack"
    assert len(packmerge.tvault_packs(str(pack_dir))) == 4
    git(repo, "gc", "-q", "--prune=now")
    (pack_dir / "tmp_tvault_pack_dead").write_bytes(b"x" * 100_000)  # a killed writer's temp file
    before = _pack_bytes(repo)
    assert len(packmerge.tvault_packs(str(pack_dir))) == 4  # git alone never frees kept packs
    dry = tvault(repo, "gc", "--dry-run", "--min-age", "0").stdout
    assert "3 unreferenced weight pack(s)" in dry and _pack_bytes(repo) == before
    out = tvault(repo, "gc", "--min-age", "0").stdout
    assert "freed" in out and "3 unreferenced weight pack(s)" in out and "1 temp file(s)" in out
    after = _pack_bytes(repo)
    assert before - after >= 3 * 256 * 256 * 4 + 100_000
    assert packmerge.tvault_packs(str(pack_dir)) and not (pack_dir / "tmp_tvault_pack_dead").exists()
    assert _digest(tv.load(e.id)) == _digest(live.state_dict())
    git(repo, "fsck", "--full", "--no-dangling")
    assert "0 unreferenced" in tvault(repo, "gc", "--min-age", "0").stdout


def test_gc_never_removes_a_pack_a_running_writer_relies_on(repo, monkeypatch):
    """A killed writer's pack holds the very blobs a live writer then finds "already stored"; while
    that writer has not published its entry, gc must not judge the pack unreferenced."""
    _kill_a_writer(repo, 7)  # leaves an unreferenced pack with this model's weights
    torch.manual_seed(7)
    m = torch.nn.Linear(256, 256)
    paused, release = threading.Event(), threading.Event()
    real_add = notes.add

    def slow_add(*a, **k):
        paused.set()
        release.wait(30)
        return real_add(*a, **k)

    monkeypatch.setattr(notes, "add", slow_add)
    box: dict = {}
    t = threading.Thread(target=lambda: box.setdefault("e", tv.log_all(m, result=0.1)))
    t.start()
    assert paused.wait(30)
    try:
        with pytest.raises(StorageError, match="writers kept running"):
            reclaim.reclaim(pygit2.Repository(str(repo)), wait=0.3, min_age=0)
    finally:
        release.set()
        t.join()
    assert box["e"].new_bytes == 0  # it did reuse the killed writer's blobs
    r = reclaim.reclaim(pygit2.Repository(str(repo)), min_age=0)
    assert r.packs == 0  # the pack is referenced now
    assert _digest(tv.load(box["e"].id)) == _digest(m.state_dict())
    git(repo, "fsck", "--full", "--no-dangling")


WRITER = """
import sys, torch, tvault_git as tv
for i in range(int(sys.argv[2])):
    torch.manual_seed(int(sys.argv[1]) * 1000 + i)
    tv.log_all(torch.nn.Linear(64, 64), result=float(i), name="w" + sys.argv[1])
print("done")
"""


def test_gc_concurrent_with_writers_loses_nothing(repo):
    env = {**os.environ, **GIT_ENV}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(w), "6"],
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(3)
    ]
    runs = 0
    while any(w.poll() is None for w in writers) or runs < 3:
        if runs < 2:
            _kill_a_writer(repo, 100 + runs)
        out = tvault(repo, "gc", "--min-age", "0", check=False)
        assert out.returncode == 0 or "writers kept running" in out.stderr, out.stderr
        runs += 1
    for w in writers:
        out, err = w.communicate()
        assert w.returncode == 0 and out.strip() == "done", err
    r = pygit2.Repository(str(repo))
    for w in range(3):
        for i in range(6):
            torch.manual_seed(w * 1000 + i)
            ref = torch.nn.Linear(64, 64).state_dict()
            assert _digest(tv.load(f"w{w}@{i + 1}", repo=str(repo))) == _digest(ref)
    assert len(tv.load("w0@1", repo=str(repo))) == 2
    assert reclaim.reclaim(r, min_age=0).packs == 0  # the killed writers' packs went in the loop
    git(repo, "fsck", "--full", "--no-dangling")


def test_a_reused_pack_is_freshened_and_spared(repo):
    """A killed writer's pack whose blobs a new write reuses gets a new mtime, as git freshens objects."""
    import time

    from tvault_git.storage import packwrite

    _kill_a_writer(repo, 11)
    (base,) = packmerge.tvault_packs(str(repo / ".git/objects/pack"))
    old = time.time() - 2 * reclaim.MIN_AGE_S
    os.utime(base + ".pack", (old, old))
    r = pygit2.Repository(str(repo))
    assert reclaim.reclaim(r, dry_run=True).packs == 1  # old and unreferenced
    torch.manual_seed(11)
    m = torch.nn.Linear(256, 256)
    _, new = packwrite.write_blobs(r, [memoryview(t.detach().numpy()).cast("B") for t in m.state_dict().values()])
    assert new == 0 and reclaim.reclaim(r).packs == 0  # reused: freshened, spared by the grace period
