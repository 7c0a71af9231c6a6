"""The code that ran, not a later edit: drift between import and log_all, untracked files, honest warnings."""

from __future__ import annotations

import json
import sys

import pygit2
import pytest
from capture_helpers import capture_warnings, commit_all, show_json, source
from conftest import git, import_fresh, write
from conftest import tvault as tvault_cli

import tvault_git as tvault
from tvault_git.registry import entries as registry

MODEL = """
import torch.nn as nn

class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 4)
        self.act = nn.GELU()

    def forward(self, x):
        return self.act(self.fc(x))
"""


@pytest.fixture
def fresh_modules():
    before = set(sys.modules)
    yield
    for m in set(sys.modules) - before:
        if not m.startswith(("torch", "tvault_git", "numpy")):
            sys.modules.pop(m, None)


def _patch(repo, eid):
    r = pygit2.Repository(str(repo))
    return (registry.read_blob(r, registry.entry_tree(r, eid), "patch.diff") or b"").decode()


def test_edit_after_import_records_the_committed_code_that_ran(repo, fresh_modules):
    write(repo / "mlp.py", MODEL)
    commit_all(repo, "mlp")
    m = import_fresh("mlp")
    net = m.MLP()
    # the researcher edits the file while the job runs
    (repo / "mlp.py").write_text(MODEL.replace("nn.GELU()", "nn.SiLU()"))
    e, warned = capture_warnings(tvault.log_all, net)
    _, objs = source(repo, e.id)
    assert "nn.GELU()" in objs["mlp.MLP"]["text"] and "SiLU" not in objs["mlp.MLP"]["text"]
    assert "SiLU" not in _patch(repo, e.id)  # the later edit is not "changes at training time"
    meta = tvault.get(e.id)
    assert meta["drift"] == [{"file": "mlp.py", "ran": "commit"}]
    assert len(warned) == 1 and "mlp.py changed on disk after it was imported" in warned[0]
    out = tvault_cli(repo, "show", e.id).stdout
    assert "mlp.py changed on disk after it was imported" in out


def test_unprovable_code_is_missing_not_recorded(repo, fresh_modules):
    write(repo / "mlp.py", MODEL)
    commit_all(repo, "mlp")
    (repo / "mlp.py").write_text(MODEL.replace("nn.GELU()", "nn.ReLU()"))  # dirty at import time
    m = import_fresh("mlp")
    net = m.MLP()
    (repo / "mlp.py").write_text(MODEL.replace("nn.GELU()", "nn.SiLU()"))  # edited again while running
    e, warned = capture_warnings(tvault.log_all, net)
    idx, objs = source(repo, e.id)
    assert "mlp.MLP" not in objs
    assert any(x["qualname"] == "mlp.MLP" and "changed on disk" in x["reason"] for x in idx["missing"])
    assert "SiLU" not in _patch(repo, e.id)
    assert tvault.get(e.id)["drift"] == [{"file": "mlp.py", "ran": "unknown"}]
    assert len(warned) == 1 and "mlp.MLP" in warned[0]


def test_untracked_model_file_is_in_the_patch_and_show(repo, fresh_modules, tmp_path):
    write(repo / "newnet.py", MODEL)  # never added to git
    m = import_fresh("newnet")
    e = tvault.log_all(m.MLP())
    meta = tvault.get(e.id)
    assert meta["dirty"] is True and "newnet.py" in meta["untracked"]
    patch = _patch(repo, e.id)
    assert "+++ b/newnet.py" in patch
    # commit + patch reproduces the code: apply to a fresh checkout of the training commit
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    (clone / "p.diff").write_text(patch)
    git(clone, "apply", "p.diff")
    assert (clone / "newnet.py").read_text() == (repo / "newnet.py").read_text()
    out = tvault_cli(repo, "show", e.id).stdout
    assert "untracked" in out and "newnet.py" in out


def test_complete_capture_warns_nothing_and_gaps_warn_once(repo, monkeypatch):
    model = import_fresh("model")
    e, warned = capture_warnings(tvault.log_all, model.Net())
    assert warned == [] and tvault.get(e.id)["missing"] == []
    import types

    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    ns: dict = {"__name__": "__main__"}
    code = "import torch.nn as nn\nclass Ghost(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.l = nn.Linear(1, 1)\n"
    exec(compile(code, "<string>", "exec"), ns)
    e2, warned = capture_warnings(tvault.log_all, ns["Ghost"]())
    assert len(warned) == 1 and "\n" not in warned[0] and "__main__.Ghost" in warned[0]
    meta = tvault.get(e2.id)
    assert [x["qualname"] for x in meta["missing"]] == ["__main__.Ghost"]
    js = show_json(repo, e2.id)
    assert js["manifest"]["missing"][0]["qualname"] == "__main__.Ghost"
    out = tvault_cli(repo, "show", e2.id).stdout
    assert "capture incomplete" in out.lower()


def _as_format_1_0(repo, entry_id: str) -> str:
    """Rewrite an entry the way tvault-git 1.0 wrote it: no configuration, values, missing or drift."""
    import json

    from tvault_git.registry import notes

    r = pygit2.Repository(str(repo))
    old = r[entry_id].peel(pygit2.Commit)
    tb = r.TreeBuilder(old.tree)
    tb.remove("configuration.json")
    man = json.loads(old.tree["tvault.json"].data)
    man["format"] = "1.0"
    man.pop("missing")
    man.pop("drift")
    src = json.loads(old.tree["source.json"].data)
    for o in src["objects"]:
        o.pop("value", None)
        o.pop("closure", None)
    tb.insert("tvault.json", r.create_blob(json.dumps(man).encode()), pygit2.enums.FileMode.BLOB)
    tb.insert("source.json", r.create_blob(json.dumps(src).encode()), pygit2.enums.FileMode.BLOB)
    new = str(r.create_commit(None, old.author, old.committer, old.message, tb.write(), []))
    r.references.create("refs/tvault/entries/" + new, pygit2.Oid(hex=new))
    notes.add(r, man["commit"], new, "old", None, created=man["created"])
    return new


def test_format_1_0_entries_still_show_and_diff(repo):
    model = import_fresh("model")
    old = _as_format_1_0(repo, tvault.log_all(model.Net()).id)
    new = tvault.log_all(model.Net()).id
    out = tvault_cli(repo, "show", old).stdout
    assert "Source (" in out and "capture incomplete" not in out
    assert show_json(repo, old)["configuration"] is None
    d = json.loads(tvault_cli(repo, "diff", old, new, "--json").stdout)
    assert d["configuration"]["available"] is False and "before format 1.1" in d["configuration"]["summary"]
    assert "Configuration" not in tvault_cli(repo, "diff", old, new).stdout
    assert tvault_cli(repo, "diff", old, "--no-weights").returncode == 0


def test_an_edit_to_code_the_model_does_not_use_is_not_drift(repo, fresh_modules):
    write(repo / "mlp.py", MODEL + "\n\ndef unused():\n    return 1\n")
    commit_all(repo, "mlp")
    m = import_fresh("mlp")
    (repo / "mlp.py").write_text(MODEL + "\n\ndef unused():\n    return 2\n")  # edited while running
    e, warned = capture_warnings(tvault.log_all, m.MLP())
    assert warned == [] and tvault.get(e.id)["drift"] == []
    _, objs = source(repo, e.id)
    assert "nn.GELU()" in objs["mlp.MLP"]["text"]


def test_the_capture_warning_points_at_the_callers_line(repo, monkeypatch):
    import types
    import warnings

    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    ns: dict = {"__name__": "__main__"}
    exec(compile("import torch.nn as nn\nclass Ghost(nn.Linear):\n    pass\n", "<string>", "exec"), ns)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        tvault.log_all(ns["Ghost"](1, 1))
    (w,) = [w for w in rec if issubclass(w.category, tvault.CaptureWarning)]
    assert w.filename == __file__
