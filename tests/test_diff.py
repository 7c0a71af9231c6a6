"""git tvault diff: the ways researchers change a model, section by section, with real repos."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import HELPERS_SRC, MODEL_SRC, git, import_fresh, tvault, write
from test_find import _modules_after


def _log(repo: Path, module: str = "model", model=None, **kw):
    import tvault_git

    if model is None:
        torch.manual_seed(0)
        sys.modules.pop("helpers", None)  # the model imports it: a stale copy is code that did not change on disk
        model = import_fresh(module).Net()
    return tvault_git.log_all(model, repo=str(repo), **kw)


def _commit(repo: Path, msg: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", msg)


def _diff(repo: Path, *args: str) -> dict:
    return json.loads(tvault(repo, "diff", *args, "--json").stdout)


def _item(sec: dict, name: str) -> dict:
    return next(it for it in sec["items"] if it["name"].rsplit(".", 1)[-1] == name)


def test_layer_added(repo):
    a = _log(repo, result=0.8)
    write(
        repo / "model.py",
        MODEL_SRC.replace(
            "        self.fc2 = nn.Linear(width, 2)\n",
            "        self.fc2 = nn.Linear(width, width)\n        self.fc3 = nn.Linear(width, 2)\n",
        ).replace("return self.fc2(act(self.fc1(x)))", "return self.fc3(act(self.fc2(act(self.fc1(x)))))"),
    )
    _commit(repo, "add a third layer")
    b = _log(repo, result=0.85)
    d = _diff(repo, a.id, b.id)
    arch = d["architecture"]
    assert arch["changed"] and any(
        ln.startswith("+") and "(fc3): Linear(in_features=16, out_features=2" in ln for ln in arch["diff"]
    )
    assert d["classes"]["changed"] and _item(d["classes"], "Net")["status"] == "modified"
    assert any("+        self.fc3 = nn.Linear(width, 2)" in ln for ln in _item(d["classes"], "Net")["diff"])
    assert not d["functions"]["changed"]
    w = {it["name"]: it for it in d["weights"]["items"]}
    assert w["fc3.weight"]["status"] == "added" and w["fc3.bias"]["status"] == "added"
    assert (
        w["fc2.weight"]["status"] == "shape"
        and w["fc2.weight"]["shape_a"] == [2, 16]
        and w["fc2.weight"]["shape_b"] == [16, 16]
    )
    assert d["weights"]["unchanged"] == 2  # fc1 (same seed) recognised by blob id
    ctx = d["context"]
    assert [c["subject"] for c in ctx["commits"]] == ["add a third layer"]
    assert [f["path"] for f in ctx["files"]] == ["model.py"]
    text = tvault(repo, "diff", a.ref, b.ref).stdout
    assert "Architecture: " in text and "+  (fc3): Linear" in text and "+ fc3.weight" in text


def test_activation_swapped(repo):
    a = _log(repo)
    write(repo / "model.py", MODEL_SRC.replace("F.relu(x)", "F.gelu(x)"))
    _commit(repo, "gelu")
    b = _log(repo)
    d = _diff(repo, a.id, b.id)
    assert not d["architecture"]["changed"]  # functional activations are not in repr(model)
    assert not d["classes"]["changed"]
    act = _item(d["functions"], "act")
    assert act["status"] == "modified"
    assert "-    return F.relu(x) * scale(1.0)" in act["diff"] and "+    return F.gelu(x) * scale(1.0)" in act["diff"]
    assert d["functions"]["summary"].startswith("modified act")
    assert not d["weights"]["changed"]  # same seed, same weights: nothing read


def test_helper_function_edited_in_another_file(repo):
    a = _log(repo)
    write(repo / "helpers.py", HELPERS_SRC.replace("return v", "return v * 0.5"))
    write(repo / "README.txt", "unrelated change\n")
    _commit(repo, "halve the scale")
    b = _log(repo)
    d = _diff(repo, a.id, b.id)
    sc = _item(d["functions"], "scale")
    assert sc["status"] == "modified" and sc["file_a"] == "helpers.py"
    assert [f["path"] for f in d["context"]["files"]] == ["helpers.py"]
    assert d["context"]["other_files"] == 1
    assert "1 model code file(s) changed" in d["context"]["summary"]


def test_hyperparameter_changed(repo):
    torch.manual_seed(0)
    net = import_fresh("model").Net()
    a = _log(
        repo,
        model=net,
        optimizer=torch.optim.SGD(net.parameters(), lr=0.01),
        tags={"lr": 0.01},
        result=0.7,
        metrics={"acc": 0.7},
    )
    b = _log(
        repo,
        model=net,
        optimizer=torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9),
        tags={"lr": 0.001},
        result=0.75,
        metrics={"acc": 0.75},
    )
    d = _diff(repo, a.ref, b.ref)
    g = d["optimizer"]["optimizer"]["groups"][0]
    ch = {c["key"]: (c["a"], c["b"]) for c in g["changes"]}
    assert ch == {"lr": (0.01, 0.001), "momentum": (0, 0.9)}
    assert "lr 0.01 -> 0.001 (group 0)" in d["optimizer"]["summary"]
    rows = {(r["group"], r["key"]): r for r in d["metadata"]["rows"]}
    assert rows[("result", "result")]["delta"] == pytest.approx(0.05)
    assert rows[("tag", "lr")]["a"] == 0.01 and rows[("tag", "lr")]["b"] == 0.001
    assert not d["context"]["changed"] and not d["classes"]["changed"] and not d["weights"]["changed"]
    text = tvault(repo, "diff", a.ref, b.ref).stdout
    assert "Optimizer and scheduler: " in text and "lr: 0.01 -> 0.001" in text
    assert "Weights" not in text.split("unchanged:")[0]  # unchanged sections are not printed


def test_class_moved_to_another_file(repo):
    a = _log(repo)
    body = MODEL_SRC[MODEL_SRC.index("class Net") :]
    write(repo / "model.py", MODEL_SRC[: MODEL_SRC.index("class Net")])
    write(repo / "nets.py", "import torch.nn as nn\nfrom model import act, WIDTH\n\n\n" + body)
    _commit(repo, "move Net to nets.py")
    b = _log(repo, module="nets")
    d = _diff(repo, a.id, b.id)
    net = _item(d["classes"], "Net")
    assert net["status"] == "moved" and net["file_a"] == "model.py" and net["file_b"] == "nets.py"
    assert not net["modified"]
    assert d["classes"]["counts"] == {"moved": 1}  # not removed + added
    assert {f["path"] for f in d["context"]["files"]} == {"model.py", "nets.py"}
    text = tvault(repo, "diff", a.id, b.id).stdout
    assert "moved class model.Net (model.py) -> nets.Net (nets.py)" in text


def test_fine_tuning_changes_only_last_layer(repo, monkeypatch):
    torch.manual_seed(0)
    net = import_fresh("model").Net()
    a = _log(repo, model=net)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        net.fc2.weight.mul_(1.1).add_(0.01)
        net.fc2.bias.zero_()
    b = _log(repo, model=net)
    from tvault_git.diff import compute as diff
    from tvault_git.gitutil.repo import open_repo
    from tvault_git.registry import entries as registry
    from tvault_git.storage import packread as packread

    reads = []
    real = packread.read_blob_into
    monkeypatch.setattr(packread, "read_blob_into", lambda r, oid, out: reads.append(oid) or real(r, oid, out))
    d = diff.diff_entries(str(repo), a.id, b.id)
    r = open_repo(str(repo))
    chunks = {e.id: {n: rec["chunks"][0] for n, rec in registry.weight_records(r, e.id).items()} for e in (a, b)}
    # fc1 (same blobs) is never read; fc2 is read once per side
    assert sorted(reads) == sorted(chunks[e.id][n] for e in (a, b) for n in ("fc2.weight", "fc2.bias"))
    w = d["weights"]
    assert w["unchanged"] == 2 and w["counts"] == {"values": 2}
    it = next(i for i in w["items"] if i["name"] == "fc2.weight")
    x, y = before["fc2.weight"].double(), net.fc2.weight.detach().double()
    assert it["l2"] == pytest.approx(float((x - y).norm()), rel=1e-5)
    assert it["relative"] == pytest.approx(float((x - y).norm() / x.norm()), rel=1e-5)
    assert it["max_abs"] == pytest.approx(float((x - y).abs().max()), rel=1e-5)
    assert it["cosine"] == pytest.approx(float((x * y).sum() / (x.norm() * y.norm())), rel=1e-5)
    assert it["changed_values"] == it["numel"] == 32
    assert not d["architecture"]["changed"] and not d["classes"]["changed"] and not d["context"]["changed"]
    assert d["weights"]["summary"] == "2 tensors with changed values; 2 unchanged"


def test_identical_entries(repo):
    a = _log(repo, tags={"lr": 0.1}, result=0.5)
    b = _log(repo, tags={"lr": 0.1}, result=0.5)
    p = tvault(repo, "diff", a.id, b.id)
    assert "no differences" in p.stdout and p.returncode == 0
    assert not _diff(repo, a.id, b.id)["changed"]
    assert "no differences" in tvault(repo, "diff", a.ref, a.ref).stdout


def test_diff_against_work_tree(repo):
    a = _log(repo)
    assert "no differences" in tvault(repo, "diff", a.id).stdout
    write(repo / "helpers.py", HELPERS_SRC + "\n\ndef gain():\n    return 2.0\n")
    write(
        repo / "model.py",
        MODEL_SRC.replace("from helpers import scale", "from helpers import scale, gain").replace(
            "scale(1.0)", "scale(gain())"
        ),
    )
    d = _diff(repo, a.id)
    assert d["b"]["kind"] == "worktree"
    assert _item(d["functions"], "act")["status"] == "modified"
    g = _item(d["functions"], "gain")
    assert g["status"] == "added" and g["file_b"] == "helpers.py"
    assert not d["architecture"]["changed"] and d["architecture"]["available"] is False
    assert {f["path"] for f in d["context"]["files"]} == {"model.py", "helpers.py"}
    text = tvault(repo, "diff", a.ref).stdout
    assert "b/work tree" in text and "added function helpers.gain (helpers.py)" in text


def test_stat_section_color_and_errors(repo):
    a = _log(repo, tags={"lr": 0.1})
    write(repo / "model.py", MODEL_SRC.replace("F.relu(x)", "F.gelu(x)"))
    _commit(repo, "gelu")
    b = _log(repo, tags={"lr": 0.2})
    stat = tvault(repo, "diff", "--stat", a.id, b.id).stdout
    assert "Functions and other code: modified act" in stat and "@@" not in stat
    only = tvault(repo, "diff", "--section", "weights", "--section", "metadata", a.id, b.id).stdout
    assert "Tags, result and metrics" in only and "Functions" not in only
    assert set(_diff(repo, a.id, b.id, "--section", "tags")["sections"]) == {"metadata"}
    colored = tvault(repo, "diff", "--color=always", a.id, b.id).stdout
    assert "\x1b[" in colored
    assert "\x1b[" not in tvault(repo, "diff", "--color=never", a.id, b.id).stdout
    assert "\x1b[" not in tvault(repo, "diff", a.id, b.id, env={"NO_COLOR": "1"}).stdout
    for args in (["--section", "bogus", a.id, b.id], ["nope", b.id], [a.id, "HEAD:9"]):
        p = tvault(repo, "diff", *args, check=False)
        assert p.returncode in (2, 3) and p.stderr.startswith("tvault: error:") and "Traceback" not in p.stderr


def test_pager_on_terminal(repo, tmp_path):
    a = _log(repo, tags={"lr": 0.1})
    b = _log(repo, tags={"lr": 0.2})
    out = tmp_path / "paged.txt"
    env = dict(os.environ, PAGER=f"cat > {out}", PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    env.pop("NO_COLOR", None)
    env.pop("GIT_PAGER", None)
    master, slave = pty.openpty()
    p = subprocess.run(
        ["git", "tvault", "diff", a.id, b.id], cwd=repo, stdin=slave, stdout=slave, stderr=slave, env=env, timeout=120
    )
    os.close(slave)
    os.close(master)
    assert p.returncode == 0
    text = out.read_text()
    assert "Tags, result and metrics" in text and "\x1b[" in text  # colored on a terminal, through $PAGER


def test_diff_without_weights_does_not_import_torch(repo):
    torch.manual_seed(0)
    net = import_fresh("model").Net()
    a = _log(repo, model=net)
    with torch.no_grad():
        net.fc2.bias.add_(1)
    b = _log(repo, model=net)
    for argv in (
        ["diff", a.id, b.id, "--no-weights"],
        ["diff", a.id, b.id, "--section", "architecture", "--section", "classes"],
        ["diff", a.id, "--stat"],
    ):
        assert "torch" not in _modules_after(repo, argv), argv
    # the weights of a small model are compared with numpy: no 1.8 s torch import either
    assert "torch" not in _modules_after(repo, ["diff", a.id, b.id])


def test_weights_stream_chunk_by_chunk(repo, monkeypatch):
    """Multi-chunk tensors: statistics over chunks equal the whole-tensor figures; shared chunks read once."""
    import tvault_git
    from tvault_git.diff import compute as diff
    from tvault_git.gitutil.repo import open_repo
    from tvault_git.registry import entries as registry
    from tvault_git.spec import format as fmt
    from tvault_git.storage import packread as packread

    monkeypatch.setattr(fmt, "CHUNK_BYTES", 1024)  # the one definition; readers take the table's value
    torch.manual_seed(0)
    x = torch.randn(3000)  # 12,000 bytes: 12 chunks of 1 KiB
    y = x.clone()
    y[100:200] += 0.5  # touches chunk 0 only
    y[2500] = -7.0  # and chunk 9
    z = torch.arange(1000, dtype=torch.int64)  # integer tensor, changed everywhere
    m = torch.nn.Module()
    m.register_buffer("x", x)
    m.register_buffer("z", z)
    a = tvault_git.log_all(m, repo=str(repo))
    m2 = torch.nn.Module()
    m2.register_buffer("x", y)
    m2.register_buffer("z", z * 2)
    b = tvault_git.log_all(m2, repo=str(repo))
    r = open_repo(str(repo))
    ca = registry.weight_records(r, a.id)["x"]["chunks"]
    cb = registry.weight_records(r, b.id)["x"]["chunks"]
    assert len(ca) == 12 and sum(p != q for p, q in zip(ca, cb)) == 2
    reads: list[str] = []
    real = packread.read_blob_into
    monkeypatch.setattr(packread, "read_blob_into", lambda rr, oid, out: reads.append(oid) or real(rr, oid, out))
    w = diff.diff_entries(str(repo), a.id, b.id, sections=["weights"])["weights"]
    xs = sorted(reads)
    assert xs.count(ca[1]) == 1 and xs.count(ca[0]) == 1 and xs.count(cb[0]) == 1  # shared chunk: once
    it = next(i for i in w["items"] if i["name"] == "x")
    d = (x - y).double()
    assert it["status"] == "values" and it["changed_values"] == 101 and it["numel"] == 3000
    assert it["l2"] == pytest.approx(float(d.norm()), rel=1e-5)
    assert it["max_abs"] == pytest.approx(7.0 + abs(float(x[2500])), rel=1e-6)
    assert it["relative"] == pytest.approx(float(d.norm() / x.double().norm()), rel=1e-5)
    cos = float((x.double() * y.double()).sum() / (x.double().norm() * y.double().norm()))
    assert it["cosine"] == pytest.approx(cos, rel=1e-6)
    iz = next(i for i in w["items"] if i["name"] == "z")
    assert iz["changed_values"] == 999 and iz["l2"] == pytest.approx(float(z.double().norm()), rel=1e-9)
