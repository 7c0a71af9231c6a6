"""Code from a sibling git repository on sys.path (``pip install -e ../mylib``): its commit is recorded."""

from __future__ import annotations

import sys

import pytest
import torch

import tvault_git as tvault
from tests.capture_helpers import capture_warnings, commit_all, diff_json, diff_text, show_json
from tests.helpers import git, import_fresh, init_repo, write
from tests.helpers import tvault as tvault_cli

LIB = """
import torch.nn as nn


def act(x):
    return x.relu()


class Gate(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        return act(self.fc(x))
"""

NET = """
import torch.nn as nn
from mylib import Gate, act


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate = Gate()

    def forward(self, x):
        return act(self.gate(x))
"""


@pytest.fixture
def lib(repo, tmp_path, monkeypatch):
    root = init_repo(tmp_path / "mylib", with_model=False)
    write(root / "mylib" / "__init__.py", LIB)
    commit_all(root, "mylib v1")
    monkeypatch.syspath_prepend(str(root))
    write(repo / "net.py", NET)
    commit_all(repo, "net")
    yield root
    for m in ("mylib", "net"):
        sys.modules.pop(m, None)


def _log():
    for m in ("mylib", "net"):
        sys.modules.pop(m, None)
    torch.manual_seed(0)
    return capture_warnings(tvault.log_all, import_fresh("net").Net())


def _head(root):
    return git(root, "rev-parse", "HEAD").stdout.strip()


def test_sibling_repo_code_records_its_commit(repo, lib):
    e, warned = _log()
    src = show_json(repo, e.id)["source"]
    ext = {x["qualname"]: x for x in src["external"]}
    assert ext["mylib.Gate"]["repo"] == {
        "path": "../mylib",
        "commit": _head(lib),
        "branch": "main",
        "dirty": False,
        "patch_bytes": 0,
        "untracked": 0,
    }
    assert ext["mylib.act"]["repo"]["commit"] == _head(lib)  # functions too, not only classes
    assert not src["missing"] and not warned  # a clean commit reproduces the code
    assert f"library ../mylib at {_head(lib)[:10]}" in tvault_cli(repo, "show", e.id).stdout


def test_sibling_repo_commit_change_is_diffed(repo, lib):
    a, _ = _log()
    c1 = _head(lib)
    write(lib / "mylib" / "__init__.py", LIB.replace("x.relu()", "x.tanh()"))
    commit_all(lib, "mylib: tanh")
    b, _ = _log()
    ctx = diff_json(repo, a.id, b.id)["context"]
    assert ctx["changed"]
    assert ctx["libraries"] == [
        {"package": "mylib", "a": f"../mylib at {c1[:10]}", "b": f"../mylib at {_head(lib)[:10]}"}
    ]
    assert f"library mylib: ../mylib at {c1[:10]} -> ../mylib at {_head(lib)[:10]}" in diff_text(repo, a.id, b.id)


def test_dirty_sibling_repo_is_reported_missing_with_one_warning(repo, lib):
    write(lib / "mylib" / "__init__.py", LIB.replace("x.relu()", "x.sigmoid()"))
    e, warned = _log()
    src = show_json(repo, e.id)["source"]
    rec = next(x for x in src["external"] if x["qualname"] == "mylib.Gate")["repo"]
    assert rec["dirty"] is True and rec["patch_bytes"] > 0
    assert {m["qualname"] for m in src["missing"]} == {"mylib.Gate", "mylib.act"}
    assert len(warned) == 1 and "mylib.Gate" in warned[0]
    assert "(dirty: " in tvault_cli(repo, "show", e.id).stdout
