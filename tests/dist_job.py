"""One rank of a ``torchrun`` job for tests/test_distributed.py (gloo, CPU).

    torchrun --nproc-per-node N tests/dist_job.py SCENARIO REPO OUT_DIR

The model class comes from ``distmodel.py`` in REPO (the test writes it), so
the entry's source capture matches a single-process log of the same class.
Each rank writes OUT_DIR/rank<r>.json with what it saw; asserts run here too.
"""

from __future__ import annotations

import json
import os
import sys

import torch
import torch.distributed as dist

scenario, repo, out_dir = sys.argv[1:4]
sys.path.insert(0, repo)
os.chdir(repo)

import distmodel  # noqa: E402

import tvault_git as tvault  # noqa: E402
from tvault_git.errors import InvalidInput  # noqa: E402

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
seen: dict = {"rank": rank, "world": world}


def build(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return distmodel.Wide()


if scenario == "ddp":
    model = torch.nn.parallel.DistributedDataParallel(build(0))
    e = tvault.log_all(model, tags={"job": "ddp"}, result=0.5, metrics={"acc": 0.5}, name="wide")
    seen["entry"] = {
        "id": e.id,
        "commit": e.commit,
        "index": e.index,
        "name": e.name,
        "result": e.result,
        "created": e.manifest["created"],
    }
    # A bad argument on one rank only: every rank raises, nothing is written.
    try:
        tvault.log_all(model, tags={"bad": float("nan")} if rank == world - 1 else {"ok": 1})
    except InvalidInput as ex:
        seen["error"] = str(ex)
    # In the background: every rank gets a handle, the same entry, the weights as they were at the call.
    saved = [prm.detach().clone() for prm in model.parameters()]
    h = tvault.log_all(model, tags={"job": "ddp"}, result=0.5, metrics={"acc": 0.5}, name="wide", background=True)
    with torch.no_grad():
        for prm in model.parameters():
            prm.add_(1.0)
    seen["background"] = h.result(timeout=120).id
    with torch.no_grad():
        for prm, keep in zip(model.parameters(), saved):
            prm.copy_(keep)
    # Another rank can be the writer.
    seen["by_last"] = tvault.log_all(model, result=0.5, writer_rank=world - 1).id
    try:
        tvault.log_all(model, writer_rank=world)
    except InvalidInput as ex:
        seen["bad_writer"] = str(ex)
    # Code that logs from rank 0 alone says so.
    if rank == 0:
        seen["alone"] = tvault.log_all(model, result=1.0, collective=False).id
    dist.barrier()
elif scenario == "fsdp2":
    from torch.distributed.fsdp import fully_shard

    def shard(m: torch.nn.Module) -> torch.nn.Module:
        for sub in (m.emb, m.head, m.tail):
            fully_shard(sub)
        fully_shard(m)
        return m

    model = shard(build(0))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    e = tvault.log_all(model, tags={"job": "fsdp2"}, result=0.25, optimizer=opt, name="wide")
    seen["entry"] = {
        "id": e.id,
        "commit": e.commit,
        "index": e.index,
        "name": e.name,
        "result": e.result,
        "created": e.manifest["created"],
    }
    # Loading back into a sharded model of other values: every rank gets its own shards right.
    other = shard(build(1))
    tvault.load_into(other, e.id)
    full = build(0).state_dict()
    from torch.distributed.tensor import DTensor

    checked = 0
    for name, v in other.state_dict().items():
        got = v.full_tensor() if isinstance(v, DTensor) else v
        assert torch.equal(got, full[name]), name
        checked += 1
    seen["loaded"] = checked
    # Unsharded load on every rank.
    sd = tvault.load(e.id)
    assert all(torch.equal(sd[k], full[k]) for k in full)
    # A full disk on the last rank while it writes its chunks: every rank raises, nothing is published.
    import errno

    from tvault_git.errors import StorageError
    from tvault_git.storage import packwrite

    saved = [prm.to_local().clone() for prm in model.parameters()]  # (x + 2) - 2 is not always x
    with torch.no_grad():
        for prm in model.parameters():
            prm.to_local().add_(2.0)  # new bytes, so every rank has chunks to write
    real_writev = packwrite.os.writev
    if rank == world - 1:

        def full(fd, bufs):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        packwrite.os.writev = full
    try:
        tvault.log_all(model, result=9.0)
    except StorageError as ex:
        seen["disk_error"] = str(ex)
    finally:
        packwrite.os.writev = real_writev
    with torch.no_grad():
        for prm, keep in zip(model.parameters(), saved):
            prm.to_local().copy_(keep)
    # One rank alone cannot log sharded weights.
    try:
        tvault.log_all(model, collective=False)
    except InvalidInput as ex:
        seen["alone_error"] = str(ex)
    # In the background: the shards are copied, training goes on (weights change, the default group is busy).
    h = tvault.log_all(model, tags={"job": "fsdp2"}, result=0.25, optimizer=opt, name="wide", background=True)
    with torch.no_grad():
        for prm in model.parameters():
            prm.to_local().add_(1.0)
    busy = torch.ones(4)
    dist.all_reduce(busy)
    assert busy[0].item() == world
    seen["background"] = h.result(timeout=120).id
elif scenario == "fsdp1":
    import warnings

    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp import StateDictType

    warnings.filterwarnings("ignore", category=FutureWarning)

    def wrap(m: torch.nn.Module) -> torch.nn.Module:
        m.emb = FSDP(m.emb, device_id=torch.device("cpu"))  # nested: the entry's architecture must not show it
        return FSDP(m, device_id=torch.device("cpu"))

    model = wrap(build(0))
    e = tvault.log_all(model, tags={"job": "fsdp1"}, result=0.125, name="wide")
    seen["entry"] = {"id": e.id, "commit": e.commit, "index": e.index, "name": e.name, "result": e.result}
    other = wrap(build(1))
    tvault.load_into(other, e.id)
    with FSDP.state_dict_type(other, StateDictType.FULL_STATE_DICT):
        got = other.state_dict()
    full = build(0).state_dict()
    assert set(got) == set(full), (sorted(got), sorted(full))
    for name, v in got.items():
        assert torch.equal(v, full[name]), name
    seen["loaded"] = len(got)
else:
    raise SystemExit(f"unknown scenario {scenario}")

with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
    json.dump(seen, f)
dist.destroy_process_group()
