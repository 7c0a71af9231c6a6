"""tvault-git: a PyTorch model registry that lives in your git repository.

    import tvault_git as tvault
    tvault.log_all(model, tags={"lr": 1e-3}, result=acc, optimizer=optimizer)

Heavy modules (torch) load on first use, so the CLI starts fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "log_all": "api.log",
    "PendingEntry": "api.background",
    "load": "api.read",
    "load_into": "api.read",
    "load_tensor": "api.read",
    "get": "api.read",
    "entries": "api.read",
    "export": "api.read",
    "load_optimizer_into": "api.read",
    "Entry": "registry.entries",
    "download": "api.read",
    "update": "api.read",
    "publish": "share.sync",
    "resume": "api.checkpoint",
    "set_alias": "api.aliases",
    "remove_alias": "api.aliases",
    "aliases": "api.aliases",
    "log_metrics": "registry.series",
    "clear_metrics": "registry.series",
}

from tvault_git.errors import (  # noqa: E402  (torch-free)
    AmbiguousRef,
    CaptureWarning,
    CorruptEntry,
    InvalidInput,
    NoCommits,
    NotARepository,
    RefNotFound,
    RemoteError,
    StorageError,
    TvaultError,
    UnsupportedFormat,
)


def __getattr__(name: str) -> Any:
    import importlib

    mod = _LAZY.get(name)
    if mod is None:  # subpackages are imported explicitly: ``import tvault_git.web``
        raise AttributeError(f"module 'tvault_git' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "AmbiguousRef",
    "CaptureWarning",
    "CorruptEntry",
    "Entry",
    "InvalidInput",
    "NoCommits",
    "NotARepository",
    "PendingEntry",
    "RefNotFound",
    "RemoteError",
    "StorageError",
    "TvaultError",
    "UnsupportedFormat",
    "aliases",
    "clear_metrics",
    "download",
    "entries",
    "export",
    "get",
    "load",
    "load_into",
    "load_optimizer_into",
    "load_tensor",
    "log_all",
    "log_metrics",
    "publish",
    "remove_alias",
    "resume",
    "set_alias",
    "update",
]
