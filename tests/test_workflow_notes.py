"""``git log --notes=tvault`` lines a person can read, still one independent line per entry for merges."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types

import pygit2
import torch

import tvault_git as tv
from tests.helpers import ROOT, git, import_fresh, tvault
from tvault_git.registry import notes


def _old_parse():
    """``parse`` of the 1.0 reader exactly as released (tvault_git/notes.py at cfe0142)."""
    src = subprocess.run(
        ["git", "-C", str(ROOT), "show", "cfe0142:tvault_git/notes.py"], capture_output=True, text=True, check=True
    ).stdout
    src = "\n".join(ln for ln in src.splitlines() if not ln.startswith(("from tvault_git", "from .")))
    mod = types.ModuleType("notes_1_0")
    mod.__dict__.update(NOTES_REF="refs/notes/tvault", commit_to_ref=None, merge_history=None, retry_locked=None)
    sys.modules["notes_1_0"] = mod  # dataclasses look their module up
    try:
        exec(compile(src, "notes_1_0.py", "exec"), mod.__dict__)
    finally:
        del sys.modules["notes_1_0"]
    return mod.parse


def test_git_log_notes_lines_are_readable(repo):
    torch.manual_seed(0)
    Net = import_fresh("model").Net
    a = tv.log_all(Net(), name="mnist", result=0.99609375)
    b = tv.log_all(Net(), name="mnist", result=0.5)
    c = tv.log_all(Net(), result=1 / 3)
    shown = git(repo, "log", "--notes=tvault", "-1").stdout
    assert f"| mnist@1 result 0.9961 entry {a.id[:10]}" in shown
    assert f"| mnist@2 result 0.5 entry {b.id[:10]}" in shown
    assert f"| Net result 0.3333 entry {c.id[:10]}" in shown
    # the machine part is what 1.0 wrote, so a 1.0 reader sees the same entries, results and times
    text = git(repo, "notes", "--ref=tvault", "show", "HEAD").stdout
    old = _old_parse()(text)
    new = notes.parse(text)
    assert [(n.seq, n.entry, n.name, n.result, n.created) for n in old] == [
        (n.seq, n.entry, n.name, n.result, n.created) for n in new
    ]
    assert [n.entry for n in new] == [a.id, b.id, c.id] and new[0].result == "0.99609375"


def test_old_lines_still_read(repo):
    """Notes written by 1.0 (no display part) and hand-written lines parse as before."""
    torch.manual_seed(0)
    e = tv.log_all(import_fresh("model").Net(), name="mnist", result=0.75)
    r = pygit2.Repository(str(repo))
    created = e.manifest["created"]
    line = f"model 0 {e.id} mnist result=0.75 created={created}\n"  # exactly what 1.0 wrote
    git(repo, "notes", "--ref=tvault", "add", "-f", "-m", line.strip(), "HEAD")
    assert notes.read(r, str(r.head.target))[0].display is None
    rows = json.loads(tvault(repo, "log", "--json").stdout)
    assert [(x["id"], x["name"], x["version"], x["result"]) for x in rows] == [(e.id, "mnist", 1, 0.75)]
    assert tvault(repo, "show", "mnist@1").returncode == 0


def test_lines_merge_with_plain_git_cat_sort_uniq(repo, tmp_path):
    """Two clones log on the same commit; git's own union merge keeps both readable lines."""
    hub = tmp_path / "hub.git"
    git(tmp_path, "init", "-q", "--bare", str(hub))
    git(repo, "remote", "add", "origin", str(hub))
    git(repo, "push", "-q", "origin", "main")
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", "-b", "main", str(hub), str(other))
    torch.manual_seed(0)
    a = tv.log_all(import_fresh("model").Net(), name="mnist", result=0.5)
    b = tv.log_all(import_fresh("model").Net(), name="mnist", result=0.6, repo=str(other))
    git(repo, "push", "-q", "origin", "refs/tvault/*", "refs/notes/tvault")
    git(
        other,
        "fetch",
        "-q",
        "origin",
        "refs/tvault/entries/*:refs/tvault/entries/*",
        "+refs/notes/tvault:refs/notes/tvault-origin",
    )
    git(other, "notes", "--ref=tvault", "merge", "-q", "-s", "cat_sort_uniq", "refs/notes/tvault-origin")
    text = git(other, "notes", "--ref=tvault", "show", "HEAD").stdout
    assert len(text.splitlines()) == 2 and all(
        re.search(r" \| mnist@1 result 0\.[56] entry ", ln) for ln in text.splitlines()
    )
    rows = json.loads(tvault(other, "log", "--json").stdout)
    assert sorted(x["id"] for x in rows) == sorted([a.id, b.id]) and sorted(x["version"] for x in rows) == [1, 2]
