"""Bad input gets a clear one-line error, a non-zero exit code, and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pygit2
import pytest
import torch
from conftest import git, import_fresh, init_repo
from conftest import tvault as run_tvault

import tvault_git as tvault
from tvault_git.registry import entries as registry
from tvault_git.registry import notes as notes
from tvault_git.spec import format as fmt


def _nothing_written(repo: Path) -> None:
    assert git(repo, "for-each-ref", "refs/tvault/", "refs/notes/").stdout == ""
    packs = [p for p in os.listdir(repo / ".git/objects/pack")] if (repo / ".git/objects/pack").exists() else []
    assert packs == []


def _assert_one_line_error(p: subprocess.CompletedProcess, *words: str) -> None:
    assert p.returncode != 0
    assert "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        ({"result": float("nan")}, tvault.InvalidInput, ["result", "nan"]),
        ({"result": float("inf")}, tvault.InvalidInput, ["result", "inf"]),
        ({"result": "high"}, tvault.InvalidInput, ["result", "number"]),
        ({"result": True}, tvault.InvalidInput, ["result", "number"]),
        ({"result": torch.tensor([1.0, 2.0])}, tvault.InvalidInput, ["single number"]),
        ({"metrics": {"loss": float("nan")}}, tvault.InvalidInput, ["loss"]),
        ({"metrics": [1, 2]}, tvault.InvalidInput, ["metrics"]),
        ({"tags": {"lr": object()}}, tvault.InvalidInput, ["tags.lr", "JSON"]),
        ({"tags": {"x": float("inf")}}, tvault.InvalidInput, ["tags.x"]),
        ({"tags": {1: "a"}}, tvault.InvalidInput, ["key"]),
        ({"tags": "lr=0.1"}, tvault.InvalidInput, ["tags must be a dict"]),
        ({"name": "has space"}, tvault.InvalidInput, ["name"]),
        ({"optimizer": "adam"}, tvault.InvalidInput, ["optimizer"]),
    ],
)
def test_bad_log_arguments_are_refused_before_writing(repo, kwargs, exc, words):
    model = import_fresh("model")
    with pytest.raises(exc) as ei:
        tvault.log_all(model.Net(), **kwargs)
    for w in words:
        assert w in str(ei.value)
    _nothing_written(repo)


def test_numbers_of_other_kinds_are_accepted(repo):
    import numpy as np

    model = import_fresh("model")
    e = tvault.log_all(
        model.Net(),
        result=torch.tensor(0.25),
        metrics={"acc": np.float32(0.5), "n": np.int64(3)},
        tags={"lr": 0.01, "bs": 32, "opt": "adam", "aug": True, "sizes": [1, 2]},
    )
    meta = tvault.get(e.id)
    assert meta["result"] == 0.25 and meta["metrics"] == {"acc": 0.5, "n": 3}
    assert meta["tags"] == {"lr": 0.01, "bs": 32, "opt": "adam", "aug": True, "sizes": [1, 2]}
    assert isinstance(meta["tags"]["lr"], float) and isinstance(meta["tags"]["bs"], int)


def test_not_a_module(repo):
    with pytest.raises(tvault.InvalidInput, match="nn.Module"):
        tvault.log_all({"w": torch.zeros(2)})
    _nothing_written(repo)


def test_not_in_a_repo_and_no_commits(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(tvault.NotARepository, match="git init"):
        tvault.log_all(torch.nn.Linear(2, 2))
    _assert_one_line_error(run_tvault(tmp_path, "log", check=False), "not inside a git repository")
    empty = init_repo(tmp_path / "empty", with_model=False)
    with pytest.raises(tvault.NoCommits, match="no commits"):
        tvault.log_all(torch.nn.Linear(2, 2), repo=empty)
    _nothing_written(empty)


def test_unknown_and_ambiguous_refs(repo):
    model = import_fresh("model")
    e = tvault.log_all(model.Net())
    _assert_one_line_error(run_tvault(repo, "show", "deadbeef", check=False), "no entry")
    _assert_one_line_error(run_tvault(repo, "show", "HEAD:7", check=False), "no model 7")
    _assert_one_line_error(run_tvault(repo, "show", "nosuchbranch:0", check=False), "unknown revision")
    # A second id with the same prefix (a ref + note line, as a merge could bring).
    r = pygit2.Repository(str(repo))
    twin = e.id[:6] + ("0" if e.id[6] != "0" else "1") * 34
    r.references.create(fmt.REF_PREFIX + twin, pygit2.Oid(hex=e.id))
    notes.add(r, e.commit, twin, None, None)
    with pytest.raises(tvault.AmbiguousRef) as ei:
        registry.resolve(r, e.id[:6])
    assert e.id[:10] in str(ei.value) and twin[:10] in str(ei.value)
    _assert_one_line_error(run_tvault(repo, "show", e.id[:6], check=False), "ambiguous", e.id[:10])
    assert registry.resolve(r, e.id[:8]).id == e.id


def _corrupt_first_weight(repo: Path, e, tensor: str, mode: str) -> None:
    r = pygit2.Repository(str(repo))
    oid = registry.weight_records(r, e.id)[tensor]["chunks"][0]
    data = bytes(r[oid].data)
    packs = sorted((repo / ".git/objects/pack").glob("pack-*.pack"))
    for p in packs:
        raw = bytearray(p.read_bytes())
        at = raw.find(data[:64])
        if at < 0:
            continue
        os.chmod(p, 0o644)
        if mode == "flip":
            raw[at + 10] ^= 0xFF
            p.write_bytes(bytes(raw))
        else:
            p.write_bytes(bytes(raw[: at + 20]))
        return
    raise AssertionError("weight bytes not found in any pack")


@pytest.mark.parametrize("mode", ["flip", "truncate"])
def test_corrupted_weights_are_refused_with_the_tensor_named(repo, mode):
    model = import_fresh("model")
    m = model.Net()
    torch.manual_seed(0)
    m.fc1.weight.data.normal_()
    e = tvault.log_all(m)
    _corrupt_first_weight(repo, e, "fc1.weight", mode)
    import tvault_git.storage.packread as pr

    pr._packs.clear()
    with pytest.raises(tvault.CorruptEntry) as ei:
        tvault.load(e.id)
    assert "fc1.weight" in str(ei.value)
    p = subprocess.run(
        [sys.executable, "-c", f"import tvault_git as t; t.load('{e.id}')"], cwd=repo, capture_output=True, text=True
    )
    assert p.returncode != 0 and "fc1.weight" in p.stderr
    _assert_one_line_error(run_tvault(repo, "export", e.id, str(repo / "out.safetensors"), check=False), "fc1.weight")
    assert not (repo / "out.safetensors").exists()


def test_newer_format_is_refused(repo):
    model = import_fresh("model")
    e = tvault.log_all(model.Net())
    r = pygit2.Repository(str(repo))
    tree = r[e.id].tree
    manifest = registry.read_manifest(r, e.id)
    manifest["format"] = "2.0"
    tb = r.TreeBuilder(tree)
    tb.insert(fmt.MANIFEST, r.create_blob(fmt.dumps(manifest)), pygit2.enums.FileMode.BLOB)
    sig = pygit2.Signature("x", "x@y")
    newer = str(r.create_commit(None, sig, sig, "future", tb.write(), []))
    r.references.create(fmt.REF_PREFIX + newer, pygit2.Oid(hex=newer))
    notes.add(r, e.commit, newer, None, None)
    with pytest.raises(tvault.UnsupportedFormat, match="upgrade tvault-git"):
        tvault.get(newer)
    _assert_one_line_error(run_tvault(repo, "show", newer[:12], check=False), "2.0", "upgrade")
    assert run_tvault(repo, "show", newer[:12], check=False).returncode == tvault.UnsupportedFormat.exit_code
