"""``log_all`` and ``load_into`` under torch.distributed: one entry per call, shards written where they live.

Every rank calls ``log_all``. Plain tensors (DDP replicas, buffers) are the
writer rank's. Sharded ones (FSDP2 / ``DTensor``, FSDP1 ``ShardedTensor``)
never meet on one rank: each rank reports the byte ranges of the full tensor
it holds, every rank derives the same plan from those reports, and each
32 MiB chunk of the full tensor's bytes (the format's chunking, so the blob
ids are exactly those of an unsharded log) is hashed and written by one rank
that holds part of it, the rest of the chunk sent to it point to point. All
ranks write into the same object store (the repository must be on a file
system they share); the writer then commits one entry that references every
blob, and its id is broadcast. A reader cannot tell the entry from one
logged by a single process.

Control messages are JSON in uint8 tensors (no pickle, so no
``all_gather_object``). A failure on any rank reaches every rank at the next
exchange, and all raise; nothing is published.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pygit2
import torch

from tvault_git import errors
from tvault_git.errors import InvalidInput, TvaultError
from tvault_git.spec.format import CHUNK_BYTES, DTYPES, validate_tensor_record
from tvault_git.storage import packread, packwrite, tensors


def _dist() -> Any:
    import torch.distributed as dist

    return dist


def active(collective: bool | None) -> bool:
    """Whether this call is collective: a process group of more than one rank, unless ``collective=False``."""
    if collective is False:
        return False
    dist = _dist()
    on = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    if collective and not on:
        raise InvalidInput("collective=True needs an initialised torch.distributed process group of more than one rank")
    return on


# --------------------------------------------------------------------------------------------------------------
# FSDP2 gives every wrapped module a class of its own (FSDPLinear); the entry records the user's classes.


@contextlib.contextmanager
def plain_classes(model: torch.nn.Module) -> Iterator[None]:
    """Within the block the model looks unwrapped: FSDP2 modules have their original class
    (FSDPLinear -> Linear) and nested FSDP1 wrappers are replaced by what they wrap (for ``repr``
    and source capture); all is put back after."""
    swapped: list[tuple[torch.nn.Module, type]] = []
    children: list[tuple[torch.nn.Module, str, torch.nn.Module]] = []
    try:
        if _initialized():
            fsdp1 = _fsdp1_class()
            stack = [model]
            while stack and fsdp1 is not None:
                m = stack.pop()
                for name, child in list(m._modules.items()):
                    while child is not None and isinstance(child, fsdp1):
                        children.append((m, name, child))
                        child = m._modules[name] = child.module
                    if child is not None:
                        stack.append(child)
            fsdp_module = _fsdp_module_class()
            for m in model.modules() if fsdp_module is not None else ():
                cls = type(m)
                if issubclass(cls, fsdp_module):  # type: ignore[arg-type]
                    orig = next((c for c in cls.__mro__[1:] if not issubclass(c, fsdp_module)), None)  # type: ignore[arg-type]
                    if orig is not None and issubclass(orig, torch.nn.Module):
                        m.__class__ = orig
                        swapped.append((m, cls))
        yield
    finally:
        for m, cls in swapped:
            m.__class__ = cls
        for parent, name, child in reversed(children):
            parent._modules[name] = child


def _initialized() -> bool:
    dist = _dist()
    return bool(dist.is_available() and dist.is_initialized())


def _fsdp1_class() -> type | None:
    try:
        from torch.distributed.fsdp import FullyShardedDataParallel
    except ImportError:  # pragma: no cover
        return None
    return FullyShardedDataParallel


def fsdp1_inner(model: Any) -> torch.nn.Module | None:
    """The module an FSDP1 ``FullyShardedDataParallel`` wraps, or None for anything else."""
    if not _initialized():
        return None
    fsdp1 = _fsdp1_class()
    return model.module if fsdp1 is not None and isinstance(model, fsdp1) else None


@contextlib.contextmanager
def fsdp1_sharded(model: Any) -> Iterator[torch.nn.Module | None]:
    """For an FSDP1 root (possibly inside DDP or torch.compile wrappers): the root, with
    ``SHARDED_STATE_DICT`` in force (``ShardedTensor`` values, nothing gathered); else None."""
    fsdp1 = _fsdp1_class() if _initialized() else None
    root = None
    m = model
    for _ in range(10):
        if fsdp1 is not None and isinstance(m, fsdp1):
            root = m
            break
        nxt = getattr(m, "_orig_mod", None) or getattr(m, "module", None)
        if not isinstance(nxt, torch.nn.Module):
            break
        m = nxt
    if root is None:
        yield None
        return
    from torch.distributed.fsdp import StateDictType

    with fsdp1.state_dict_type(root, StateDictType.SHARDED_STATE_DICT):  # type: ignore[union-attr]
        yield root


def count_parameters(model: torch.nn.Module, state_dict: Mapping[str, Any]) -> int:
    """Parameters of the unsharded model (FSDP1's flat parameters hold shards: count the sharded entries)."""
    sharded = _sharded_tensor_class() if _initialized() else None
    if sharded is not None and any(isinstance(v, sharded) for v in state_dict.values()):
        return sum(math.prod(v.shape) for v in state_dict.values() if isinstance(v, sharded))
    return sum(p.numel() for p in model.parameters())


def _fsdp_module_class() -> type | None:
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # pragma: no cover - torch < 2.6
        return None
    return FSDPModule


# --------------------------------------------------------------------------------------------------------------
# Where a rank's part of a tensor lies in the full tensor's bytes.


def _dtensor_class() -> type | None:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # pragma: no cover
        return None
    return DTensor


def _sharded_tensor_class() -> type | None:
    try:
        from torch.distributed._shard.sharded_tensor import ShardedTensor
    except ImportError:  # pragma: no cover
        return None
    return ShardedTensor


def _region_bytes(offset: list[int], size: list[int], shape: list[int], itemsize: int) -> tuple[int, int] | None:
    """Byte range [lo, hi) of a box of the full tensor in C order, or None when the box is not contiguous."""
    n = math.prod(size)
    if n == 0:
        return (0, 0)
    partial = [j for j in range(len(shape)) if size[j] != shape[j]]
    if partial and any(size[i] != 1 for i in range(partial[-1])):
        return None
    start, stride = 0, 1
    for j in reversed(range(len(shape))):
        start += offset[j] * stride
        stride *= shape[j]
    return start * itemsize, (start + n) * itemsize


def _boxes(t: Any) -> list[tuple[list[int], list[int], torch.Tensor]] | None:
    """(offset, size, local data) of each box of the full tensor this rank holds; None when not sharded."""
    dtensor, sharded = _dtensor_class(), _sharded_tensor_class()
    if dtensor is not None and isinstance(t, dtensor):
        from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

        if any(p.is_partial() for p in t.placements):
            return []  # no rank holds the values: reduced by full_tensor()
        size, offset = compute_local_shape_and_global_offset(t.shape, t.device_mesh, t.placements)
        local = t.to_local()
        if list(local.shape) != list(size):  # padded or otherwise unusual local storage
            return []
        return [(list(offset), list(size), local)]
    if sharded is not None and isinstance(t, sharded):
        return [(list(s.metadata.shard_offsets), list(s.metadata.shard_sizes), s.tensor) for s in t.local_shards()]
    return None


@dataclass
class _Local:
    """This rank's part of one sharded tensor: byte ranges of the full tensor and the bytes themselves."""

    name: str
    dtype: str
    shape: list[int]
    nbytes: int
    ranges: list[tuple[int, int, memoryview]] = field(default_factory=list)
    keep: list[torch.Tensor] = field(default_factory=list)
    contiguous: bool = True  # every box is one byte range; else the tensor is gathered whole

    def piece(self, lo: int, hi: int) -> memoryview:
        for a, b, mv in self.ranges:
            if a <= lo and hi <= b:
                return mv[lo - a : hi - a]
        raise AssertionError(f"rank holds no bytes [{lo}, {hi}) of {self.name}")  # the plan said it did


def _local_part(name: str, t: Any, boxes: list[tuple[list[int], list[int], torch.Tensor]], copy: bool) -> _Local:
    dt = tensors.dtype_name(t.dtype)
    shape = list(t.shape)
    loc = _Local(name, dt, shape, math.prod(shape) * DTYPES[dt])
    if not boxes and loc.nbytes:
        loc.contiguous = False
    for offset, size, data in boxes:
        rng = _region_bytes(offset, size, shape, DTYPES[dt])
        if rng is None:
            loc.contiguous = False
            continue
        if rng[1] > rng[0]:
            cpu, mv = tensors._as_bytes(data, name)
            if copy and cpu.data_ptr() == data.data_ptr():  # a view of the live weights: copy it
                cpu = cpu.clone()
                mv = memoryview(cpu.reshape(-1).view(torch.uint8).numpy()).cast("B")
            if mv.nbytes != rng[1] - rng[0]:
                loc.contiguous = False
                continue
            loc.keep.append(cpu)
            loc.ranges.append((rng[0], rng[1], mv))
    return loc


# --------------------------------------------------------------------------------------------------------------
# JSON over the process group.


_GROUPS: dict[int, tuple[Any, Any]] = {}  # id(default group) -> (that group, kept so the id stays its; ours)


def _group() -> Any:
    """tvault's own gloo group over all ranks, made (collectively) by the first call under each default group.

    Gloo takes CPU tensors whatever the training's backend (NCCL included), and the collectives of a
    background log never interleave with the training's own on the default group.
    """
    dist = _dist()
    default = dist.distributed_c10d._get_default_group()
    if id(default) not in _GROUPS:
        _GROUPS[id(default)] = (default, dist.new_group(backend="gloo"))
    return _GROUPS[id(default)][1]


def _encode(obj: Any) -> torch.Tensor:
    data = json.dumps(obj, separators=(",", ":")).encode()
    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.empty(0, dtype=torch.uint8)


def _decode(t: torch.Tensor) -> Any:
    return json.loads(t.cpu().numpy().tobytes().decode())


def all_gather_json(obj: Any, group: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order."""
    dist = _dist()
    payload = _encode(obj)
    n = torch.tensor([payload.numel()], dtype=torch.int64)
    sizes = [torch.empty_like(n) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, n, group=group)
    most = max(int(s.item()) for s in sizes)
    padded = torch.zeros(most, dtype=torch.uint8)
    padded[: payload.numel()] = payload
    out = [torch.empty(most, dtype=torch.uint8) for _ in sizes]
    dist.all_gather(out, padded, group=group)
    return [_decode(o[: int(s.item())]) for o, s in zip(out, sizes)]


def broadcast_json(obj: Any, src: int, group: Any) -> Any:
    """``obj`` of rank ``src``, on every rank."""
    dist = _dist()
    payload = _encode(obj) if dist.get_rank() == src else None
    n = torch.tensor([payload.numel() if payload is not None else 0], dtype=torch.int64)
    dist.broadcast(n, src, group=group)
    if payload is None:
        payload = torch.empty(int(n.item()), dtype=torch.uint8)
    if payload.numel():
        dist.broadcast(payload, src, group=group)
    return _decode(payload)


def _failure(e: BaseException) -> dict[str, str]:
    return {
        "type": type(e).__name__ if isinstance(e, TvaultError) else "TvaultError",
        "message": str(e) or type(e).__name__,
    }


def _raise_first(reports: list[dict[str, Any]], me: int, mine: BaseException | None) -> None:
    """If any rank failed: this rank's own error, or the first failed rank's, re-raised with the same class."""
    if mine is not None:
        raise mine
    for rank, rep in enumerate(reports):
        err = rep.get("error")
        if err:
            cls = getattr(errors, err["type"], TvaultError)
            if not (isinstance(cls, type) and issubclass(cls, TvaultError)):
                cls = TvaultError
            raise cls(f"rank {rank}: {err['message']}")


# --------------------------------------------------------------------------------------------------------------
# The plan: which rank hashes which chunk, and who sends it which bytes.


def _segments(nbytes: int, held: list[list[tuple[int, int]]]) -> list[tuple[int, int, int]] | None:
    """[lo, hi) -> holding rank (the lowest that holds it), covering [0, nbytes); None when bytes are missing."""
    cuts = sorted({0, nbytes} | {x for ranges in held for a, b in ranges for x in (a, b)})
    segs: list[tuple[int, int, int]] = []
    for lo, hi in itertools.pairwise(cuts):
        if hi <= lo:
            continue
        holder = next((r for r, ranges in enumerate(held) if any(a <= lo and hi <= b for a, b in ranges)), None)
        if holder is None:
            return None
        if segs and segs[-1][2] == holder and segs[-1][1] == lo:
            segs[-1] = (segs[-1][0], hi, holder)
        else:
            segs.append((lo, hi, holder))
    return segs


@dataclass
class _Chunk:
    tensor: str
    index: int
    lo: int
    hi: int
    owner: int
    pieces: list[tuple[int, int, int]]  # (lo, hi, holder), in order


def _plan(order: list[str], sizes: dict[str, int], held: dict[str, list[list[tuple[int, int]]]]) -> list[_Chunk]:
    """Chunks of the sharded tensors with an owner each: the holder of part of it with the least work so far."""
    world = len(next(iter(held.values()))) if held else 1
    load = [0] * world
    out = []
    for name in order:
        nbytes = sizes[name]
        segs = _segments(nbytes, held[name])
        assert segs is not None
        for i, lo in enumerate(range(0, nbytes, CHUNK_BYTES)):
            hi = min(nbytes, lo + CHUNK_BYTES)
            pieces = [(max(a, lo), min(b, hi), r) for a, b, r in segs if a < hi and b > lo]
            share: dict[int, int] = {}
            for a, b, r in pieces:
                share[r] = share.get(r, 0) + b - a
            owner = min(share, key=lambda r: (load[r], -share[r], r))
            load[owner] += hi - lo
            out.append(_Chunk(name, i, lo, hi, owner, pieces))
    return out


def _exchange(
    chunks: list[_Chunk], local: dict[str, _Local], me: int, group: Any
) -> list[tuple[_Chunk, memoryview, Any]]:
    """Move every piece to its chunk's owner; returns this rank's chunks as (chunk, bytes, buffer kept alive)."""
    dist = _dist()
    works, mine, sent = [], [], []
    for tag, ch in enumerate(chunks):
        if ch.owner == me:
            if len(ch.pieces) == 1:
                mine.append((ch, local[ch.tensor].piece(ch.lo, ch.hi), None))
                continue
            buf = torch.empty(ch.hi - ch.lo, dtype=torch.uint8)
            mv = memoryview(buf.numpy()).cast("B")
            for a, b, r in ch.pieces:
                if r == me:
                    mv[a - ch.lo : b - ch.lo] = local[ch.tensor].piece(a, b)
                else:
                    works.append(dist.irecv(buf[a - ch.lo : b - ch.lo], src=r, tag=tag, group=group))
            mine.append((ch, mv, buf))
        else:
            for a, b, r in ch.pieces:
                if r == me:
                    src = torch.frombuffer(local[ch.tensor].piece(a, b), dtype=torch.uint8)
                    works.append(dist.isend(src, dst=ch.owner, tag=tag, group=group))
                    sent.append(src)  # alive until waited for
    for w in works:
        w.wait()
    return mine


# --------------------------------------------------------------------------------------------------------------
# log_all, collectively.


@dataclass
class _Staged:
    """One tensor table between its collective planning and its writing (which may run in a thread)."""

    what: str
    writer: int
    me: int
    tensors: Mapping[str, Any]  # the writer's plain (and gathered) tensors are read from here
    kinds: list[tuple[str, str]]
    local: dict[str, _Local]
    gathered: dict[str, torch.Tensor]
    all_sizes: dict[str, int]
    plan: list[_Chunk]


def _stage(tensors_in: Mapping[str, Any], what: str, writer: int, group: Any, copy: bool) -> _Staged:
    """Collective: every rank reports the byte ranges it holds, and all derive the same chunk plan.

    With ``copy``, this rank's shard bytes are copied (a background log must not see later steps).
    """
    dist = _dist()
    me = dist.get_rank()
    err: BaseException | None = None
    local: dict[str, _Local] = {}
    kinds: list[tuple[str, str]] = []  # (name, "sharded" | "plain")
    try:
        for name, t in tensors_in.items():
            boxes = _boxes(t)
            if boxes is None:
                kinds.append((name, "plain"))
            else:
                local[name] = _local_part(name, t, boxes, copy)
                kinds.append((name, "sharded"))
    except BaseException as e:  # reported to every rank below
        err = e
    report: dict[str, Any] = {"error": _failure(err) if err else None}
    if err is None:
        report["kinds"] = kinds
        report["held"] = {
            n: ([[a, b] for a, b, _ in loc.ranges] if loc.contiguous else None) for n, loc in local.items()
        }
        report["sizes"] = {n: loc.nbytes for n, loc in local.items()}
    reports = all_gather_json(report, group)
    _raise_first(reports, me, err)
    if any(rep["kinds"] != reports[0]["kinds"] for rep in reports):
        raise InvalidInput(
            f"the ranks' {what}s differ (names or which tensors are sharded); every rank must log the same model"
        )

    # Sharded tensors whose boxes are not byte ranges (or do not cover it): whole, on every rank (one at a time).
    gathered: dict[str, torch.Tensor] = {}
    order = [n for n, k in reports[0]["kinds"] if k == "sharded"]
    held: dict[str, list[list[tuple[int, int]]]] = {}
    for name in order:
        lists = [rep["held"][name] for rep in reports]
        nbytes = reports[0]["sizes"][name]
        ok = all(x is not None for x in lists)
        if ok:
            held[name] = [[(a, b) for a, b in x] for x in lists]
            ok = nbytes == 0 or _segments(nbytes, held[name]) is not None
        if not ok:
            held.pop(name, None)
            gathered[name] = _full_tensor(tensors_in[name], writer)
    all_sizes: dict[str, int] = reports[0]["sizes"]
    order = [n for n in order if n in held and all_sizes[n] > 0]
    plan = _plan(order, {n: all_sizes[n] for n in order}, held)
    return _Staged(what, writer, me, tensors_in, kinds, local, gathered, all_sizes, plan)


def _write(st: _Staged, r: pygit2.Repository, group: Any) -> Callable[[], tuple[dict, list[str], int]] | None:
    """Collective: pieces to chunk owners, each rank writes its chunks, all learn every chunk's id.

    On the writer, returns what finishes the table without the others: a call that writes the
    plain tensors and returns (records, blob ids, new bytes), as ``tensors.store_tensors`` does.
    """
    ids: dict[tuple[str, int], str] = {}
    new_bytes = 0
    err = None
    try:
        mine = _exchange(st.plan, st.local, st.me, group)
        if mine:
            oids, new_bytes = packwrite.write_blobs(r, [mv for _, mv, _ in mine])  # type: ignore[arg-type]
            ids = {(ch.tensor, ch.index): oid for (ch, _, _), oid in zip(mine, oids)}
        del mine
    except BaseException as e:  # reported to every rank below
        err = e
    st.local.clear()
    reports = all_gather_json(
        {"error": _failure(err) if err else None, "ids": [[n, i, o] for (n, i), o in ids.items()], "new": new_bytes},
        group,
    )
    _raise_first(reports, st.me, err)
    if st.me != st.writer:
        return None
    return lambda: _writer_table(r, st.tensors, st.what, st.kinds, st.gathered, st.all_sizes, reports)


def writer_plain(st: _Staged) -> dict[str, Any]:
    """The tensors the writer stores itself: plain ones and those gathered whole."""
    return {n: st.gathered.get(n, st.tensors[n]) for n, k in st.kinds if k == "plain" or n in st.gathered}


def _writer_table(
    r: pygit2.Repository,
    tensors_in: Mapping[str, Any],
    what: str,
    kinds: list[tuple[str, str]],
    gathered: dict[str, torch.Tensor],
    all_sizes: dict[str, int],
    reports: list[dict[str, Any]],
) -> tuple[dict, list[str], int]:
    """The writer's part, after every collective: plain (and gathered) tensors, then the table in state_dict order."""
    plain = {n: (gathered[n] if n in gathered else tensors_in[n]) for n, k in kinds if k == "plain" or n in gathered}
    p_records, p_ids, p_new = tensors.store_tensors(r, plain, what)  # type: ignore[arg-type]
    chunk_ids: dict[tuple[str, int], str] = {}
    for rep in reports:
        for n, i, o in rep["ids"]:
            chunk_ids[(n, i)] = o
    records: dict[str, dict] = {}
    blob_ids = set(p_ids)
    for name, _ in kinds:
        if name in p_records:
            records[name] = p_records[name]
            continue
        t = tensors_in[name]
        nbytes = all_sizes[name]
        if nbytes == 0:  # an empty tensor is one empty chunk
            chunks, _ = packwrite.write_blobs(r, [memoryview(b"")])  # type: ignore[arg-type]
        else:
            chunks = [chunk_ids[(name, i)] for i in range(-(-nbytes // CHUNK_BYTES))]
        dt, shape = tensors.dtype_name(t.dtype), list(t.shape)
        records[name] = {"dtype": dt, "shape": shape, "nbytes": nbytes, "chunks": chunks}
        blob_ids.update(chunks)
    return records, sorted(blob_ids), p_new + sum(rep["new"] for rep in reports)


def _full_tensor(t: Any, writer: int) -> torch.Tensor:
    """The whole tensor, collectively (the fallback for layouts that are not byte ranges)."""
    dtensor = _dtensor_class()
    if dtensor is not None and isinstance(t, dtensor):
        return t.full_tensor()  # type: ignore[attr-defined]
    dist = _dist()
    out = torch.empty(t.shape, dtype=t.dtype) if dist.get_rank() == writer else None
    t.gather(dst=writer, out=out)
    return out if out is not None else torch.empty(0, dtype=t.dtype)


def log_all(
    model: Any, tags: Any, result: Any, optimizer: Any, args: dict[str, Any], writer: int, background: bool, mode: str
) -> Any:
    """Collective ``log_all``: every rank calls it, ``writer`` commits, every rank gets the same ``Entry``
    (or, with ``background``, a ``PendingEntry`` for it: planning and the copies here, the rest in a thread)."""
    from tvault_git.api import background as bg
    from tvault_git.api.log import prepare, unwrap_model

    dist = _dist()
    me, world = dist.get_rank(), dist.get_world_size()
    if not isinstance(writer, int) or isinstance(writer, bool) or not 0 <= writer < world:
        raise InvalidInput(f"writer_rank must be a rank of this job (0..{world - 1}), got {writer!r}")
    group = _group()
    slot = bg.slot(unwrap_model(model))
    with slot.lock:
        if slot.pending is not None:  # one log per model in flight (on every rank alike)
            slot.pending._wait()
        p = state_dict = opt_tensors = None
        err: BaseException | None = None
        try:
            p, state_dict, opt_tensors = prepare(model, tags, result, optimizer, **args)
        except BaseException as e:  # every rank learns of it
            err = e
        reports = all_gather_json({"error": _failure(err) if err else None, "opt": opt_tensors is not None}, group)
        _raise_first(reports, me, err)
        copy = background and mode == "copy"
        staged = [_stage(state_dict or {}, "state_dict", writer, group, copy)]
        if reports[writer]["opt"]:
            staged.append(_stage(opt_tensors or {}, "optimizer state", writer, group, copy))  # type: ignore[arg-type]
        plains = [writer_plain(st) for st in staged] if me == writer else []
        if copy and plains:
            for st, snap in zip(staged, bg.snapshot(plains, slot)):
                st.tensors = {**st.tensors, **snap}
                st.gathered = {n: snap[n] for n in st.gathered}
        elif me == writer and background:
            for part in plains:
                for name, t in part.items():
                    tensors.check_loggable(t, name)
        if not background:
            return _finish(p, staged, p.repo, group)  # type: ignore[union-attr]
        r = pygit2.Repository(p.repo.path)  # type: ignore[union-attr]  # the thread's own (libgit2 objects stay in one thread)
        from tvault_git.gitutil.repo import shared_umask

        def work() -> Any:
            with shared_umask(r):  # the caller's log_all has returned: this thread writes on its own
                return _finish(p, staged, r, group)

        return bg.start(slot, work)


def _finish(p: Any, staged: list[_Staged], r: pygit2.Repository, group: Any) -> Any:
    """Collective: write every rank's chunks, the writer commits, every rank returns the same ``Entry``."""
    import dataclasses

    from tvault_git.api.log import commit_entry
    from tvault_git.registry.entries import Entry

    writer, me = staged[0].writer, staged[0].me
    finishers = [_write(st, r, group) for st in staged]
    out: dict[str, Any] = {}
    err: BaseException | None = None
    if me == writer:
        try:
            tables = [f() for f in finishers]  # type: ignore[misc]
            e = commit_entry(dataclasses.replace(p, repo=r), tables[0], tables[1] if len(tables) > 1 else None)
            out = {
                "id": e.id,
                "commit": e.commit,
                "index": e.index,
                "name": e.name,
                "result": e.result,
                "new": e.new_bytes,
                "manifest": e._manifest,
            }
        except BaseException as ex:  # every rank learns of it
            err = ex
            out = {"error": _failure(ex)}
    out = broadcast_json(out, writer, group)
    if err is not None:
        raise err
    if out.get("error"):
        _raise_first([out], me, None)
    return Entry(
        out["id"],
        out["commit"],
        out["index"],
        out["name"],
        out["result"],
        out["new"],
        _repo=r,
        _manifest=out["manifest"],
    )


# --------------------------------------------------------------------------------------------------------------
# load_into a sharded model: each rank reads the chunks under its own shards.


def is_sharded(state_dict: Mapping[str, Any]) -> bool:
    """Whether any value is a DTensor or ShardedTensor (neither exists without a process group)."""
    if not _initialized():
        return False
    return any(_boxes(v) is not None for v in state_dict.values())


def _read_range(
    r: pygit2.Repository, name: str, rec: Any, lo: int, hi: int, out: memoryview, where: str, chunk_bytes: int
) -> None:
    """Bytes [lo, hi) of a stored tensor into ``out``; only the chunks under them are read (each checked whole)."""
    for i in range(lo // chunk_bytes, (hi - 1) // chunk_bytes + 1 if hi > lo else 0):
        a, b = i * chunk_bytes, min(rec["nbytes"], (i + 1) * chunk_bytes)
        oid = rec["chunks"][i]
        s, e = max(a, lo), min(b, hi)
        try:
            if s == a and e == b:
                packread.read_blob_into(r, oid, out[s - lo : e - lo])
            else:
                tmp = bytearray(b - a)
                packread.read_blob_into(r, oid, memoryview(tmp))
                out[s - lo : e - lo] = memoryview(tmp)[s - a : e - a]
        except errors.CorruptEntry as ex:
            raise errors.CorruptEntry(
                f"{where}: tensor {name!r} chunk {i} ({oid[:12]}) is damaged: {ex}; refusing to load it"
            ) from None


def load_sharded(
    model: torch.nn.Module,
    r: pygit2.Repository,
    records: Mapping[str, Any],
    where: str,
    strict: bool,
    *,
    chunk_bytes: int,
) -> Any:
    """``load_state_dict`` on a sharded model, each rank reading only the chunks under its own shards."""
    current = model.state_dict()
    out: dict[str, Any] = {}
    plain = [n for n, v in current.items() if _boxes(v) is None and n in records]
    full = tensors.read_tensors(r, {n: records[n] for n in plain}, where, chunk_bytes=chunk_bytes)
    for name, v in current.items():
        if name not in records:
            continue
        boxes = _boxes(v)
        if boxes is None:
            out[name] = full[name].to(v.device) if isinstance(v, torch.Tensor) else full[name]
            continue
        dt, shape, nbytes, _ = validate_tensor_record(name, records[name], where, chunk_bytes)
        if dt != tensors.dtype_name(v.dtype) or list(shape) != list(v.shape):
            raise InvalidInput(
                f"{where}: tensor {name!r} is {dt} {list(shape)}, the model's is {tensors.dtype_name(v.dtype)} {list(v.shape)}"
            )
        if not boxes and nbytes:
            raise InvalidInput(
                f"{where}: tensor {name!r} is sharded in a way load_into cannot fill (partial or padded); load() it and distribute it yourself"
            )
        whole = None
        for offset, size, data in boxes:
            rng = _region_bytes(offset, size, list(shape), DTYPES[dt])
            part = torch.empty(size, dtype=v.dtype)
            if rng is not None and rng[1] > rng[0]:
                _read_range(
                    r,
                    name,
                    records[name],
                    rng[0],
                    rng[1],
                    memoryview(part.reshape(-1).view(torch.uint8).numpy()).cast("B"),
                    where,
                    chunk_bytes,
                )
            elif rng is None:
                if whole is None:
                    whole = tensors.read_tensors(r, {name: records[name]}, where, chunk_bytes=chunk_bytes)[name]
                part = whole[tuple(slice(o, o + s) for o, s in zip(offset, size))]
            with torch.no_grad():
                data.copy_(part.to(data.device))
        out[name] = v
    return model.load_state_dict(out, strict=strict)
