"""Step metrics: tvault.log_metrics during training, stored with the next entry as float32 columns."""

from __future__ import annotations

import json
import math
import struct

import pygit2
import pytest
import torch
from conftest import git, import_fresh
from conftest import tvault as run

import tvault_git as tvault
from tvault_git.registry import notes, series
from tvault_git.spec import format as fmt


@pytest.fixture(autouse=True)
def fresh_series():
    tvault.clear_metrics()
    yield
    tvault.clear_metrics()


def _f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def test_round_trip_git_layout_and_show(repo):
    net = import_fresh("model").Net()
    for s in range(0, 50, 5):
        tvault.log_metrics(step=s, loss=1.0 / (s + 1), lr=torch.tensor(0.1))
    tvault.log_metrics(step=20, val_loss=0.3)  # same step, another metric: merged into that row
    tvault.log_metrics(step=12, val_loss=0.25)  # out of order: a new row, sorted on write
    tvault.log_metrics(step=45, loss=0.001)  # a step logged again: the later value wins
    e = tvault.log_all(net, name="curves")

    # The stored form, read with the git CLI only: a tensor table, little-endian int64 steps, float32 columns.
    doc = json.loads(git(repo, "show", f"{e.id}:steps.json").stdout)
    assert list(doc["tensors"]) == ["step", "loss", "lr", "val_loss"]
    rec = doc["tensors"]["step"]
    assert rec["dtype"] == "int64" and rec["shape"] == [11] and doc["tensors"]["loss"]["dtype"] == "float32"
    raw = pygit2.Repository(str(repo))[rec["chunks"][0]].data
    assert struct.unpack("<11q", raw) == (0, 5, 10, 12, 15, 20, 25, 30, 35, 40, 45)
    git(repo, "fsck", "--strict")
    assert tvault.get(e.id)["format"] == "1.1"

    s = series.read(pygit2.Repository(str(repo)), e.id)
    assert s.steps == [0, 5, 10, 12, 15, 20, 25, 30, 35, 40, 45]
    assert s.columns["val_loss"] == [None, None, None, _f32(0.25), None, _f32(0.3), None, None, None, None, None]
    assert s.columns["loss"][3] is None and s.columns["loss"][-1] == _f32(0.001) and s.columns["loss"][1] == _f32(1 / 6)
    summ = s.summary()
    assert (
        summ["loss"]["last"] == [45, _f32(0.001)]
        and summ["loss"]["best"] == [45, _f32(0.001)]
        and summ["loss"]["mode"] == "min"
    )
    assert summ["val_loss"]["best"] == [12, _f32(0.25)] and summ["val_loss"]["last"] == [20, _f32(0.3)]
    assert summ["lr"]["mode"] == "max" and summ["lr"]["points"] == 10

    out = run(repo, "show", e.id[:10]).stdout
    assert "Step metrics (11 steps, 0..45)" in out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("val_loss"))
    assert "last        0.3 at step 20" in line and "best (min)       0.25 at step 12" in line
    js = json.loads(run(repo, "show", e.id[:10], "--json").stdout)
    assert js["step_metrics"]["steps"] == 11 and js["step_metrics"]["metrics"]["loss"]["best"][0] == 45


def test_series_accumulates_until_cleared(repo):
    net = import_fresh("model").Net()
    r = pygit2.Repository(str(repo))
    e0 = tvault.log_all(net)  # nothing recorded: no steps.json, as in a 1.0 entry
    assert series.read(r, e0.id) is None and "steps.json" not in git(repo, "ls-tree", "--name-only", e0.id).stdout
    assert "Step metrics" not in run(repo, "show", e0.id[:10]).stdout
    tvault.log_metrics(step=1, loss=2.0)
    e1 = tvault.log_all(net)
    tvault.log_metrics(step=2, loss=1.0)
    e2 = tvault.log_all(net)  # the curve so far: both steps
    assert series.read(r, e1.id).steps == [1] and series.read(r, e2.id).steps == [1, 2]
    tvault.clear_metrics()
    assert series.read(r, tvault.log_all(net).id) is None


def test_bad_values_are_refused_and_nan_is_missing(repo):
    for bad, match in [
        (dict(step=-1, loss=1.0), "non-negative integer"),
        (dict(step=1.5, loss=1.0), "non-negative integer"),
        (dict(step=True, loss=1.0), "non-negative integer"),
        (dict(step=1), "at least one value"),
        (dict(step=1, loss="low"), "must be a number"),
        (dict(step=1, loss=torch.ones(3)), "single number"),
    ]:
        with pytest.raises(tvault.InvalidInput, match=match):
            tvault.log_metrics(**bad)
    with pytest.raises(tvault.InvalidInput, match="name '' is invalid"):
        tvault.log_metrics(step=1, **{"": 3.0})
    assert series.pending() is None  # nothing half-recorded
    with pytest.warns(UserWarning, match="NaN"):
        tvault.log_metrics(step=3, loss=math.nan, acc=0.5)
    tvault.log_metrics(step=torch.tensor(4), loss=math.inf)  # a diverged run is kept as it was; 0-d step
    e = tvault.log_all(import_fresh("model").Net())
    s = series.read(pygit2.Repository(str(repo)), e.id)
    assert s.columns["loss"] == [None, math.inf] and s.columns["acc"] == [0.5, None]
    assert s.to_json()["columns"]["loss"] == [None, None]
    js = json.loads(run(repo, "show", e.id[:10], "--json").stdout)  # strict JSON: no Infinity
    assert js["step_metrics"]["metrics"]["loss"]["last"] == [4, "inf"]


def _forge(repo_path, base_id: str, steps_doc: dict) -> str:
    """An entry copy whose steps.json says something else, as a hostile remote could send."""
    r = pygit2.Repository(str(repo_path))
    base = r[base_id]
    tb = r.TreeBuilder(base.tree)
    tb.insert(fmt.STEPS, r.create_blob(fmt.dumps(steps_doc, ordered=True)), pygit2.enums.FileMode.BLOB)
    sig = pygit2.Signature("mallory", "m@x")
    cid = str(r.create_commit(None, sig, sig, "tvault: forged", tb.write(), []))
    r.references.create(fmt.REF_PREFIX + cid, pygit2.Oid(hex=cid))
    notes.add(r, json.loads(r[base.tree[fmt.MANIFEST].id].data)["commit"], cid, None, None)
    return cid


def test_hostile_series_is_refused_before_reading(repo):
    tvault.log_metrics(step=1, loss=1.0)
    tvault.log_metrics(step=2, loss=0.5)
    e = tvault.log_all(import_fresh("model").Net())
    r = pygit2.Repository(str(repo))
    good = json.loads(r[r[e.id].tree[fmt.STEPS].id].data)
    cases = []
    huge = json.loads(json.dumps(good))  # claims 2**40 rows: refused from the table, nothing allocated
    n = 2**40
    for rec in huge["tensors"].values():
        rec["shape"] = [n]
        rec["nbytes"] = n * (8 if rec["dtype"] == "int64" else 4)
        rec["chunks"] = rec["chunks"] * (-(-rec["nbytes"] // fmt.CHUNK_BYTES))
    cases.append((huge, "byte limit"))
    wrong = json.loads(json.dumps(good))
    wrong["tensors"]["loss"]["dtype"] = "int32"  # same size, another type
    cases.append((wrong, "must be float32"))
    swapped = json.loads(json.dumps(good))  # steps column pointed at the loss bytes... (8 bytes as one int64 here)
    swapped["tensors"]["step"] = {
        "dtype": "int64",
        "shape": [1],
        "nbytes": 8,
        "chunks": good["tensors"]["loss"]["chunks"],
    }
    cases.append((swapped, "one value per step"))
    for doc, match in cases:
        forged = _forge(repo, e.id, doc)
        with pytest.raises(tvault.CorruptEntry, match=match):
            series.read(r, forged)
        p = run(repo, "show", forged[:12], check=False)
        assert p.returncode == tvault.CorruptEntry.exit_code and "Traceback" not in p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and match.split()[0] in p.stderr


def test_background_log_all_stores_the_curve_as_it_was_at_the_call(repo):
    net = import_fresh("model").Net()
    tvault.log_metrics(step=1, loss=1.0)
    pending = tvault.log_all(net, background=True)
    tvault.log_metrics(step=2, loss=0.5)  # after the call: not in that entry
    e = pending.result()
    assert series.read(pygit2.Repository(str(repo)), e.id).steps == [1]
    assert series.read(pygit2.Repository(str(repo)), tvault.log_all(net).id).steps == [1, 2]
