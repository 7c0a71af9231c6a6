"""``git tvault checkout``: the exact training code back on disk, in a linked worktree."""

from __future__ import annotations

import json

import torch

import tvault_git as tv
from tests.helpers import MODEL_SRC, git, import_fresh, init_repo, tvault, write


def test_checkout_restores_dirty_training_code(repo):
    torch.manual_seed(0)
    tv.log_all(import_fresh("model").Net(), name="mlp", result=0.5)
    write(repo / "model.py", MODEL_SRC.replace("F.relu(x)", "F.gelu(x)"))  # trained uncommitted
    tv.log_all(import_fresh("model").Net(), name="mlp", result=0.6)
    git(repo, "checkout", "-q", "model.py")
    write(repo / "model.py", MODEL_SRC.replace("F.relu(x)", "F.silu(x)"))
    git(repo, "commit", "-qam", "silu")
    p = tvault(repo, "checkout", "mlp@2")
    dest = repo.parent / "proj-mlp-v2"
    assert f"mlp@2: code in {dest}" in p.stdout and "uncommitted changes" in p.stdout and "tv.load(" in p.stdout
    assert "F.gelu(x)" in (dest / "model.py").read_text()
    assert git(dest, "rev-parse", "HEAD").stdout.strip() == git(repo, "rev-parse", "HEAD~1").stdout.strip()
    assert str(dest) in git(repo, "worktree", "list").stdout
    d = json.loads(tvault(dest, "diff", "mlp@2", "--json", "--no-weights").stdout)
    changed = [k for k in ("architecture", "classes", "functions") if k in d["sections"] and d[k]["changed"]]
    assert changed == [] and "classes" in d["sections"], d
    # the work tree of the user is untouched, and an existing path is never overwritten
    assert "F.silu(x)" in (repo / "model.py").read_text()
    p = tvault(repo, "checkout", "mlp@2", check=False)
    assert p.returncode == 2 and "already exists" in p.stderr
    p = tvault(repo, "checkout", "mlp@1", str(repo.parent / "v1"))
    assert "F.relu(x)" in (repo.parent / "v1" / "model.py").read_text() and "uncommitted" not in p.stdout


def test_checkout_fetches_a_missing_training_commit(tmp_path, monkeypatch):
    origin = init_repo(tmp_path / "proj")
    monkeypatch.chdir(origin)
    monkeypatch.syspath_prepend(str(origin))
    git(origin, "checkout", "-q", "-b", "exp")
    write(origin / "model.py", MODEL_SRC.replace("WIDTH = 16", "WIDTH = 8"))
    git(origin, "commit", "-qam", "narrow")
    tv.log_all(import_fresh("model").Net(), name="narrow")
    git(tmp_path, "init", "-q", "--bare", "hub.git")
    hub = str(tmp_path / "hub.git")
    git(origin, "remote", "add", "origin", hub)
    git(origin, "push", "-q", "origin", "main", "exp")
    tvault(origin, "push", "origin")
    local = tmp_path / "mine"
    git(tmp_path, "clone", "-q", "--no-local", "--single-branch", "-b", "main", hub, str(local))
    tvault(local, "pull")
    exp = git(origin, "rev-parse", "exp").stdout.strip()
    assert git(local, "cat-file", "-e", exp, check=False).returncode != 0
    p = tvault(local, "checkout", "narrow@1")
    assert "fetched from origin" in p.stdout
    assert "WIDTH = 8" in (tmp_path / "mine-narrow-v1" / "model.py").read_text()
    # a commit that was never pushed: one line naming it
    write(origin / "model.py", MODEL_SRC.replace("WIDTH = 16", "WIDTH = 4"))
    git(origin, "commit", "-qam", "local only")
    tv.log_all(import_fresh("model").Net(), name="narrow")
    tvault(origin, "push", "origin")
    tvault(local, "pull")
    lost = git(origin, "rev-parse", "HEAD").stdout.strip()
    p = tvault(local, "checkout", "narrow@2", check=False)
    assert (
        p.returncode == 6 and f"the training commit {lost} is not in this repository (it was on branch exp)" in p.stderr
    )
    assert not (tmp_path / "mine-narrow-v2").exists()
