"""Reading entries back: metadata, weights (all or one tensor), export."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import pygit2
import torch

from tvault_git.errors import InvalidInput, TvaultError
from tvault_git.gitutil.repo import open_repo
from tvault_git.registry import entries as registry
from tvault_git.registry.entries import Entry
from tvault_git.storage import tensors


def _repo(repo: Any) -> pygit2.Repository:
    return repo if isinstance(repo, pygit2.Repository) else open_repo(repo)


def get(ref: str, repo: Any = None) -> dict[str, Any]:
    """Metadata of one entry: the manifest plus its id, training commit and index."""
    r = _repo(repo)
    e = registry.resolve(r, ref)
    out = dict(e.manifest)
    out.update({"id": e.id, "index": e.index, "ref": e.ref, "commit": e.commit})
    return out


def entries(repo: Any = None) -> list[Entry]:
    """All entries, newest first."""
    return registry.entries(_repo(repo))


def weight_records(r: pygit2.Repository, e: Entry) -> dict[str, Any]:
    return registry.weight_records(r, e.id)


def load(
    ref: str, repo: Any = None, names: Iterable[str] | None = None, device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """The entry's state_dict (or just ``names``), bit-identical to what was logged."""
    r = _repo(repo)
    e = registry.resolve(r, ref)
    table = registry.tensor_table(r, e.id)
    sd = tensors.read_tensors(r, table.tensors, f"entry {e.short}", names, chunk_bytes=table.chunk_bytes)
    return sd if str(device) == "cpu" else {n: t.to(device) for n, t in sd.items()}


def load_tensor(ref: str, name: str, repo: Any = None) -> torch.Tensor:
    """One tensor, without reading the others."""
    return load(ref, repo, names=[name])[name]


def load_into(
    model: torch.nn.Module, ref: str, repo: Any = None, strict: bool = True, *, remote: str | None = None
) -> Any:
    """``model.load_state_dict`` from an entry; returns torch's missing/unexpected keys.

    With ``remote``, ``ref`` is read as the remote reads it and the entry is fetched first if missing.
    """
    from tvault_git.api.log import unwrap_model

    m = unwrap_model(model)
    device = next((p.device for p in m.parameters()), torch.device("cpu"))
    if remote is not None:
        ref = _fetched(_repo(repo), ref, remote)
    from tvault_git.api import distributed

    with distributed.fsdp1_sharded(model) as root:  # FSDP1: its ShardedTensor state_dict
        target = root or m
        if distributed.is_sharded(target.state_dict()):  # FSDP / DTensor: each rank reads only its shards' chunks
            r = _repo(repo)
            e = registry.resolve(r, ref)
            table = registry.tensor_table(r, e.id)
            return distributed.load_sharded(
                target, r, table.tensors, f"entry {e.short}", strict, chunk_bytes=table.chunk_bytes
            )
    return m.load_state_dict(load(ref, repo, device=device), strict=strict)


def _fetched(r: pygit2.Repository, ref: str, remote: str) -> str:
    """The entry id ``ref`` names on ``remote``, fetched (that entry only) if not here.

    Offline, a ref that already resolves locally still works: training boxes lose network.
    """
    from tvault_git.errors import RefNotFound, RemoteError
    from tvault_git.share import sync

    try:
        return sync.fetch_one(r, remote, ref, progress=None).id
    except (RemoteError, RefNotFound):
        try:
            return registry.resolve(r, ref).id
        except TvaultError:
            pass
        raise


def download(
    ref: str, remote: str | None = None, repo: Any = None, device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """The state_dict of ``ref`` (e.g. ``"mnist-resnet@production"``), fetching just that entry from ``remote`` if needed."""
    r = _repo(repo)
    return load(_fetched(r, ref, remote) if remote is not None else ref, r, device=device)


def update(name: str, model: torch.nn.Module, result: Any = None, **kwargs: Any) -> Entry:
    """Log ``model`` as the next version of the named model (``log_all(model, name=name, ...)``)."""
    from tvault_git.api.log import log_all

    return log_all(model, result=result, name=name, **kwargs)


def export(ref: str, path: str | os.PathLike, repo: Any = None) -> str:
    """Write the weights as ``.safetensors`` or ``.pt`` (chosen by extension)."""
    path = os.fspath(path)
    sd = load(ref, repo)
    if path.endswith(".safetensors"):
        try:
            from safetensors.torch import save_file
        except ImportError:
            raise InvalidInput(
                "exporting .safetensors needs the safetensors package: pip install safetensors"
            ) from None
        save_file({k: v.contiguous() for k, v in sd.items()}, path)
    elif path.endswith((".pt", ".pth")):
        torch.save(sd, path)
    else:
        raise InvalidInput(f"unknown export format for {path!r}: use a .safetensors or .pt file name")
    return path


def load_optimizer_into(optimizer: torch.optim.Optimizer, ref: str, repo: Any = None) -> None:
    """Restore an optimizer logged with ``save_optimizer_state=True``.

    State is stored per parameter *name*, so it maps back onto the current
    optimizer's parameters by position in the same param groups.
    """
    from tvault_git.spec.format import OPTIMIZER, OPTIMIZER_STATE

    r = _repo(repo)
    e = registry.resolve(r, ref)
    rec = registry.read_json(r, e.id, OPTIMIZER)
    doc = registry.read_json(r, e.id, OPTIMIZER_STATE)
    if rec is None or doc is None:
        raise InvalidInput(f"entry {e.short} has no optimizer state; log with save_optimizer_state=True")
    cls = f"{type(optimizer).__module__}.{type(optimizer).__qualname__}"
    if rec.get("class") != cls:
        raise InvalidInput(f"entry {e.short} holds {rec.get('class')} state, not {cls}")
    cur = optimizer.state_dict()
    if [len(g["params"]) for g in rec["param_groups"]] != [len(g["params"]) for g in cur["param_groups"]]:
        raise InvalidInput(f"entry {e.short}: the optimizer's param groups have a different layout than the logged one")
    names = [n for g in rec["param_groups"] for n in g["params"]]
    table = registry.tensor_table(r, e.id, OPTIMIZER_STATE)
    tens = tensors.read_tensors(r, table.tensors, f"entry {e.short} optimizer state", chunk_bytes=table.chunk_bytes)
    values = doc.get("values") or {}
    state: dict[int, dict[str, Any]] = {}
    for idx, pname in enumerate(names):
        st: dict[str, Any] = dict(values.get(pname, {}))
        prefix = pname + "."
        for tname, t in tens.items():
            if tname.startswith(prefix):
                st[tname[len(prefix) :]] = t
        if st:
            state[idx] = st
    groups = []
    for g_rec, g_cur in zip(rec["param_groups"], cur["param_groups"]):
        g = dict(g_cur)
        for k, v in g_rec.items():
            if k == "params":
                continue
            if isinstance(v, str) and isinstance(g_cur.get(k), float):
                v = float(v)  # "inf"/"nan" were stored as strings
            elif isinstance(v, list) and isinstance(g_cur.get(k), tuple):
                v = tuple(v)
            g[k] = v
        groups.append(g)
    optimizer.load_state_dict({"state": state, "param_groups": groups})
