"""The ``git tvault`` commands as users run them."""

from __future__ import annotations

import json
import subprocess
import sys

import torch
from conftest import git, import_fresh
from conftest import tvault as run

import tvault_git as tvault


def _log_two(repo):
    model = import_fresh("model")
    m = model.Net()
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    a = tvault.log_all(
        m, tags={"lr": 0.1, "size": "0.5x"}, result=0.81, optimizer=opt, metrics={"loss": 0.4}, name="mnist"
    )
    (repo / "model.py").write_text((repo / "model.py").read_text().replace("F.relu", "F.gelu"))
    git(repo, "commit", "-qam", "gelu")
    model = import_fresh("model")
    b = tvault.log_all(model.Net(), tags={"lr": 0.01}, result=0.9, message="gelu run")
    return a, b


def test_log_lists_newest_first(repo):
    a, b = _log_two(repo)
    out = run(repo, "log").stdout.splitlines()
    assert out[0].startswith(b.id[:10]) and out[1].startswith(a.id[:10])
    assert f"{a.commit[:7]}:0" in out[1] and "mnist" in out[1] and "result=0.81" in out[1] and "lr=0.1" in out[1]
    assert "Test Author" in out[0]
    assert len(run(repo, "log", "-n", "1").stdout.splitlines()) == 1
    rows = json.loads(run(repo, "log", "--json").stdout)
    assert [r["id"] for r in rows] == [b.id, a.id]
    assert rows[1]["tags"] == {"lr": 0.1, "size": "0.5x"} and rows[1]["metrics"] == {"loss": 0.4}


def test_show_prints_everything(repo):
    a, b = _log_two(repo)
    out = run(repo, "show", f"{a.commit[:7]}:0").stdout
    for want in [
        "mnist",
        a.id,
        "result   0.81",
        "loss=0.4",
        "size=0.5x",
        "Architecture",
        "(fc1): Linear(in_features=4, out_features=16",
        "class    model.Net",
        "function helpers.scale",
        "Weights (4 tensors",
        "fc1.weight",
        "(16, 4)",
        "float32",
        "torch.optim.sgd.SGD",
        "momentum=0.9",
        "lr=0.1",
    ]:
        assert want in out, want
    src = run(repo, "show", a.id[:8], "--source").stdout
    assert "return F.relu(x) * scale(1.0)" in src
    assert "F.gelu" in run(repo, "show", "HEAD:0", "--source").stdout
    j = json.loads(run(repo, "show", "HEAD:0", "--json").stdout)
    assert j["id"] == b.id and j["message"] == "gelu run" and "fc2.bias" in j["weights"]
    assert run(repo, "show", "main~1:0").stdout == out


def test_export_and_empty_log(repo, tmp_path):
    assert "no entries yet" in run(repo, "log").stdout
    a, _ = _log_two(repo)
    run(repo, "export", a.id[:10], str(tmp_path / "w.safetensors"))
    from safetensors.torch import load_file

    assert set(load_file(str(tmp_path / "w.safetensors"))) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
    bad = run(repo, "export", a.id[:10], str(tmp_path / "w.zip"), check=False)
    assert bad.returncode != 0 and "safetensors" in bad.stderr and "Traceback" not in bad.stderr


def test_read_commands_do_not_import_torch(repo):
    _log_two(repo)
    code = (
        "import sys; from tvault_git.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    for args in (["log"], ["show", "HEAD:0"], ["log", "--json"]):
        p = subprocess.run([sys.executable, "-c", code, *args], cwd=repo, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
