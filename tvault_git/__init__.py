"""tvault-git: a PyTorch model registry that lives in your git repository.

    import tvault_git as tvault
    tvault.log_all(model, tags={"lr": 1e-3}, result=acc, optimizer=optimizer)

Heavy modules (torch) load on first use, so the CLI starts fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "log_all": "entry",
    "load": "api",
    "load_into": "api",
    "load_tensor": "api",
    "get": "api",
    "entries": "api",
    "export": "api",
    "load_optimizer_into": "api",
    "Entry": "registry",
    "download": "api",
    "update": "api",
    "publish": "remotes",
    "resume": "checkpoint",
    "log_metrics": "series",
    "clear_metrics": "series",
}

from .errors import (  # noqa: E402  (torch-free)
    AmbiguousRef,
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
    if mod is None:
        try:  # submodules on first use: tvault_git.api, tvault_git.registry, ...
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError:
            raise AttributeError(f"module 'tvault_git' has no attribute {name!r}") from None

    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


__all__ = ["log_all", "download", "update", "publish", "load", "load_into", "load_tensor", "load_optimizer_into", "resume", "log_metrics", "clear_metrics", "get", "entries", "export", "Entry", "TvaultError",
           "AmbiguousRef", "CorruptEntry", "InvalidInput", "NoCommits", "NotARepository", "RefNotFound", "RemoteError", "StorageError", "UnsupportedFormat"]
