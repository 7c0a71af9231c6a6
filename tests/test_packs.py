"""Small weight packs are merged, so object lookups stay fast as entries pile up."""

from __future__ import annotations

import os

import pygit2
import torch

import tvault_git as tvault
from tests.helpers import git
from tvault_git.registry import entries as registry
from tvault_git.storage import packmerge as packs
from tvault_git.storage import packread as packread
from tvault_git.storage import packwrite as objects


def _tvault_packs(repo) -> list[str]:
    return packs.tvault_packs(str(repo / ".git/objects/pack"))


def _objects_by_pack(repo) -> dict[str, list[str]]:
    out = {}
    for base in sorted(p for p in (repo / ".git/objects/pack").iterdir() if p.suffix == ".idx"):
        lines = git(repo, "verify-pack", "-v", str(base)).stdout.splitlines()  # also checks the pack
        out[base.stem] = [ln.split()[0] for ln in lines if len(ln.split()) > 2 and ln.split()[1] == "blob"]
    return out


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.Linear(32, 4))


def test_small_packs_are_merged_and_every_entry_still_loads(repo, monkeypatch):
    monkeypatch.setattr(packs, "MERGE_AT", 5)
    git(repo, "gc", "--quiet")  # a pack git wrote itself: not ours, never touched
    theirs = {p for p in os.listdir(repo / ".git/objects/pack") if p.endswith(".pack")}
    assert theirs
    logged = []
    for i in range(13):
        m = _model(i)
        logged.append((tvault.log_all(m, result=float(i)), {k: v.clone() for k, v in m.state_dict().items()}))
        assert len(_tvault_packs(repo)) < 5
    assert theirs <= set(os.listdir(repo / ".git/objects/pack"))
    for e, sd in logged:
        got = tvault.load(e.id)
        assert set(got) == set(sd) and all(torch.equal(got[k], v) for k, v in sd.items())
    by_pack = _objects_by_pack(repo)
    ours = [o for b, objs in by_pack.items() if f"{b}.pack" not in theirs for o in objs]
    assert len(ours) == len(set(ours)) == 13 * 4
    assert not [n for n in os.listdir(repo / ".git/objects/pack") if n.startswith("tmp_")]
    git(repo, "fsck", "--full", "--strict")


def test_merge_drops_duplicates_of_racing_writers(repo, monkeypatch):
    """Two processes may both store the same new blob; the merged pack holds it once."""
    r = pygit2.Repository(str(repo))
    data = [memoryview(os.urandom(5000)), memoryview(os.urandom(7000))]
    ids, _ = objects.write_blobs(r, data)
    monkeypatch.setattr(objects._Shared, "claim", lambda self, oid: True)  # as if the other writer had not finished
    data.append(memoryview(os.urandom(3000)))
    ids2, new = objects.write_blobs(r, data)  # the same two blobs again, and one more
    assert ids2[:2] == ids and new == 15000
    pack_dir = str(repo / ".git/objects/pack")
    assert packs.merge(pygit2.Repository(str(repo)), pack_dir, packs.tvault_packs(pack_dir)) == 2
    (only,) = packs.tvault_packs(pack_dir)
    objs = _objects_by_pack(repo)[os.path.basename(only)]
    assert sorted(objs) == sorted(ids2)
    for oid, d in zip(ids2, data):
        assert bytes(r[oid].read_raw()) == bytes(d)
    git(repo, "fsck", "--full", "--strict")


def test_a_reader_keeps_its_fast_path_after_packs_are_merged_away(repo, monkeypatch):
    entries = [tvault.log_all(_model(i)) for i in range(3)]
    tvault.load(entries[0].id)  # this process has listed and opened the packs
    pack_dir = str(repo / ".git/objects/pack")
    assert (
        packs.merge(pygit2.Repository(str(repo)), pack_dir, packs.tvault_packs(pack_dir)) == 3
    )  # as another process would

    def no_slow_path(*a, **k):
        raise AssertionError("fell back to libgit2")

    monkeypatch.setattr(packread, "_read_generic", no_slow_path)
    for e in entries:
        assert torch.equal(tvault.load(e.id)["0.weight"], _model(entries.index(e))[0].weight)
    assert len(registry.entries(pygit2.Repository(str(repo)))) == 3


def test_big_packs_are_never_rewritten(repo, monkeypatch):
    monkeypatch.setattr(packs, "MERGE_AT", 2)
    monkeypatch.setattr(packs, "SMALL_PACK", 100_000)
    m = torch.nn.Linear(300, 300)
    tvault.log_all(m)  # a 360 KB pack: big here
    (big,) = _tvault_packs(repo)
    for _ in range(2):  # two small packs (a new bias each time): merged
        with torch.no_grad():
            m.bias.add_(1)
        tvault.log_all(m)
    after = _tvault_packs(repo)
    assert len(after) == 2 and big in after
    git(repo, "fsck", "--full", "--strict")


def test_a_damaged_small_pack_is_left_out_of_the_merge(repo):
    entries = [tvault.log_all(_model(i)) for i in range(3)]
    pack_dir = str(repo / ".git/objects/pack")
    bases = sorted(packs.tvault_packs(pack_dir))
    victim = bases[0] + ".pack"
    os.chmod(victim, 0o644)
    with open(victim, "r+b") as f:  # flip a byte inside the first object's data
        f.seek(40)
        b = f.read(1)
        f.seek(40)
        f.write(bytes([b[0] ^ 0xFF]))
    assert packs.merge(pygit2.Repository(str(repo)), pack_dir, bases) == 2
    left = packs.tvault_packs(pack_dir)
    assert len(left) == 2 and bases[0] in left  # the damaged one, untouched, and the merged one
    loaded = 0
    for e in entries:
        try:
            tvault.load(e.id)
            loaded += 1
        except tvault.CorruptEntry:
            pass  # the damaged entry is refused, never returned
    assert loaded == 2


def test_merges_copy_each_byte_a_few_times_not_once_per_merge(repo, monkeypatch):
    """Small models: the merged pack is not copied again by every merge (geometric merging), and
    the number of packs stays small."""
    monkeypatch.setattr(packs, "MERGE_AT", 4)
    copied: list[int] = []
    real = packs.merge

    def counting(r, pack_dir, bases, keep=None):
        copied.append(sum(os.path.getsize(b + ".pack") for b in bases))
        return real(r, pack_dir, bases, keep)

    monkeypatch.setattr(packs, "merge", counting)
    entries = []
    for i in range(64):
        entries.append(tvault.log_all(_model(i)))
        assert len(_tvault_packs(repo)) <= 4 + 6  # MERGE_AT, and one merged pack per size level
    stored = sum(os.path.getsize(b + ".pack") for b in packs.tvault_packs(str(repo / ".git/objects/pack")))
    # all in one merged pack each time: ~11x what is stored here; doubling levels: ~log2(64/4) = 4x
    assert sum(copied) < 6 * stored, (sum(copied), stored)
    for i in (0, 31, 63):
        assert torch.equal(tvault.load(entries[i].id)["0.weight"], _model(i)[0].weight)
    git(repo, "fsck", "--full", "--strict")
