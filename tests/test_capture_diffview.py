"""Diff readability for captured code: file line numbers in hunks, renames shown as renames."""

from __future__ import annotations

import sys

import torch
from capture_helpers import commit_all, diff_json, diff_text
from conftest import import_fresh, write

import tvault_git as tvault

SRC = """
import torch.nn as nn


def unused_helper():
    return 1


class MultiLayerPerceptron(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 4)
        self.act = nn.GELU()
        self.out = nn.Linear(4, 1)

    def forward(self, x):
        h = self.act(self.fc(x))
        return self.out(h)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.mlp = MultiLayerPerceptron()

    def forward(self, x):
        return self.mlp(x)
"""


def _log(repo):
    sys.modules.pop("ren", None)
    torch.manual_seed(0)
    return tvault.log_all(import_fresh("ren").Net())


def test_hunk_line_numbers_count_from_the_file(repo):
    write(repo / "ren.py", SRC)
    commit_all(repo, "v1")
    a = _log(repo)
    write(repo / "ren.py", SRC.replace("return self.out(h)", "return self.out(h) * 2"))
    commit_all(repo, "v2")
    b = _log(repo)
    d = diff_json(repo, a.id, b.id)
    item = next(it for it in d["classes"]["items"] if it["name"] == "ren.MultiLayerPerceptron")
    hunk = next(ln for ln in item["diff"] if ln.startswith("@@"))
    line = SRC.lstrip("\n").splitlines().index("        return self.out(h)") + 1
    start = int(hunk.split()[1].split(",")[0].lstrip("-"))
    assert start <= line < start + 7, hunk  # the hunk sits where the change is in ren.py


def test_renamed_class_is_shown_as_renamed(repo):
    write(repo / "ren.py", SRC)
    commit_all(repo, "v1")
    a = _log(repo)
    write(repo / "ren.py", SRC.replace("MultiLayerPerceptron", "FeedForward"))
    commit_all(repo, "rename")
    b = _log(repo)
    d = diff_json(repo, a.id, b.id)
    st = {it["name"]: it["status"] for it in d["classes"]["items"]}
    assert st["ren.FeedForward"] == "renamed" and "ren.MultiLayerPerceptron" not in st
    assert "renamed class ren.MultiLayerPerceptron (ren.py) -> ren.FeedForward (ren.py)" in diff_text(repo, a.id, b.id)
