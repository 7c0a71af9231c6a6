"""Weights go in and come back bit-identical, for every dtype and tensor shape."""

from __future__ import annotations

import subprocess

import pytest
import torch
from conftest import git, import_fresh

import tvault_git as tvault
from tvault_git.gitutil.repo import open_repo
from tvault_git.registry.entries import weight_records


def _bits_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.numel() == 0:
        return True
    return torch.equal(a.contiguous().reshape(-1).view(torch.uint8), b.contiguous().reshape(-1).view(torch.uint8))


class Bag(torch.nn.Module):
    """A module whose state_dict holds one tensor of every kind we promise to store."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.lin = torch.nn.Linear(8, 8)
        self.register_buffer("f64", torch.randn(3, 5, dtype=torch.float64, generator=g))
        self.register_buffer("f16", torch.randn(7, generator=g).half())
        self.register_buffer("bf16", torch.randn(4, 4, generator=g).bfloat16())
        self.register_buffer("i64", torch.arange(-5, 5))
        self.register_buffer("i8", torch.tensor([-128, 0, 127], dtype=torch.int8))
        self.register_buffer("u8", torch.tensor([0, 255], dtype=torch.uint8))
        self.register_buffer("flags", torch.tensor([True, False, True]))
        self.register_buffer("c64", torch.randn(3, dtype=torch.complex64, generator=g))
        self.register_buffer("scalar", torch.tensor(3.5))
        self.register_buffer("empty", torch.empty(0, 4))
        self.register_buffer("noncontig", torch.randn(6, 4, generator=g).t())
        self.register_buffer("nan_inf", torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0]))
        if hasattr(torch, "float8_e4m3fn"):
            self.register_buffer("f8", torch.randn(5, generator=g).to(torch.float8_e4m3fn))


def test_every_dtype_round_trips_bit_identical(repo):
    m = Bag()
    sd = m.state_dict()
    e = tvault.log_all(m, result=1.0)
    back = tvault.load(e.id)
    assert list(back) == list(sd)
    for k in sd:
        assert _bits_equal(back[k], sd[k]), k
    assert back["noncontig"].shape == (4, 6)
    assert back["scalar"].dim() == 0
    git(repo, "fsck", "--full", "--strict")


def test_tied_weights_stored_once_and_load_into(repo):
    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(50, 16)
            self.out = torch.nn.Linear(16, 50, bias=False)
            self.out.weight = self.emb.weight

    m = Tied()
    e = tvault.log_all(m)
    recs = tvault.get(e.id)
    assert recs["model"]["tensors"] == 2
    w = weight_records(open_repo(None), e.id)
    assert w["emb.weight"]["chunks"] == w["out.weight"]["chunks"]
    m2 = Tied()
    tvault.load_into(m2, e.id)
    assert torch.equal(m2.emb.weight, m.emb.weight)
    assert m2.out.weight is m2.emb.weight


def test_large_tensor_is_chunked_below_50mb(repo, monkeypatch):
    from tvault_git.registry import entries as registry
    from tvault_git.spec import format as fmt

    assert fmt.CHUNK_BYTES <= 50_000_000  # git hosts reject big blobs
    monkeypatch.setattr(fmt, "CHUNK_BYTES", 1024)  # the one definition; readers take the table's value
    t = torch.randn(1025)  # 4100 bytes -> 5 chunks
    m = torch.nn.Module()
    m.register_buffer("big", t)
    e = tvault.log_all(m)
    recs = registry.weight_records(open_repo(None), e.id)
    assert len(recs["big"]["chunks"]) == 5
    assert registry.tensor_table(open_repo(None), e.id).chunk_bytes == 1024
    monkeypatch.setattr(fmt, "CHUNK_BYTES", 33554432)  # a reader with another default still reads it
    assert torch.equal(tvault.load(e.id)["big"], t)


def test_unchanged_tensors_are_stored_once_across_entries_and_models(repo):
    model = import_fresh("model")
    m = model.Net()
    e1 = tvault.log_all(m, result=0.5)
    assert e1.new_bytes > 0
    e2 = tvault.log_all(m, result=0.6)
    assert e2.new_bytes == 0
    with torch.no_grad():
        m.fc2.weight.add_(1.0)
    e3 = tvault.log_all(m, result=0.7)
    assert e3.new_bytes == m.fc2.weight.numel() * 4
    other = model.Net()
    other.load_state_dict(m.state_dict())
    e4 = tvault.log_all(other)  # a different model object with the same values
    assert e4.new_bytes == 0


def test_load_tensor_reads_one_and_export(repo, tmp_path):
    model = import_fresh("model")
    m = model.Net()
    e = tvault.log_all(m)
    t = tvault.load_tensor(e.id, "fc1.weight")
    assert torch.equal(t, m.fc1.weight)
    with pytest.raises(tvault.InvalidInput):
        tvault.load_tensor(e.id, "nope")
    from safetensors.torch import load_file

    out = tvault.export(e.id, tmp_path / "w.safetensors")
    st = load_file(out)
    assert all(torch.equal(st[k], v) for k, v in m.state_dict().items())
    pt = tvault.export(e.id, tmp_path / "w.pt")
    sd = torch.load(pt, weights_only=True)
    assert all(torch.equal(sd[k], v) for k, v in m.state_dict().items())


def test_wrappers_are_unwrapped(repo):
    model = import_fresh("model")
    m = model.Net()
    dp = torch.nn.DataParallel(m)
    e = tvault.log_all(dp)
    meta = tvault.get(e.id)
    assert meta["model"]["class"] == "model.Net"
    assert "fc1.weight" in tvault.load(e.id)  # no "module." prefix
    compiled = torch.compile(m)
    e2 = tvault.log_all(compiled)
    assert tvault.get(e2.id)["model"]["class"] == "model.Net"


def test_git_sees_a_valid_registry(repo):
    model = import_fresh("model")
    e = tvault.log_all(model.Net(), tags={"lr": 0.01}, result=0.93)
    git(repo, "fsck", "--full", "--strict")
    out = git(repo, "log", "--notes=tvault", "-1").stdout
    assert f"model 0 {e.id}" in out and "result=0.93" in out
    refs = git(repo, "for-each-ref", "refs/tvault/").stdout
    assert e.id in refs
    # gc keeps entries and leaves the weight pack alone
    git(repo, "gc", "--quiet", "--prune=now")
    git(repo, "fsck", "--full")
    back = tvault.load(e.id)
    assert set(back) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
    keep = subprocess.run(
        ["sh", "-c", "ls .git/objects/pack/*.keep | wc -l"], cwd=repo, capture_output=True, text=True
    ).stdout
    assert int(keep) >= 1


def test_changes_behind_torchs_version_counter_are_still_stored(repo):
    model = import_fresh("model")
    m = model.Net()
    tvault.log_all(m)
    v = m.fc1.weight._version
    m.fc1.weight.data.copy_(torch.randn(16, 4))  # .data bypasses the version counter
    assert m.fc1.weight._version == v
    e2 = tvault.log_all(m)
    assert e2.new_bytes == 16 * 4 * 4
    assert torch.equal(tvault.load(e2.id)["fc1.weight"], m.fc1.weight)


def test_pack_object_count_speculation_falls_back_to_a_valid_pack(repo):
    """The pack writer assumes every chunk from the first new one on is new; duplicates inside an entry
    and known chunks after a new one break that guess, and the pack must still be exact."""
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.LayerNorm(8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 8))
    snaps = []

    def log():
        snaps.append({k: v.clone() for k, v in m.state_dict().items()})
        return tvault.log_all(m)

    e1 = log()  # the two LayerNorms hold identical tensors: a duplicate after new chunks
    with torch.no_grad():
        m[0].weight.add_(1.0)  # new first, then known chunks
    e2 = log()
    assert e2.new_bytes == 8 * 8 * 4
    with torch.no_grad():
        m[3].bias.add_(1.0)  # known chunks first, then one new at the end
    e3 = log()
    assert e3.new_bytes == 8 * 4
    for e, snap in zip((e1, e2, e3), snaps):
        sd = tvault.load(e.id)
        assert set(sd) == set(snap) and all(torch.equal(sd[k], v) for k, v in snap.items())
    git(repo, "fsck", "--full", "--strict")
    packs = subprocess.run(
        ["sh", "-c", "ls .git/objects/pack/*.pack"], cwd=repo, capture_output=True, text=True
    ).stdout.split()
    for p in packs:
        git(repo, "verify-pack", p)


def _pack_objects(repo) -> list[str]:
    """Object ids of every pack in the repo, with repeats (checked by git verify-pack)."""
    out = []
    packs = subprocess.run(
        ["sh", "-c", "ls .git/objects/pack/*.idx"], cwd=repo, capture_output=True, text=True
    ).stdout.split()
    for p in packs:
        for line in git(repo, "verify-pack", "-v", p).stdout.splitlines():
            parts = line.split()
            if len(parts) >= 5 and len(parts[0]) == 40 and parts[1] == "blob":
                out.append(parts[0])
    return out


@pytest.mark.parametrize("lanes", [1, 2, 4])
def test_streamed_pack_writes_cut_back_known_blobs_and_never_duplicate(repo, monkeypatch, lanes):
    """Big chunks are written while their id is computed; one that turns out to be known is cut
    from the pack again. Each case runs with an empty id memo, as a new process would."""
    from tvault_git.storage import packwrite as objects

    monkeypatch.setattr(objects, "_STREAM_MIN", 1024)  # stream chunks of a few blocks
    monkeypatch.setattr(objects, "_SLICE_BLOCKS", 2)
    monkeypatch.setattr(objects, "_SPLIT_MIN", 1)
    monkeypatch.setattr(objects, "_cpus", lambda: lanes)
    g = torch.Generator().manual_seed(1)
    shared = torch.randn(70_000, generator=g)  # 280 KB: five stored blocks

    def bag(*tensors):
        m = torch.nn.Module()
        for i, t in enumerate(tensors):
            m.register_buffer(f"t{i}", t.clone())
        return m

    def log(m):
        objects._ID_MEMO.clear()
        before = _pack_objects(repo)
        e = tvault.log_all(m)
        sd = tvault.load(e.id)
        assert all(_bits_equal(sd[k], v) for k, v in m.state_dict().items())
        return e, len(_pack_objects(repo)) - len(before)

    e, added = log(bag(shared))
    assert e.new_bytes == shared.numel() * 4 and added == 1
    fresh = [torch.randn(70_000, generator=g) for _ in range(3)]
    # new, new (now streaming), then known: streamed, found in the repo, cut again
    e, added = log(bag(fresh[0], fresh[1], shared, fresh[2]))
    assert e.new_bytes == 3 * 70_000 * 4 and added == 3
    e, added = log(bag(fresh[0], fresh[1], shared, fresh[2]))  # the same again: nothing written
    assert e.new_bytes == 0 and added == 0
    twins = torch.randn(70_000, generator=g)
    e, added = log(
        bag(twins, twins.clone(), torch.randn(70_000, generator=g), twins.clone())
    )  # equal content, separate memory
    assert e.new_bytes == 2 * 70_000 * 4 and added == 2
    ids = _pack_objects(repo)
    assert len(ids) == len(set(ids)), "a blob was stored twice"
    git(repo, "fsck", "--full", "--strict")
