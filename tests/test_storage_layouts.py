"""Repositories laid out the ways git allows: linked work trees, GIT_DIR/GIT_WORK_TREE, shared groups."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import tvault_git as tv
from tests.helpers import GIT_ENV, git, init_repo, tvault

LOG = (
    "import sys, torch; sys.path.insert(0, '.'); import tvault_git as tv; from model import Net; "
    "torch.manual_seed(1); e = tv.log_all(Net(), result=0.5); print(e.id)"
)


def _py(cwd: Path, code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.update(GIT_ENV)
    e.update(env or {})
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, env=e)


def test_log_all_and_load_inside_a_linked_worktree(tmp_path):
    main = init_repo(tmp_path / "A")
    git(main, "worktree", "add", "-q", str(tmp_path / "W"), "-b", "exp")
    w = tmp_path / "W"
    p = _py(w, LOG)
    assert p.returncode == 0, p.stderr
    eid = p.stdout.strip()
    # everything went to the common git dir: nothing under .git/worktrees/W but git's own files
    assert not (main / ".git" / "worktrees" / "W" / "objects").exists()
    assert not (main / ".git" / "worktrees" / "W" / "tvault").exists()
    load = "import torch, tvault_git as tv; from model import Net; torch.manual_seed(1); n = Net(); "
    load += f"sd = tv.load({eid!r}); assert all(torch.equal(sd[k], v) for k, v in n.state_dict().items()); print('ok')"
    for where in (w, main):
        p = _py(where, "import sys; sys.path.insert(0, '.'); " + load)
        assert p.stdout.strip() == "ok", p.stderr
    assert eid[:10] in tvault(main, "log").stdout
    assert eid[:10] in tvault(w, "find").stdout  # the linked checkout reads the same registry
    assert "tvault-blobs/** -delta -diff" in (main / ".git" / "info" / "attributes").read_text()
    git(main, "fsck", "--full")
    git(w, "gc", "-q")
    p = _py(w, "import sys; sys.path.insert(0, '.'); " + load)
    assert p.stdout.strip() == "ok", p.stderr


def test_git_dir_and_work_tree_are_honoured_as_git_does(tmp_path):
    a = init_repo(tmp_path / "A")
    b = init_repo(tmp_path / "B")
    env = {"GIT_DIR": str(a / ".git"), "GIT_WORK_TREE": str(a)}
    # cwd in B, GIT_DIR=A: git means A, and so must tvault (log, CLI, subprocesses)
    p = _py(b, LOG.replace("sys.path.insert(0, '.')", f"sys.path.insert(0, {str(a)!r})"), env)
    assert p.returncode == 0, p.stderr
    eid = p.stdout.strip()
    assert eid[:10] in tvault(b, "log", env=env).stdout
    assert eid[:10] not in tvault(b, "log").stdout
    assert eid[:10] in tvault(a, "log").stdout
    # a separate git dir with its work tree elsewhere, through git's own options
    sep = tmp_path / "sep.git"
    shutil.move(str(a / ".git"), str(sep))
    out = subprocess.run(
        ["git", f"--git-dir={sep}", f"--work-tree={a}", "tvault", "log"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]},
    )
    assert out.returncode == 0 and eid[:10] in out.stdout, out.stderr
    p = _py(tmp_path, f"import tvault_git as tv; print(len(tv.load({eid!r})))", {"GIT_DIR": str(sep)})
    assert p.returncode == 0 and p.stdout.strip() == "4", p.stderr
    bad = tvault(tmp_path, "log", check=False, env={"GIT_DIR": str(tmp_path / "nope")})
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def _modes(root: Path) -> list[tuple[str, int]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            out.append((os.path.relpath(p, root), os.lstat(p).st_mode))
    return out


def test_shared_group_repository_gets_gits_modes(tmp_path, monkeypatch):
    r = tmp_path / "shared"
    r.mkdir()
    git(r, "init", "-q", "--shared=group", "-b", "main")
    init_repo(r)
    monkeypatch.chdir(r)
    before = {rel for rel, _ in _modes(r / ".git")}
    old = os.umask(0o022)
    try:
        tv.log_all(torch.nn.Linear(3, 3), result=1.0, name="m", repo=str(r))
        tvault(r, "alias", "m@1", "prod")
        tv.log_all(torch.nn.Linear(3, 3), result=2.0, name="m", repo=str(r))
        tvault(r, "find", "--name", "m")  # builds the query cache file
    finally:
        os.umask(old)
    bad = []
    new = [(rel, mode) for rel, mode in _modes(r / ".git") if rel not in before]
    assert any(rel.startswith("refs/tvault") for rel, _ in new)
    assert "tvault/index.sqlite" in {rel for rel, _ in new}
    for rel, mode in new:
        if stat.S_ISDIR(mode):
            if (mode & 0o070) != 0o070 or not mode & stat.S_ISGID:
                bad.append((rel, oct(mode)))
        elif stat.S_ISREG(mode) and (not mode & 0o040 or (mode & 0o200 and not mode & 0o020)):
            bad.append((rel, oct(mode)))
    assert not bad, bad


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_two_users_of_one_group_both_log(tmp_path):
    """Two real uids in one group, umask 022, as in the report: both keep logging, git keeps working."""
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="tvault-shared-", dir="/tmp"))  # pytest's own temp root is 0700
    os.chmod(top, 0o755)
    try:
        _two_users(top)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _two_users(tmp_path: Path) -> None:
    r = tmp_path / "shared"
    r.mkdir()
    git(r, "init", "-q", "--shared=group", "-b", "main")
    init_repo(r)
    gid = 4242
    subprocess.run(["chgrp", "-R", str(gid), str(r)], check=True)
    subprocess.run(["chmod", "-R", "g+rwX", str(r)], check=True)
    env = {
        **os.environ,
        **GIT_ENV,
        "HOME": str(tmp_path),
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
    }
    (tmp_path / ".gitconfig").write_text("[safe]\n\tdirectory = *\n")  # libgit2 reads it there only
    os.chmod(tmp_path / ".gitconfig", 0o644)

    def as_user(uid: int, *cmd: str) -> subprocess.CompletedProcess:
        pre = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"]
        return subprocess.run(
            ["sh", "-c", 'umask 022; exec "$@"', "sh", *pre, *cmd], cwd=r, capture_output=True, text=True, env=env
        )

    code = "import tvault_git as tv, torch; e = tv.log_all(torch.nn.Linear(3, 3), name='m'); print(e.index)"
    for uid in (4301, 4302, 4301, 4302):
        p = as_user(uid, sys.executable, "-c", code)
        assert p.returncode == 0, p.stderr
    cli = "import sys; from tvault_git.cli import main; main(sys.argv[1:])"
    p = as_user(4302, sys.executable, "-c", cli, "alias", "m@1", "prod")
    assert p.returncode == 0, p.stderr
    p = as_user(4301, "git", "hash-object", "-w", "--stdin")
    assert p.returncode == 0, p.stderr
    assert len(tvault(r, "log").stdout.strip().splitlines()) >= 4
    git(r, "fsck", "--full")


def test_umask_is_left_as_it_was_outside_shared_repositories(repo):
    old = os.umask(0o027)
    try:
        tv.log_all(torch.nn.Linear(2, 2))
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
