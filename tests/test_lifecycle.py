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


def _commit(repo: Path, fname: str, text: str, msg: str) -> str:
    (repo / fname).write_text(text)
    git(repo, "add", fname)
    git(repo, "commit", "-q", "-m", msg)
    return git(repo, "rev-parse", "HEAD").stdout.strip()


def _log_rows(repo: Path) -> dict[str, dict]:
    return {r["id"]: r for r in json.loads(tvault(repo, "log", "--json").stdout)}


def _gone(repo: Path, sha: str) -> bool:
    return git(repo, "cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode != 0


def test_rewrites_without_hooks_orphans_are_listed_survive_notes_prune_and_reattach(repo):
    from model import Net

    git(repo, "checkout", "-q", "-b", "feature")
    c1 = _commit(repo, "a.txt", "a\n", "c1")
    a = tv.log_all(Net(), name="m", result=0.1)
    c2 = _commit(repo, "b.txt", "b\n", "c2")
    b = tv.log_all(Net(), name="m", result=0.2)
    c3 = _commit(repo, "c.txt", "c\n", "c3")
    d = tv.log_all(Net(), name="m", result=0.4)  # its commit is dropped below: nothing can match it
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    git(repo, "checkout", "-q", "main")
    _commit(repo, "z.txt", "z\n", "on main")
    git(repo, "checkout", "-q", "feature")
    git(repo, "rebase", "-q", "main")  # c1, c2 rewritten: new trees, same author, date and message
    c4 = _commit(repo, "e.txt", "e\n", "c4")
    c = tv.log_all(Net(), name="m", result=0.3)
    git(repo, "commit", "-q", "--amend", "-m", "c4 reworded")  # same tree, new message
    before = _versions(repo)
    assert before == {a.id: 1, b.id: 2, d.id: 3, c.id: 4}
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    assert all(_gone(repo, s) for s in (c1, c2, c3, c4))

    rows = _log_rows(repo)
    assert {i for i, r in rows.items() if r["orphaned"]} == {a.id, b.id, c.id, d.id}
    p = tvault(repo, "log")
    assert p.stdout.count("(orphaned: commit gone)") == 4 and "4 entries are orphaned" in p.stderr
    assert "is gone" in tvault(repo, "show", a.id).stdout

    git(repo, "notes", "--ref=tvault", "prune")  # plain git drops the notes of the gone commits
    assert _log_rows(repo) == {}
    assert "4 entries are orphaned" in tvault(repo, "log").stderr  # still known, from the refs
    assert _versions(repo) == before and names.resolve(open_repo(str(repo)), "m", "2").id == b.id
    listed = json.loads(tvault(repo, "orphans", "--json").stdout)
    assert {(o["id"], o["kind"]) for o in listed} == {(x.id, "unindexed") for x in (a, b, c, d)}
    shown = tvault(repo, "show", b.id).stdout
    assert "orphaned" in shown and "no note lists it" in shown
    assert tv.load(b.id, repo=str(repo)) is not None  # loadable by id throughout
    fsck = tvault(repo, "fsck")
    assert fsck.stdout.count("orphaned") == 4 and "4 orphaned" in fsck.stderr

    dry = tvault(repo, "reattach", "--dry-run")
    assert dry.stdout.count("would move") == 3 and _log_rows(repo) == {}
    done = tvault(repo, "reattach")
    assert "(by same author, date and message)" in done.stdout and "(by same tree)" in done.stdout
    assert f"unmatched  {d.id[:10]}" in done.stdout
    rows = _log_rows(repo)
    new = {x: git(repo, "rev-parse", f"feature{s}").stdout.strip() for x, s in ((a.id, "~2"), (b.id, "~1"), (c.id, ""))}
    assert {i: r["commit"] for i, r in rows.items()} == new
    assert not any(r["orphaned"] for r in rows.values())
    assert _versions(repo) == before  # published= travelled with the lines; the unmatched one keeps its number
    assert [r["id"] for r in json.loads(tvault(repo, "find", "--hash", "HEAD", "--json").stdout)] == [c.id]
    assert [x["id"] for x in json.loads(tvault(repo, "orphans", "--json").stdout)] == [d.id]
    git(repo, "fsck", "--full")
    assert tvault(repo, "reattach").stdout.count("unmatched") == 1  # a second run changes nothing


def test_reattach_follows_the_reflog_for_an_amend_that_changed_code_and_message(repo):
    from model import Net

    _commit(repo, "a.txt", "a\n", "first")
    e = tv.log_all(Net(), result=0.5)
    old = git(repo, "rev-parse", "HEAD").stdout.strip()
    (repo / "a.txt").write_text("changed\n")
    git(repo, "commit", "-q", "-a", "--amend", "-m", "something else")
    new = git(repo, "rev-parse", "HEAD").stdout.strip()
    listed = json.loads(tvault(repo, "orphans", "--json").stdout)
    assert [(o["id"], o["commit"], o["kind"]) for o in listed] == [(e.id, old, "unreachable")]
    out = tvault(repo, "reattach").stdout
    assert "(by the reflog (commit --amend))" in out
    assert [r["id"] for r in json.loads(tvault(repo, "find", "--hash", new, "--json").stdout)] == [e.id]
    assert json.loads(tvault(repo, "orphans", "--json").stdout) == []
