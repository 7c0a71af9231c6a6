"""``git tvault import-tvault``: the original tvault's model_log/ folder, built here in its format."""

from __future__ import annotations

import json
import pickle

from tests.helpers import git, tvault

NET_SRC = (
    "class Net(nn.Module):\n\n    def __init__(self):\n        super().__init__()\n        self.fc1 = nn.Linear(4, 16)"
)
SGD_TEXT = "SGD (\nParameter Group 0\n    dampening: 0\n    lr: 0.01\n    momentum: 0.9\n    nesterov: False\n    weight_decay: 0\n)"


def seed_record(result, size, src=NET_SRC):
    """One record as the seed's TorchVault.log_model + log_optimizer + add_tag + add_result left it."""
    return {
        "model": "Net(\n  (fc1): Linear(in_features=4, out_features=16, bias=True)\n)",
        "src": {"./model.py:Net": src},
        "external_func": {"./model.py:act": "def act(x):\n    return F.relu(x)"},
        "optimizer": SGD_TEXT,
        "tag-size": size,
        "tag-learning_rate": 0.01,
        "result": result,
    }


def write_model_log(folder, sha7, records):
    folder.mkdir(exist_ok=True)
    with open(folder / f"model_{sha7}", "wb") as f:
        pickle.dump(dict(enumerate(records)), f)  # what the seed's write_model_log does


class Boom:
    def __reduce__(self):
        import os

        return (os.system, ("touch HACKED",))


def test_import_tvault_model_log(repo):
    sha = git(repo, "rev-parse", "--short=7", "HEAD").stdout.strip()
    log = repo / "model_log"
    write_model_log(log, sha, [seed_record(91.5, "0.5x"), seed_record(93.0, "1x")])
    write_model_log(log, "deadbee", [seed_record(88, "2x")])  # a commit this repository never had
    p = tvault(repo, "import-tvault", "model_log")
    assert "3 entries imported" in p.stdout and "stored no weights" in p.stdout
    assert f"{sha}:0" in p.stdout and f"{sha}:1" in p.stdout and "commit not in this repository" in p.stdout
    rows = json.loads(tvault(repo, "find", "--hash", "HEAD", "--json").stdout)
    assert len(rows) == 3
    on_recorded = [r for r in rows if "tvault_seed_commit" not in r["tags"]]
    assert sorted(r["result"] for r in on_recorded) == [91.5, 93.0]
    lost = next(r for r in rows if "tvault_seed_commit" in r["tags"])
    assert lost["tags"]["tvault_seed_commit"] == "deadbee" and lost["tags"]["size"] == "2x" and lost["result"] == 88
    show = tvault(repo, "show", f"{sha}:0").stdout
    assert "Weights: none (imported from the original tvault" in show
    assert "Linear(in_features=4" in show and "model.Net" in show and "model.act" in show
    meta = json.loads(tvault(repo, "show", f"{sha}:0", "--json").stdout)
    assert meta["optimizer"]["class"] == "SGD" and meta["optimizer"]["param_groups"][0]["momentum"] == 0.9
    assert meta["tags"]["learning_rate"] == 0.01 and meta["manifest"]["imported"]["weights"] is False
    src = tvault(repo, "show", f"{sha}:0", "--source").stdout
    assert "self.fc1 = nn.Linear(4, 16)" in src
    # source diff between two imported records works like any entry's
    write_model_log(
        log,
        sha,
        [seed_record(91.5, "0.5x"), seed_record(93.0, "1x"), seed_record(94.0, "1x", NET_SRC.replace("16", "32"))],
    )
    p = tvault(repo, "import-tvault", "model_log")
    assert "1 entry imported, 3 already imported" in p.stdout  # idempotent: only the new record
    d = tvault(repo, "diff", f"{sha}:1", f"{sha}:3", "--no-weights").stdout
    assert "nn.Linear(4, 32)" in d
    assert git(repo, "fsck", "--strict").returncode == 0


def test_import_tvault_refuses_a_hostile_pickle_without_running_it(repo):
    sha = git(repo, "rev-parse", "--short=7", "HEAD").stdout.strip()
    log = repo / "model_log"
    write_model_log(log, sha, [seed_record(1.0, "1x")])
    with open(log / "model_abcdef0", "wb") as f:
        pickle.dump({0: {"model": Boom()}}, f)
    p = tvault(repo, "import-tvault", "model_log", check=False)
    assert p.returncode == 4 and "refused: the pickle asks for" in p.stderr and "Traceback" not in p.stderr
    assert not (repo / "HACKED").exists()
    assert tvault(repo, "log", "--json").stdout.strip() == "[]"  # checked before anything was written
    (log / "model_abcdef0").write_bytes(b"\x80\x04not a pickle")
    p = tvault(repo, "import-tvault", "model_log", check=False)
    assert p.returncode == 4 and "not a tvault model_log file" in p.stderr
    p = tvault(repo, "import-tvault", "nowhere", check=False)
    assert p.returncode == 2 and "not a directory" in p.stderr
