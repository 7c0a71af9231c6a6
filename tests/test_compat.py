"""The seed's README examples, via both ``git tvault`` and the seed-compatible ``tvault`` flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests import helpers
from tests.helpers import GIT_ENV, MODEL_SRC, git, import_fresh, write


def seed(repo, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, **GIT_ENV, NO_COLOR="1")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    p = subprocess.run(["tvault", *args], cwd=repo, capture_output=True, text=True, env=env)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def _ids(text: str) -> list[str]:
    return sorted(ln.split()[0] for ln in text.splitlines()[1:] if ln.strip())


def test_seed_readme_examples(repo):
    import tvault_git as tv  # the seed: import tvault; tvault.log_all(...)

    tvault = helpers.tvault

    model = import_fresh("model").Net()
    tv.log_all(model, tags={"lr": 0.01, "size": "0.5x"}, result=0.91)
    tv.log_all(model, tags={"lr": 0.1, "size": "1x"}, result=0.72)
    write(repo / "model.py", MODEL_SRC.replace("F.relu(x)", "F.gelu(x)"))
    git(repo, "commit", "-qam", "gelu")
    model = import_fresh("model").Net()
    tv.log_all(model, tags={"lr": 0.01, "size": "2x"}, result=0.95)
    h1 = git(repo, "rev-parse", "--short", "HEAD~1").stdout.strip()
    h2 = git(repo, "rev-parse", "--short", "HEAD").stdout.strip()

    # find by training commit
    a = seed(repo, "--find_flag", "--condition", "hash", "--hash", h1).stdout
    b = tvault(repo, "find", "--hash", h1).stdout
    assert a == b and len(_ids(a)) == 2 and f"{h1}:0" in a and f"{h1}:1" in a
    # find by result range
    a = seed(repo, "--find_flag", "--condition", "result", "--min", "0.9", "--max", "1.0").stdout
    assert a == tvault(repo, "find", "--min", "0.9", "--max", "1.0").stdout and len(_ids(a)) == 2
    # find by tag
    a = seed(repo, "--find_flag", "--condition", "tag", "--tag_type", "lr", "--tag", "0.01").stdout
    assert a == tvault(repo, "find", "--tag", "lr", "0.01").stdout and len(_ids(a)) == 2
    a = seed(repo, "--find_flag", "--condition", "tag", "--tag_type", "size", "--tag", "0.5x").stdout
    assert len(_ids(a)) == 1
    # diff
    a = seed(repo, "--diff_flag", "--sha1", h1, "--index1", "0", "--sha2", h2, "--index2", "0").stdout
    assert a == tvault(repo, "diff", f"{h1}:0", f"{h2}:0").stdout
    assert "Functions and other code: modified act" in a
    # other commands pass through
    assert len(json.loads(seed(repo, "log", "--json").stdout)) == 3


def test_seed_bad_flags_are_one_line_usage_errors(repo):
    for args in (
        ["--find_flag"],
        ["--find_flag", "--condition", "tag", "--tag", "x"],
        ["--diff_flag", "--sha1", "HEAD"],
        ["--find_flag", "--diff_flag"],
    ):
        p = seed(repo, *args, check=False)
        assert p.returncode == 2 and "Traceback" not in p.stderr and "tvault: error:" in p.stderr


# --- the drop-in ``tvault`` package: seed training scripts unchanged ------------------------------

SEED_TRAIN = """
import torch
import tvault
from model import Net

torch.manual_seed(0)
model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
for _ in range(3):
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
acc = (model(x).argmax(1) == y).float().mean()
tags = {"language": "pytorch", "size": "0.5x", "learning_rate": 0.01}
tvault.log_all(model, tags=tags, result=acc.item(), optimizer=optimizer)
tvault.log_all(model, tags=tags, result=acc.item(), optimizer=optimizer, log_dir="./model_log", model_dir="./")
tvault.log_all(model, tags={"size": "1x"})
print("torch state", tvault.load("HEAD:0")["fc1.weight"].shape)
"""


def _py(repo, code: str, extra_path: list[str] | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, **GIT_ENV, NO_COLOR="1")
    env.pop("PYTHONPATH", None)
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join(extra_path)
    return subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, env=env)


def test_seed_training_script_runs_unchanged(repo):
    write(repo / "train.py", SEED_TRAIN)
    env = dict(os.environ, **GIT_ENV, NO_COLOR="1")
    p = subprocess.run([sys.executable, "train.py"], cwd=repo, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert "torch state torch.Size([16, 4])" in p.stdout
    assert p.stderr.count("log_dir, model_dir ignored") == 1  # warned once, not per call
    assert not (repo / "model_log").exists()  # nothing written where the seed wrote
    rows = json.loads(helpers.tvault(repo, "log", "--json").stdout)
    assert len(rows) == 3
    by_size = sorted(rows, key=lambda r: (r["tags"]["size"], r["index"]))
    full = by_size[0]
    assert full["tags"] == {"language": "pytorch", "size": "0.5x", "learning_rate": 0.01}
    assert 0.0 <= full["result"] <= 1.0
    assert by_size[-1]["result"] is None  # the seed's result=-1 default: no result
    meta = json.loads(helpers.tvault(repo, "show", full["id"], "--json").stdout)
    assert (
        meta["optimizer"]["class"] == "torch.optim.sgd.SGD" and meta["optimizer"]["param_groups"][0]["momentum"] == 0.9
    )
    assert any(o["qualname"] == "Net" for o in meta["source"]["objects"])


def test_seed_functions_that_edited_records_say_what_to_use(repo):
    p = _py(repo, "import tvault\ntvault.add_tag('lr', '0.1')")
    assert p.returncode != 0 and "immutable: pass tags={...} to tvault.log_all" in p.stderr


def test_seed_find_and_diff_functions_print_like_the_cli(repo):
    p = _py(
        repo,
        "import tvault\nfrom model import Net\nimport torch\ntorch.manual_seed(0)\n"
        "tvault.log_all(Net(), tags={'lr': 0.1}, result=0.5)\ntvault.log_all(Net(), tags={'lr': 0.2}, result=0.7)\n"
        "tvault.find_f(condition='result', min=0.6, max=1)\ntvault.diff_f(sha1='HEAD', index1=0, sha2='HEAD', index2=-1)",
    )
    assert p.returncode == 0, p.stderr
    assert "0.7" in p.stdout and "0.5" not in p.stdout.split("tvault diff")[0]
    assert "b/" in p.stdout and ":1" in p.stdout  # index -1: the last entry on the commit


def test_drop_in_steps_aside_for_the_original_tvault(repo, tmp_path):
    """With the seed installed, ``import tvault`` is the seed, wherever it sits on sys.path."""
    real = tmp_path / "site" / "tvault"
    real.mkdir(parents=True)
    (real / "__init__.py").write_text("ORIGINAL = True\nfrom .torchvault import TorchVault\n")
    (real / "torchvault.py").write_text("class TorchVault:\n    pass\n")
    ours = str(helpers.ROOT)
    code = "import tvault, sys\nprint(getattr(tvault, 'ORIGINAL', False), tvault.TorchVault.__module__, sys.modules['tvault'] is tvault)"
    for order in ([ours, str(tmp_path / "site")], [str(tmp_path / "site"), ours]):
        p = _py(repo, code, order)
        assert p.returncode == 0, p.stderr
        assert p.stdout.split() == ["True", "tvault.torchvault", "True"], (order, p.stdout)
    p = _py(repo, "import tvault\nprint(tvault.log_all.__module__)")  # without it: ours
    assert p.stdout.strip() == "tvault_git.cli.seed", p.stderr
