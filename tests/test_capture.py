"""Source capture finds the model's code, and only it, by object not by name."""

from __future__ import annotations

import json
import subprocess
import sys

import pygit2
import torch
from conftest import git, import_fresh, write

import tvault_git as tvault
from tvault_git.registry import entries as registry
from tvault_git.spec.format import SOURCE_INDEX


def _source(repo, entry_id):
    r = pygit2.Repository(str(repo))
    idx = registry.read_json(r, entry_id, SOURCE_INDEX)
    tree = registry.entry_tree(r, entry_id)
    texts = {f"{o['module']}.{o['qualname']}": registry.read_blob(r, tree, o["path"]).decode() for o in idx["objects"]}
    return idx, texts


def test_transitive_helpers_constants_and_externals(repo):
    model = import_fresh("model")
    e = tvault.log_all(model.Net())
    idx, texts = _source(repo, e.id)
    assert set(texts) == {"model.Net", "model.act", "model.WIDTH", "helpers.scale"}
    assert "# a helper the model calls" in texts["helpers.scale"]  # comments kept
    assert texts["model.WIDTH"].strip() == "WIDTH = 16  # hidden width"
    roles = {f"{o['module']}.{o['qualname']}": o["role"] for o in idx["objects"]}
    assert roles["model.Net"] == "module" and roles["helpers.scale"] == "dependency"
    ext = {x["qualname"]: x for x in idx["external"]}
    assert ext["torch.nn.modules.linear.Linear"]["package"] == "torch"
    assert ext["torch.nn.modules.linear.Linear"]["version"] == torch.__version__
    assert not any("torch" in k for k in texts)  # installed code is never copied


def test_same_class_name_in_two_files_is_not_confused(repo):
    write(
        repo / "a.py",
        """
        import torch.nn as nn
        K = 3
        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv1d(1, 1, K)
        """,
    )
    write(
        repo / "b.py",
        """
        import torch.nn as nn
        import a
        def conv3x3(c):
            return nn.Conv1d(c, c, 3)
        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = conv3x3(2)
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.first = a.Block()
                self.second = Block()
        """,
    )
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "blocks")
    b = import_fresh("b")
    e = tvault.log_all(b.Net())
    idx, texts = _source(repo, e.id)
    assert {"a.Block", "b.Block", "b.Net", "b.conv3x3", "a.K"} <= set(texts)
    assert "K)" in texts["a.Block"] and "conv3x3(2)" in texts["b.Block"]
    files = {f"{o['module']}.{o['qualname']}": o["file"] for o in idx["objects"]}
    assert files["a.Block"] == "a.py" and files["b.Block"] == "b.py"


def test_model_defined_in_main_script(repo):
    write(
        repo / "train.py",
        """
        import torch, torch.nn as nn
        import tvault_git as tvault

        def gelu2(x):
            return torch.nn.functional.gelu(x) * 2

        class Tiny(nn.Module):
            def __init__(self):
                super().__init__()
                self.l = nn.Linear(2, 2)
            def forward(self, x):
                return gelu2(self.l(x))

        e = tvault.log_all(Tiny(), result=0.5)
        print(e.id)
        """,
    )
    out = subprocess.run([sys.executable, "train.py"], cwd=repo, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    idx, texts = _source(repo, out.stdout.strip())
    assert set(texts) == {"__main__.Tiny", "__main__.gelu2"}
    assert idx["objects"][0]["file"] == "train.py"


def test_no_source_available_is_recorded_not_fatal(repo, monkeypatch):
    import types

    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))  # as in Jupyter: no __file__
    ns: dict = {"__name__": "__main__"}
    code = "import torch.nn as nn\nclass Ghost(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.l = nn.Linear(1, 1)\n"
    exec(compile(code, "<ipython-input-1>", "exec"), ns)  # like a notebook cell
    e = tvault.log_all(ns["Ghost"]())
    idx, texts = _source(repo, e.id)
    assert texts == {}
    assert idx["missing"] and "Ghost" in idx["missing"][0]["qualname"]
    assert "Ghost" in tvault.get(e.id)["model"]["class"]


def test_dirty_work_tree_records_patch(repo):
    model_src = (repo / "model.py").read_text()
    (repo / "model.py").write_text(model_src.replace("WIDTH = 16", "WIDTH = 32"))
    (repo / "notes.txt").write_text("untracked")
    model = import_fresh("model")
    e = tvault.log_all(model.Net())
    meta = tvault.get(e.id)
    assert meta["dirty"] is True
    assert "notes.txt" in meta["untracked"]
    r = pygit2.Repository(str(repo))
    patch = registry.read_blob(r, registry.entry_tree(r, e.id), "patch.diff").decode()
    assert "+WIDTH = 32" in patch
    # the patch applies to the training commit and reproduces the code
    git(repo, "stash")
    (repo / "p.diff").write_text(patch)
    git(repo, "apply", "p.diff")
    assert "WIDTH = 32" in (repo / "model.py").read_text()


def test_clean_tree_and_branch(repo):
    model = import_fresh("model")
    meta = tvault.get(tvault.log_all(model.Net()).id)
    assert meta["dirty"] is False and meta["branch"] == "main"
    assert meta["author"] == {"name": "Test Author", "email": "author@example.com"}
    json.dumps(meta)
