"""Repositories as git finds them: linked worktrees, GIT_DIR/GIT_WORK_TREE, shared repositories."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import GIT_ENV, git, init_repo, tvault

LOG = (
    "import sys, torch, tvault_git as tvault\n"
    "torch.manual_seed(0)\n"
    "m = torch.nn.Linear(3, 2)\n"
    "e = tvault.log_all(m, result=0.5, name='net')\n"
    "print(e.id)\n"
)


def _py(cwd: Path, code: str, env: dict[str, str] | None = None) -> str:
    e = {**os.environ, **GIT_ENV, **(env or {})}
    p = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, env=e)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_log_all_and_load_in_a_linked_worktree(tmp_path):
    main = init_repo(tmp_path / "main")
    git(main, "worktree", "add", "-q", str(tmp_path / "linked"))
    linked = tmp_path / "linked"
    eid = _py(linked, LOG)
    # the weights are where git reads objects: the common dir, not .git/worktrees/linked/
    assert not list((main / ".git" / "worktrees" / "linked").rglob("*.pack"))
    assert list((main / ".git" / "objects" / "pack").glob("*.pack"))
    got = _py(linked, f"import tvault_git as t; print(sorted(t.load('{eid}')))")
    assert got == "['bias', 'weight']"
    assert eid[:10] in tvault(main, "log").stdout  # the main checkout sees the entry too
    assert eid[:10] in tvault(linked, "find", "--name", "net").stdout
    attrs = (main / ".git" / "info" / "attributes").read_text()
    assert "tvault-blobs/** -delta -diff" in attrs
    git(main, "fsck", "--full", "--no-progress")
    git(main, "gc", "-q")
    got = _py(main, f"import tvault_git as t; print(sorted(t.load('{eid}')))")
    assert got == "['bias', 'weight']"


def test_git_dir_and_work_tree_are_honoured(tmp_path):
    gitdir, work = tmp_path / "env.git", tmp_path / "envwork"
    work.mkdir()
    git(tmp_path, "init", "-q", "--separate-git-dir", str(gitdir), str(tmp_path / "seed"))
    env = {"GIT_DIR": str(gitdir), "GIT_WORK_TREE": str(work)}
    git(tmp_path, "config", "user.name", "T", env=env)
    git(tmp_path, "config", "user.email", "t@example.com", env=env)
    (work / "model.py").write_text("X = 1\n")
    git(work, "add", "model.py", env=env)
    git(work, "commit", "-q", "-m", "code", env=env)
    eid = _py(work, LOG, env)
    assert eid[:10] in tvault(work, "log", env=env).stdout
    # git --git-dir/--work-tree passes the same through the environment of `git tvault`
    p = subprocess.run(
        ["git", f"--git-dir={gitdir}", f"--work-tree={work}", "tvault", "log"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]},
    )
    assert p.returncode == 0, p.stderr
    assert eid[:10] in p.stdout


def test_git_dir_wins_over_the_repository_around_the_cwd(tmp_path):
    a, b = init_repo(tmp_path / "a"), init_repo(tmp_path / "b")
    env = {"GIT_DIR": str(a / ".git"), "GIT_WORK_TREE": str(a)}
    eid = _py(b, LOG, env)
    assert eid[:10] in tvault(a, "log").stdout  # written into A, where git looks
    assert eid[:10] not in tvault(b, "log").stdout
    assert eid[:10] in tvault(b, "log", env=env).stdout


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_shared_repository_files_stay_group_writable(tmp_path):
    proj = tmp_path / "shared"
    proj.mkdir()
    git(proj, "init", "-q", "--shared=group", "-b", "main")
    git(proj, "config", "user.name", "T")
    git(proj, "config", "user.email", "t@example.com")
    (proj / "model.py").write_text("X = 1\n")
    git(proj, "add", ".")
    git(proj, "commit", "-q", "-m", "code")
    old = os.umask(0o022)
    try:
        _py(proj, "import os; os.umask(0o022)\n" + LOG)
        tvault(proj, "alias", "net@1", "prod")
        tvault(proj, "find", "--name", "net")  # builds the cache file
    finally:
        os.umask(old)
    g = proj / ".git"
    dirs = [g / "refs" / "tvault", g / "refs" / "tvault" / "entries", g / "refs" / "notes", g / "tvault"]
    dirs += [d for d in (g / "objects").iterdir() if len(d.name) == 2]
    for d in dirs:
        assert _mode(d) & 0o070 == 0o070, f"{d} is {oct(_mode(d))}: the group cannot add to it"
    files = [g / "refs" / "notes" / "tvault", g / "refs" / "tvault" / "aliases", g / "tvault" / "index.sqlite"]
    files += list((g / "refs" / "tvault" / "entries").iterdir())
    files += list((g / "objects" / "pack").glob("*.keep"))
    for f in files:
        assert _mode(f) & 0o060 == 0o060, f"{f} is {oct(_mode(f))}: the group cannot update it"
    git(proj, "fsck", "--no-progress")


def test_umask_is_left_as_it_was_outside_shared_repositories(repo):
    import tvault_git as tvault_api

    old = os.umask(0o027)
    try:
        tvault_api.log_all(torch.nn.Linear(2, 2))
        assert os.umask(0o027) == 0o027
    finally:
        os.umask(old)


def test_a_permission_error_is_not_retried_as_a_lock(repo):
    from tvault_git.errors import StorageError
    from tvault_git.gitutil.repo import open_repo, retry_locked

    calls = []

    def step():
        calls.append(1)
        raise OSError("failed to create locked file '.git/refs/tvault/aliases.lock': Permission denied")

    with pytest.raises(StorageError, match="permission denied"):
        retry_locked(step, "refs/tvault/aliases", repo=open_repo(str(repo)))
    assert calls == [1]
