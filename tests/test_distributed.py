"""log_all and load_into under real ``torchrun`` jobs (gloo on CPU): DDP and FSDP2 on 2 and 4 ranks.

An entry logged collectively must be bit-identical, in everything but its
creation time, to logging the unwrapped single-process model: same weight
table (so the same blob ids), architecture, source capture and model record.
NCCL is not tested here (no GPUs on CI); nothing depends on it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pygit2
import pytest
import torch
from conftest import git, import_fresh, write

pytest.importorskip("torch.distributed")
if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

JOB = Path(__file__).with_name("dist_job.py")

DISTMODEL = """
import torch
import torch.nn as nn

ROWS = 10_003  # uneven over 2 and 4 ranks; 41 MB, so 32 MiB chunks straddle shard boundaries


class Wide(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(ROWS, 1024)
        self.head = nn.Linear(1024, 5)
        self.tail = nn.Linear(5, 3)  # 3 rows over 4 ranks: one rank holds none
        self.register_buffer("scale", torch.arange(7, dtype=torch.float64))

    def forward(self, x):
        return self.tail(self.head(self.emb(x))) * self.scale[0]
"""


def _torchrun(repo: Path, scenario: str, n: int, out: Path) -> list[dict]:
    out.mkdir()
    exe = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or "torchrun"
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(p for p in (os.path.dirname(os.path.dirname(JOB)),) if p),
    )
    p = subprocess.run(
        [exe, "--standalone", f"--nproc-per-node={n}", str(JOB), scenario, str(repo), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert p.returncode == 0, f"torchrun failed ({p.returncode}):\n{p.stdout[-4000:]}\n{p.stderr[-8000:]}"
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(n)]


@pytest.fixture
def dist_repo(repo: Path) -> Path:
    write(repo / "distmodel.py", DISTMODEL)
    git(repo, "add", "distmodel.py")
    git(repo, "commit", "-q", "-m", "wide model")
    return repo


def _parts(r: pygit2.Repository, entry_id: str) -> dict[str, bytes]:
    tree = r[entry_id].tree
    out = {e.name: r[e.id].data for e in tree if e.name not in ("tvault-blobs", "source")}
    out["tvault-blobs"] = sorted(e.name for e in tree["tvault-blobs"])
    out["source"] = str(tree["source"].id) if "source" in tree else None
    return out


def _assert_same_entry(r: pygit2.Repository, dist_id: str, single_id: str) -> None:
    a, b = _parts(r, dist_id), _parts(r, single_id)
    for name in a.keys() | b.keys():
        if name == "tvault.json":
            ma, mb = json.loads(a[name]), json.loads(b[name])
            ma.pop("created"), mb.pop("created")
            assert ma == mb
        else:
            assert a.get(name) == b.get(name), f"{name} differs between the torchrun entry and the single-process one"


def _single(repo: Path, **kwargs):
    import tvault_git as tvault

    torch.manual_seed(0)
    return tvault.log_all(import_fresh("distmodel").Wide(), **kwargs)


def test_ddp_two_ranks_one_entry_same_on_every_rank(dist_repo: Path, tmp_path: Path):
    import tvault_git as tvault

    seen = _torchrun(dist_repo, "ddp", 2, tmp_path / "out")
    ids = {s["entry"]["id"] for s in seen}
    assert len(ids) == 1, "every rank must get the same entry back"
    first = seen[0]["entry"]
    assert all(s["entry"] == first for s in seen)
    # The bad tag on the last rank made every rank raise; the message names that rank.
    assert all("rank 1" in s["error"] or "tags.bad is nan" in s["error"] for s in seen), seen
    assert "tags.bad is nan" in seen[1]["error"] and seen[0]["error"].startswith("rank 1: ")
    r = pygit2.Repository(str(dist_repo))
    listed = [e.id for e in tvault.entries(str(dist_repo))]
    (bg_id,) = {s["background"] for s in seen}
    (by_last,) = {s["by_last"] for s in seen}
    assert all("writer_rank must be a rank of this job (0..1)" in s["bad_writer"] for s in seen)
    # four entries: the collective one, the background one, the last rank's and rank 0's own
    assert sorted(listed) == sorted([first["id"], bg_id, by_last, seen[0]["alone"]])
    single = _single(dist_repo, tags={"job": "ddp"}, result=0.5, metrics={"acc": 0.5}, name="wide")
    _assert_same_entry(r, first["id"], single.id)
    _assert_same_entry(r, bg_id, single.id)
    git(dist_repo, "fsck", "--full", "--strict")


@pytest.mark.parametrize("n", [2, 4])
def test_fsdp2_shards_written_by_their_ranks_bit_identical(dist_repo: Path, tmp_path: Path, n: int):
    import tvault_git as tvault

    seen = _torchrun(dist_repo, "fsdp2", n, tmp_path / "out")
    ids = {s["entry"]["id"] for s in seen}
    assert len(ids) == 1
    entry_id = ids.pop()
    assert all(s["loaded"] == 6 for s in seen)  # emb.weight, head and tail weight and bias, the buffer
    r = pygit2.Repository(str(dist_repo))
    packs_before = {p for p in os.listdir(dist_repo / ".git/objects/pack") if p.endswith(".pack")}
    assert len(packs_before) >= n, "each rank writes its own chunks (a pack per rank at least)"
    torch.manual_seed(0)
    m = import_fresh("distmodel").Wide()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    single = tvault.log_all(m, tags={"job": "fsdp2"}, result=0.25, optimizer=opt, name="wide")
    assert single.new_bytes == 0, "the single-process log found every blob already written by the ranks"
    _assert_same_entry(r, entry_id, single.id)
    assert all("call log_all on every rank" in s["alone_error"] for s in seen)
    assert all("No space left on device" in s["disk_error"] for s in seen)
    assert seen[0]["disk_error"].startswith(f"rank {n - 1}: ")
    assert len(tvault.entries(str(dist_repo))) == 3  # the foreground, background and single-process ones
    (bg_id,) = {s["background"] for s in seen}
    _assert_same_entry(r, bg_id, single.id)  # the background copy was taken before the weights moved on
    sd = tvault.load(entry_id, repo=str(dist_repo))
    assert all(torch.equal(sd[k], v) for k, v in m.state_dict().items())
    git(dist_repo, "fsck", "--full", "--strict")


def test_fsdp1_sharded_tensors_logged_and_loaded_back(dist_repo: Path, tmp_path: Path):
    import tvault_git as tvault

    seen = _torchrun(dist_repo, "fsdp1", 2, tmp_path / "out")
    (entry_id,) = {s["entry"]["id"] for s in seen}
    assert all(s["loaded"] == 6 for s in seen)
    single = _single(dist_repo, tags={"job": "fsdp1"}, result=0.125, name="wide")
    assert single.new_bytes == 0
    _assert_same_entry(pygit2.Repository(str(dist_repo)), entry_id, single.id)
    assert "FullyShardedDataParallel" not in tvault.get(entry_id, repo=str(dist_repo))["model"]["class"]
