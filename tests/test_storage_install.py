"""Weight packs installed beside git's own maintenance: a ``git repack``/``git gc`` run at every
install step (synchronously, so the race is hit every time) never loses a pack or a temp file."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
import torch

import tvault_git as tv
from tests.helpers import git, import_fresh
from tvault_git.storage import packwrite


def _digest(sd: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(sd):
        h.update(k.encode())
        h.update(sd[k].contiguous().numpy().tobytes())
    return h.hexdigest()


def _maintenance_at_every_step(monkeypatch: pytest.MonkeyPatch, repo: Path, cmds: list[list[str]]) -> list[int]:
    """Run ``cmds`` (real git) right before and after every rename or open in the pack directory."""
    pack_dir = str(repo / ".git" / "objects" / "pack")
    real_replace, real_open, real_link = os.replace, open, os.link
    codes: list[int] = []
    busy = [False]

    def maintain() -> None:
        if busy[0]:
            return
        busy[0] = True
        try:
            for c in cmds:
                codes.append(subprocess.run(["git", *c], cwd=repo, capture_output=True).returncode)
        finally:
            busy[0] = False

    def in_pack_dir(p) -> bool:
        return str(p).startswith(pack_dir)

    def replace(src, dst, *a, **k):
        if in_pack_dir(dst):
            maintain()
        r = real_replace(src, dst, *a, **k)
        if in_pack_dir(dst):
            maintain()
        return r

    def open_(file, mode="r", *a, **k):
        hit = isinstance(file, (str, os.PathLike)) and in_pack_dir(file) and ("w" in mode or "x" in mode)
        if hit:
            maintain()
        return real_open(file, mode, *a, **k)

    def link(src, dst, *a, **k):
        r = real_link(src, dst, *a, **k)
        if in_pack_dir(dst):
            maintain()
        return r

    monkeypatch.setattr(packwrite.os, "replace", replace)
    monkeypatch.setattr(packwrite.os, "link", link)
    monkeypatch.setattr("builtins.open", open_)
    return codes


@pytest.mark.parametrize(
    "cmds",
    [[["repack", "-a", "-d", "-q"]], [["gc", "-q"]]],
    ids=["repack-a-d", "gc"],
)
def test_maintenance_at_every_install_step_loses_nothing(repo, monkeypatch, cmds):
    Net = import_fresh("model").Net
    torch.manual_seed(0)
    m = Net()
    codes = _maintenance_at_every_step(monkeypatch, repo, cmds)
    e = tv.log_all(m, result=0.5)
    assert codes, "the injected maintenance never ran"
    assert all(c == 0 for c in codes), codes
    assert _digest(tv.load(e.id)) == _digest(m.state_dict())
    git(repo, "fsck", "--full", "--no-dangling")
    pack_dir = repo / ".git" / "objects" / "pack"
    for n in os.listdir(pack_dir):  # every pack has its index, nothing is half installed
        if n.endswith(".pack"):
            assert (pack_dir / (n[:-5] + ".idx")).exists(), n
