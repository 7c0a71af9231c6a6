"""Partial clones (``git clone --filter=blob:none``) over ``git daemon``: reads fetch what they need.

libgit2 does not fetch lazily, so before the fix every read in such a clone died with a raw
``KeyError: <blob>`` after ``git tvault pull``. Here the promisor remote is a real ``git daemon``
on 127.0.0.1, and what each read fetched is counted from the clone's own objects.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pygit2
import pytest

from tests.helpers import GIT_ENV, git, git_daemon, git_tool, init_repo, tvault, write
from tvault_git.errors import CorruptEntry, RemoteError
from tvault_git.registry import entries as registry

MODEL = """
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(32, 32)
        self.b = nn.Linear(32, 32)
        self.c = nn.Linear(32, 32)
"""

LOG = """
import sys, torch, tvault_git as tv
sys.path.insert(0, ".")
from model import Net
torch.manual_seed(int(sys.argv[1]))
print(tv.log_all(Net(), result=float(sys.argv[1]), name="m").id)
"""


def log_entry(repo: Path, seed: int) -> str:
    env = {**os.environ, **GIT_ENV}
    p = subprocess.run([sys.executable, "-c", LOG, str(seed)], cwd=repo, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip().splitlines()[-1]


def missing(repo: Path) -> set[str]:
    """Objects the clone lacks; ``--missing=print`` lists them without fetching anything."""
    out = git(repo, "rev-list", "--objects", "--all", "--missing=print").stdout
    return {ln[1:] for ln in out.splitlines() if ln.startswith("?")}


def chunks(repo: Path, entry: str) -> dict[str, set[str]]:
    recs = registry.weight_records(pygit2.Repository(str(repo)), entry)
    return {n: set(r["chunks"]) for n, r in recs.items()}


@pytest.fixture
def partial(tmp_path: Path):
    """A source repo with two entries pushed to a bare repo served by git daemon, and a
    ``--filter=blob:none`` clone of it that has run ``git tvault pull``; yields (clone, daemon, ids)."""
    if not git_tool("daemon"):
        pytest.skip("git daemon is not installed")
    src = init_repo(tmp_path / "src", with_model=False)
    write(src / "model.py", MODEL)
    git(src, "add", ".")
    git(src, "commit", "-q", "-m", "model")
    ids = [log_entry(src, 1), log_entry(src, 2)]
    srv = tmp_path / "srv"
    srv.mkdir()
    bare = srv / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(bare, "config", "uploadpack.allowFilter", "true")
    git(src, "remote", "add", "origin", str(bare))
    git(src, "push", "-q", "origin", "main")
    tvault(src, "push")
    with git_daemon(srv) as d:
        clone = tmp_path / "clone"
        git(tmp_path, "clone", "-q", "--filter=blob:none", f"{d.url}/remote.git", str(clone))
        tvault(clone, "pull")
        yield clone, d, ids


def test_partial_clone_reads_fetch_only_what_they_need(partial) -> None:
    clone, _, (e1, e2) = partial
    assert git(clone, "config", "remote.origin.promisor").stdout.strip() == "true"
    out = tvault(clone, "log").stdout  # the notes arrive with the pull or here, never a KeyError
    assert e1[:10] in out and e2[:10] in out
    by_tensor = chunks(clone, e1)  # manifest and tensor table: fetched, the weights not
    weights = set().union(*by_tensor.values())
    assert weights <= missing(clone)

    before = missing(clone)
    code = "import sys, tvault_git as tv; t = tv.load_tensor(sys.argv[1], 'b.weight'); print(tuple(t.shape))"
    p = subprocess.run([sys.executable, "-c", code, e1], cwd=clone, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "(32, 32)"
    fetched = before - missing(clone)
    assert fetched == by_tensor["b.weight"], "reading one tensor fetches that tensor's chunks and nothing else"

    show = tvault(clone, "show", e1)
    assert "c.weight" in show.stdout and "Traceback" not in show.stderr
    assert (weights - by_tensor["b.weight"]) <= missing(clone), "show fetches no weights"

    d = tvault(clone, "diff", e1, e2)
    assert "a.weight" in d.stdout and "Traceback" not in d.stderr

    e3 = log_entry(clone, 3)  # log_all in the partial clone (dedup against promised blobs)
    out = tvault(clone, "log").stdout
    assert e3[:10] in out and e1[:10] in out and e2[:10] in out, "appending kept the pulled lines"
    fsck = git(clone, "fsck", "--no-dangling")
    assert "error" not in fsck.stderr.lower() and "missing" not in fsck.stderr.lower(), fsck.stderr


def test_partial_clone_unreachable_remote_is_one_line(partial) -> None:
    clone, daemon, (e1, _) = partial
    tvault(clone, "log")
    n = len(set().union(*chunks(clone, e1).values()))  # the tensor table arrives; the weights do not
    daemon.stop()
    p = tvault(clone, "export", e1, str(clone.parent / "out.safetensors"), check=False)
    assert p.returncode == RemoteError.exit_code, p.stderr
    err = p.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "'origin'" in err and f"{n} missing" in err, err
    assert not (clone.parent / "out.safetensors").exists()


def test_missing_object_without_promisor_is_damaged_entry(tmp_path: Path) -> None:
    """No promisor remote: a missing chunk stays the damaged-entry error (no fetch is attempted)."""
    src = init_repo(tmp_path / "src", with_model=False)
    write(src / "model.py", MODEL)
    git(src, "add", ".")
    git(src, "commit", "-q", "-m", "model")
    e1 = log_entry(src, 1)
    oid = sorted(chunks(src, e1)["a.weight"])[0]
    packs = src / ".git" / "objects" / "pack"
    for f in packs.iterdir():  # rewrite the object store without that one blob
        if f.suffix == ".keep":
            f.unlink()
    objs = [
        o for o in git(src, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)").stdout.split() if o != oid
    ]
    p = subprocess.run(
        ["git", "pack-objects", "-q", str(packs / "new")],
        cwd=src,
        input="\n".join(objs) + "\n",
        text=True,
        capture_output=True,
    )
    assert p.returncode == 0, p.stderr
    for f in packs.iterdir():
        if not f.name.startswith("new-"):
            f.unlink()
    for d in (src / ".git" / "objects").iterdir():
        if len(d.name) == 2:
            for f in d.iterdir():
                f.unlink()
    assert oid not in pygit2.Repository(str(src))
    p = tvault(src, "export", e1, str(tmp_path / "out.safetensors"), check=False)
    assert p.returncode == CorruptEntry.exit_code, p.stderr
    assert "Traceback" not in p.stderr and "missing" in p.stderr
