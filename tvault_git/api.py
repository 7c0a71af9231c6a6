"""Reading entries back: metadata, weights (all or one tensor), export."""

from __future__ import annotations

import os
from typing import Any, Iterable

import pygit2
import torch

from . import registry, tensors
from .errors import InvalidInput
from .registry import Entry
from .repo import open_repo


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


def load(ref: str, repo: Any = None, names: Iterable[str] | None = None, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The entry's state_dict (or just ``names``), bit-identical to what was logged."""
    r = _repo(repo)
    e = registry.resolve(r, ref)
    recs = weight_records(r, e)
    where = f"entry {e.short}"
    sd = tensors.read_tensors(r, recs, where, names)
    return sd if str(device) == "cpu" else {n: t.to(device) for n, t in sd.items()}


def load_tensor(ref: str, name: str, repo: Any = None) -> torch.Tensor:
    """One tensor, without reading the others."""
    return load(ref, repo, names=[name])[name]


def load_into(model: torch.nn.Module, ref: str, repo: Any = None, strict: bool = True) -> Any:
    """``model.load_state_dict`` from an entry; returns torch's missing/unexpected keys."""
    from .entry import unwrap_model

    m = unwrap_model(model)
    device = next((p.device for p in m.parameters()), torch.device("cpu"))
    return m.load_state_dict(load(ref, repo, device=device), strict=strict)


def export(ref: str, path: str | os.PathLike, repo: Any = None) -> str:
    """Write the weights as ``.safetensors`` or ``.pt`` (chosen by extension)."""
    path = os.fspath(path)
    sd = load(ref, repo)
    if path.endswith(".safetensors"):
        try:
            from safetensors.torch import save_file
        except ImportError:
            raise InvalidInput("exporting .safetensors needs the safetensors package: pip install safetensors") from None
        save_file({k: v.contiguous() for k, v in sd.items()}, path)
    elif path.endswith((".pt", ".pth")):
        torch.save(sd, path)
    else:
        raise InvalidInput(f"unknown export format for {path!r}: use a .safetensors or .pt file name")
    return path
