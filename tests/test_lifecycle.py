"""Entry lifecycle: version numbers that never move, entries that survive rewrites without hooks,
retention (``git tvault gc --keep-best``) with the space measured on disk. Real git throughout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

import tvault_git as tv
from tests.helpers import GIT_ENV, git, tvault
from tvault_git.gitutil.repo import open_repo
from tvault_git.registry import names

# A writer that stamps its times, then waits (a slow disk) until told to go on before the weights go in.
SLOW_WRITER = """
import os, time, torch, tvault_git as tv
from tvault_git.storage import tensors
real = tensors.store_tensors
def slow(*a, **k):
    open(os.environ["STARTED"], "w").close()
    while not os.path.exists(os.environ["GO"]):
        time.sleep(0.01)
    return real(*a, **k)
tensors.store_tensors = slow
print(tv.log_all(torch.nn.Linear(8, 8), name="m", result=0.1).id)
"""


def _versions(repo: Path) -> dict[str, int]:
    return {v.entry.id: v.number for v in names.versions(open_repo(str(repo)), "m")}


def _cli_versions(repo: Path) -> dict[str, int]:
    rows = json.loads(tvault(repo, "log", "--json").stdout)
    return {r["id"]: r["version"] for r in rows if r.get("name") == "m"}


def test_a_version_once_shown_never_changes_when_an_earlier_writer_publishes_later(repo, tmp_path):
    started, go = tmp_path / "started", tmp_path / "go"
    env = {**os.environ, **GIT_ENV, "STARTED": str(started), "GO": str(go), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    slow = subprocess.Popen([sys.executable, "-c", SLOW_WRITER], cwd=repo, env=env, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not started.exists():  # the slow writer has stamped 'created' and is writing weights
            assert slow.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        fast = tv.log_all(torch.nn.Linear(8, 8), name="m", result=0.2)
        shown = _versions(repo)[fast.id]
        assert shown == 1 and _cli_versions(repo)[fast.id] == 1
        go.touch()
        out, _ = slow.communicate(timeout=120)
    finally:
        go.touch()
        if slow.poll() is None:
            slow.kill()
    assert slow.returncode == 0
    late = out.strip().splitlines()[-1]
    assert _versions(repo) == {fast.id: 1, late: 2}  # the first-published entry kept the number it was shown with
    assert _cli_versions(repo) == {fast.id: 1, late: 2}
    assert tv.load("m@1", repo=str(repo)) is not None and names.resolve(open_repo(str(repo)), "m", "1").id == fast.id
    # the label readers of `git log --notes=tvault` see matches
    shown_notes = git(repo, "notes", "--ref=tvault", "show", "HEAD").stdout
    assert f"m@1 result 0.2 entry {fast.id[:10]}" in shown_notes and f"m@2 result 0.1 entry {late[:10]}" in shown_notes
