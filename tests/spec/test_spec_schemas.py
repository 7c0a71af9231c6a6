"""Entries written by tvault-git conform to docs/schema/ (the writer's contract in docs/FORMAT.md)."""

from __future__ import annotations

import pytest
import torch
from conftest import git, import_fresh, write
from jsonschema import Draft202012Validator
from schemas import SCHEMAS, validate_repo, validator

import tvault_git as tvault


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schemas_are_valid_draft_2020_12(name):
    Draft202012Validator.check_schema(SCHEMAS[name])


def test_full_entry_with_optimizer_scheduler_dirty_tree_and_capped_untracked(repo):
    model = import_fresh("model")
    m = model.Net()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, 2)
    m(torch.randn(3, 4)).sum().backward()
    opt.step()
    sched.step()
    for i in range(205):  # more than the 200 the manifest keeps
        (repo / f"stray{i:03}.txt").write_text("x")
    write(repo / "helpers.py", "def scale(v):\n    return v  # edited: the tree is dirty\n")
    tvault.clear_metrics()
    tvault.log_metrics(step=0, loss=0.5)
    tvault.log_metrics(step=3, loss=0.25, acc=0.9)  # steps.json too
    e = tvault.log_all(
        m,
        {"lr": 1e-3, "size": "0.5x", "layers": [1, 2], "nested": {"ok": True}, "none": None},
        result=0.93,
        optimizer=opt,
        scheduler=sched,
        save_optimizer_state=True,
        name="net",
        metrics={"loss": 0.21, "acc": 1},
        message="free text",
    )
    tvault.clear_metrics()
    seen = validate_repo(repo)
    assert seen == dict.fromkeys(seen, 1)  # every kind of file was checked
    man = e.manifest
    assert man["dirty"] is True and len(man["untracked"]) == 200 and man["untracked"] == sorted(man["untracked"])
    assert man["untracked"][0] == "stray000.txt"


def test_minimal_entries_tied_empty_and_odd_dtypes(repo):
    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(5, 3)
            self.out = torch.nn.Linear(3, 5, bias=False)
            self.out.weight = self.emb.weight  # tied
            self.register_buffer("empty", torch.zeros(0, 4))
            self.register_buffer("mask", torch.tensor([True, False]))
            self.register_buffer("bf16", torch.ones(3, dtype=torch.bfloat16))
            self.register_buffer("count", torch.tensor(7, dtype=torch.int64))

    tvault.log_all(Odd())  # no name, no result, no optimizer
    git(repo, "checkout", "-q", "--detach")
    tvault.log_all(Odd(), result=-1e-05)  # detached HEAD: branch null
    assert validate_repo(repo)["weights.json"] == 2


def test_the_steps_schema_refuses_other_columns():
    v = validator("steps.schema.json")
    rec = {"dtype": "int64", "shape": [2], "nbytes": 16, "chunks": ["0" * 40]}
    col = {"dtype": "float32", "shape": [2], "nbytes": 8, "chunks": ["1" * 40]}
    assert v.is_valid({"chunk_bytes": 33554432, "tensors": {"step": rec, "loss": col}})
    assert not v.is_valid({"chunk_bytes": 33554432, "tensors": {"loss": col}})  # no step column
    assert not v.is_valid({"chunk_bytes": 33554432, "tensors": {"step": rec, "loss": {**col, "dtype": "float64"}}})
    assert not v.is_valid({"chunk_bytes": 33554432, "tensors": {"step": {**rec, "shape": [1, 2]}, "loss": col}})


def test_the_schema_refuses_what_writers_must_not_write():
    good = {"chunk_bytes": 1024, "tensors": {"w": {"dtype": "uint8", "shape": [3], "nbytes": 3, "chunks": ["a" * 40]}}}
    v = validator("weights.schema.json")
    assert v.is_valid(good)
    assert not v.is_valid({**good, "chunk_bytes": 1000})
    assert not v.is_valid({**good, "chunk_bytes": 1 << 26})
    assert not v.is_valid({"chunk_bytes": 1024, "tensors": {"w": {**good["tensors"]["w"], "dtype": "float128"}}})
    m = validator("tvault.schema.json")
    assert not m.is_valid({"format": "1.0"})  # writers write every key
    assert not validator("optimizer-state.schema.json").is_valid({**good, "values": {}})  # names are <param>.<key>
