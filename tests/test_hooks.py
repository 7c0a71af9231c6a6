"""git tvault install/uninstall, the post-commit hook (dirty-tree entries follow their code) and post-rewrite."""

from __future__ import annotations

import json
from pathlib import Path

import pygit2
from conftest import git, import_fresh, write
from conftest import tvault as run_tvault

import tvault_git as tvault
from tvault_git.registry import notes as notes


def _log(result: float):
    return tvault.log_all(import_fresh("model").Net(), result=result, name="mnist")


def _on(repo: Path, rev: str) -> list[str]:
    r = pygit2.Repository(str(repo))
    return [n.entry for n in notes.read(r, str(r.revparse_single(rev).id))]


def test_install_chains_user_hook_and_uninstall_restores(repo: Path) -> None:
    hook = repo / ".git" / "hooks" / "post-commit"
    hook.write_text('#!/bin/sh\necho user-hook-ran >> "$(git rev-parse --git-dir)/user-hook.log"\n')
    hook.chmod(0o755)
    out = run_tvault(repo, "install").stdout
    assert "kept your post-commit hook" in out
    assert git(repo, "config", "--get-all", "notes.displayRef").stdout.split() == ["refs/notes/tvault"]
    run_tvault(repo, "install")  # idempotent: no double chaining, no duplicate config
    assert git(repo, "config", "--get-all", "notes.displayRef").stdout.split() == ["refs/notes/tvault"]
    write(repo / "README", "x\n")
    git(repo, "add", "README")
    p = git(repo, "commit", "-q", "-m", "readme")
    assert "warning" not in p.stderr
    assert (repo / ".git" / "user-hook.log").read_text() == "user-hook-ran\n"
    e = _log(0.5)
    assert e.id[:10] in git(repo, "log", "-1").stdout  # notes.displayRef: git log shows the entry
    run_tvault(repo, "uninstall")
    assert "user-hook-ran" in hook.read_text() and "tvault" not in hook.read_text()
    assert not (repo / ".git" / "hooks" / "post-rewrite").exists()
    assert git(repo, "config", "--get-all", "notes.displayRef", check=False).stdout == ""


def test_dirty_entry_attached_to_commit_with_exactly_its_code(repo: Path) -> None:
    run_tvault(repo, "install")
    base = git(repo, "rev-parse", "HEAD").stdout.strip()
    src = (repo / "model.py").read_text()
    (repo / "model.py").write_text(src.replace("WIDTH = 16", "WIDTH = 8"))
    e = _log(0.7)
    assert e.commit == base and tvault.get(e.id)["dirty"]
    (repo / "scratch.txt").write_text("untracked, not part of the code\n")
    p = git(repo, "commit", "-q", "-am", "narrower")
    assert "attached 1 entry" in p.stderr
    assert _on(repo, "HEAD") == [e.id] and _on(repo, "HEAD~1") == [e.id]  # still reachable from its base
    found = json.loads(run_tvault(repo, "find", "--hash", "HEAD", "--json").stdout)
    assert [x["id"] for x in found] == [e.id]
    rows = json.loads(run_tvault(repo, "log", "--json").stdout)
    assert [x["id"] for x in rows] == [e.id]  # listed once
    assert tvault.get(e.id)["commit"] == git(repo, "rev-parse", "HEAD").stdout.strip()
    assert [x["id"] for x in json.loads(run_tvault(repo, "history", "mnist", "--json").stdout)] == [e.id]
    # trained on other code than what gets committed: not attached
    (repo / "model.py").write_text(src.replace("WIDTH = 16", "WIDTH = 4"))
    e2 = _log(0.8)
    (repo / "model.py").write_text(src.replace("WIDTH = 16", "WIDTH = 5"))
    git(repo, "commit", "-q", "-am", "other width")
    assert _on(repo, "HEAD") == []
    assert e2.id in _on(repo, "HEAD~1")
    git(repo, "fsck", "--strict")


def test_amend_and_rebase_move_notes(repo: Path) -> None:
    run_tvault(repo, "install")
    e1 = _log(0.1)
    old = git(repo, "rev-parse", "HEAD").stdout.strip()
    git(repo, "commit", "-q", "--amend", "-m", "model code (amended)")
    new = git(repo, "rev-parse", "HEAD").stdout.strip()
    assert new != old and _on(repo, new) == [e1.id] and _on(repo, old) == []
    assert [x["id"] for x in json.loads(run_tvault(repo, "find", "--hash", "HEAD", "--json").stdout)] == [e1.id]
    # a feature branch with an entry on each of two commits, rebased onto a moved main
    git(repo, "checkout", "-q", "-b", "feature")
    ids = []
    for i in range(2):
        write(repo / f"f{i}.py", f"X = {i}\n")
        git(repo, "add", ".")
        git(repo, "commit", "-q", "-m", f"feature {i}")
        ids.append(_log(0.2 + i).id)
    git(repo, "checkout", "-q", "main")
    write(repo / "other.py", "Y = 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "main moves")
    git(repo, "checkout", "-q", "feature")
    p = git(repo, "rebase", "-q", "main")
    assert "warning" not in p.stderr
    assert _on(repo, "HEAD~1") == [ids[0]] and _on(repo, "HEAD") == [ids[1]]
    assert tvault.get("HEAD:0")["id"] == ids[1]
    assert json.loads(run_tvault(repo, "log", "--json").stdout).__len__() == 3
    git(repo, "fsck", "--strict")


def test_broken_hook_never_fails_a_commit(repo: Path) -> None:
    from tvault_git import hooks as hooks

    hooks.install(pygit2.Repository(str(repo)), python="/nonexistent/python")
    write(repo / "a.txt", "a\n")
    git(repo, "add", ".")
    p = git(repo, "commit", "-q", "-m", "still commits")
    assert p.returncode == 0 and "tvault: warning" in p.stderr
    assert git(repo, "log", "-1", "--format=%s").stdout.strip() == "still commits"
