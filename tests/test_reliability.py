"""Concurrent writers and killed writers leave a consistent registry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pygit2

from conftest import git
from tvault_git import registry

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
    procs = [subprocess.Popen([sys.executable, "worker.py", str(w), "25"], cwd=repo, stderr=subprocess.PIPE, text=True) for w in range(8)]
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
    # the repo is still usable afterwards
    git(repo, "gc", "--quiet")
    _check_consistent(repo)


def _check_consistent(repo: Path) -> None:
    git(repo, "fsck", "--full")
    r = pygit2.Repository(str(repo))
    for e in registry.entries(r):
        recs = registry.weight_records(r, e.id)  # manifest and weights readable
        for rec in recs.values():
            for c in rec["chunks"]:
                assert c in r.odb
    import tvault_git as tvault

    for e in registry.entries(r)[:2]:
        assert len(tvault.load(e.id, repo=str(repo))) == 4
    leftovers = [n for n in os.listdir(repo / ".git/objects/pack") if n.endswith(".idx")]
    for n in leftovers:  # every visible index has its pack
        assert (repo / ".git/objects/pack" / (n[:-4] + ".pack")).exists()
