"""``git tvault import FILE...|DIR``: checkpoints a run already wrote become versions, safely.

Real repos, the real ``git tvault`` executable, real torch state_dicts and .safetensors files;
hostile files (a pickle that would run code, a whole pickled model, a header claiming terabytes)
must be refused with exit 11 before any entry exists.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import tvault_git as tv
from tests.helpers import git, tvault
from tests.spec.schemas import validate_repo


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 8))


@pytest.fixture
def ckpts(repo):
    """epoch_1..epoch_12 .pt files (only the head changes between them) and a final .safetensors."""
    d = repo / "ckpts"
    d.mkdir()
    m = _model()
    for i in range(1, 13):
        with torch.no_grad():
            m[4].weight.add_(0.01)
        torch.save(m.state_dict(), d / f"epoch_{i}.pt")
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(d / "final.safetensors"))
    (d / "notes.txt").write_text("not a checkpoint")
    return d


def _entries(repo) -> list[dict]:
    return json.loads(tvault(repo, "log", "--json").stdout)


def test_import_a_folder_one_version_per_file_in_natural_order_with_dedup(repo, ckpts):
    p = tvault(repo, "import", "ckpts", "--name", "mlp", "--tag", "lr=0.01", "--tag", "run=a", "--result", "0.9")
    lines = p.stdout.splitlines()
    assert [ln.split()[1] for ln in lines[:13]] == [f"epoch_{i}.pt" for i in range(1, 13)] + ["final.safetensors"]
    assert "-> mlp@9 " in lines[8] and "epoch_9.pt" in lines[8] and "-> mlp@10 " in lines[9]
    assert lines[-1].startswith("13 checkpoints imported as mlp; ") and "x dedup" in lines[-1]
    ratio = float(lines[-1].split("; ")[1].split("x")[0])
    assert ratio > 2.5  # 13 checkpoints, only the 2 KiB head differs: the 32 KiB body is stored once
    assert "final.safetensors" in lines[12] and "(34.5 KiB, 0 B new)" in lines[12]  # same tensors as epoch_12
    # each version holds exactly its file's tensors, typed tags and the result
    for i in (1, 9, 10, 12):
        want = torch.load(ckpts / f"epoch_{i}.pt", weights_only=True)
        got = tv.load(f"mlp@{i}")
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    rows = json.loads(tvault(repo, "find", "--name", "mlp", "--where", "tags.lr==0.01", "--json").stdout)
    assert len(rows) == 13 and all(r["result"] == 0.9 and r["tags"] == {"lr": 0.01, "run": "a"} for r in rows)
    # show says where the weights came from (no captured code), with the file's sha256
    show = tvault(repo, "show", "mlp@9").stdout
    sha = hashlib.sha256((ckpts / "epoch_9.pt").read_bytes()).hexdigest()
    assert f"imported from epoch_9.pt (torch, sha256 {sha}); no code was captured" in show
    assert "Source: none (weights imported from epoch_9.pt" in show and "message  imported from epoch_9.pt" in show
    m = json.loads(tvault(repo, "show", "mlp@13", "--json").stdout)["manifest"]
    assert m["imported"]["from"] == "checkpoint" and m["imported"]["format"] == "safetensors"
    # importing the folder again adds nothing; a new checkpoint adds one version
    again = tvault(repo, "import", "ckpts", "--name", "mlp").stdout
    assert again.count("skipped") == 13 and "0 checkpoints imported" in again
    torch.save(_model().state_dict(), ckpts / "epoch_13.pt")
    assert "epoch_13.pt -> mlp@14" in tvault(repo, "import", "ckpts", "--name", "mlp").stdout
    assert tvault(repo, "fsck").returncode == 0
    git(repo, "fsck", "--strict")
    assert validate_repo(repo)["tvault.json"] == 14  # the imported key against docs/schema/


def test_import_attaches_to_the_given_commit_and_names_after_the_folder(repo, ckpts):
    first = git(repo, "rev-parse", "HEAD").stdout.strip()
    (repo / "later.py").write_text("x = 1\n")
    git(repo, "add", "later.py")
    git(repo, "commit", "-qm", "later")
    tvault(repo, "import", "ckpts/epoch_3.pt", "ckpts/epoch_10.pt", "ckpts/epoch_2.pt", "--commit", "HEAD~1")
    rows = _entries(repo)
    assert {r["commit"] for r in rows} == {first} and {r["name"] for r in rows} == {"ckpts"}
    assert [r["message"] for r in sorted(rows, key=lambda r: r["version"])] == [
        "imported from epoch_2.pt",
        "imported from epoch_3.pt",
        "imported from epoch_10.pt",
    ]
    p = tvault(repo, "import", "ckpts/epoch_1.pt", "--commit", "nosuch", check=False)
    assert p.returncode == 3 and "--commit 'nosuch' names no commit" in p.stderr


class _Evil:
    """Unpickling this would create a directory: nothing may run while importing."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_hostile_or_non_state_dict_files_are_refused_and_nothing_is_imported(repo, ckpts):
    marker = repo / "pwned"
    bad = {
        "evil.pt": lambda p: torch.save({"w": torch.ones(2), "x": _Evil(str(marker))}, p),
        "model.pth": lambda p: torch.save(_model(), p),
        "mixed.bin": lambda p: torch.save({"w": torch.ones(2), "step": 5}, p),
        "list.pt": lambda p: torch.save([torch.ones(2)], p),
        "huge.safetensors": lambda p: p.write_bytes((10**12).to_bytes(8, "little") + b"{}"),
        "lying.safetensors": lambda p: p.write_bytes(
            (
                len(h := json.dumps({"w": {"dtype": "F32", "shape": [1 << 40], "data_offsets": [0, 1 << 42]}}).encode())
            ).to_bytes(8, "little")
            + h
            + b"\0" * 16
        ),
        "garbage.pt": lambda p: p.write_bytes(b"not a checkpoint at all"),
        "readme.md": lambda p: p.write_text("hi"),
    }
    why = {
        "evil.pt": "loading it would run code (posix.mkdir",
        "model.pth": "loading it would run code (torch.nn.modules.container.Sequential",
        "mixed.bin": "a value of type int at 'step'",
        "list.pt": "it holds a list, not a state_dict",
        "huge.safetensors": "the safetensors header claims 1000000000000 bytes",
        "lying.safetensors": "tensor 'w' claims bytes 0..4398046511104 of 16",
        "garbage.pt": "torch.load(weights_only=True) cannot read it (UnpicklingError",
        "readme.md": "not a checkpoint file",
    }
    for fname, make in bad.items():
        path = ckpts / fname
        make(path)
        p = tvault(repo, "import", "ckpts/epoch_1.pt", str(path.relative_to(repo)), "--name", "m", check=False)
        assert p.returncode == 11, (fname, p.stdout, p.stderr)
        assert why[fname] in p.stderr and len(p.stderr.strip().splitlines()) == 1, (fname, p.stderr)
        assert "Traceback" not in p.stderr and p.stdout == ""
        assert _entries(repo) == []  # epoch_1.pt, checked first and fine, was not imported either
        path.unlink()
    assert not marker.exists()
    # a folder with one bad file among good ones: nothing either
    torch.save({"w": torch.ones(2), "x": _Evil(str(marker))}, ckpts / "epoch_5b.pt")
    p = tvault(repo, "import", "ckpts", check=False)
    assert p.returncode == 11 and "epoch_5b.pt" in p.stderr and _entries(repo) == [] and not marker.exists()


def test_a_training_checkpoint_is_unwrapped_with_a_note(repo):
    m = _model()
    torch.save({"state_dict": m.state_dict(), "epoch": 3, "global_step": 120, "optimizer_states": []}, "last.ckpt")
    nested = {"encoder": {"w": torch.ones(3)}, "head": {"b": torch.zeros(2)}}
    torch.save(nested, "nested.pt")
    p = tvault(repo, "import", "last.ckpt", "--name", "lit", "-m", "from lightning")
    assert "(its 'state_dict': a training checkpoint; the rest of it is not imported)" in p.stdout
    assert tv.load("lit@1").keys() == m.state_dict().keys()
    show = tvault(repo, "show", "lit@1").stdout
    assert "its 'state_dict'" in show and "message  from lightning" in show
    tvault(repo, "import", "nested.pt", "--name", "nest")
    assert sorted(tv.load("nest@1")) == ["encoder.w", "head.b"]


def test_progress_lines_without_a_terminal(repo, ckpts):
    p = tvault(repo, "import", "ckpts", "--progress")
    assert p.stderr.splitlines()[0] == "importing 1/13 epoch_1.pt" and "importing 13/13 final.safetensors" in p.stderr
    assert tvault(repo, "import", "ckpts", "--name", "x").stderr == ""  # not a terminal: quiet by default
