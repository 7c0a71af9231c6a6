"""What ``torch.compile`` was asked for: the entry records that the model ran compiled, and how.

The model itself is captured as the module ``torch.compile`` wrapped (its
source, architecture and weights without the ``_orig_mod.`` prefix); this
reads the options back from the wrapper. Dynamo keeps them in private,
version-dependent objects, so every step is best effort: what cannot be
recovered is left out, never guessed.
"""

from __future__ import annotations

from typing import Any

_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def _backend_object(ctx: Any) -> Any:
    """The object ``torch.compile`` built for the backend (``_TorchCompileWrapper`` and kin)."""
    obj = getattr(ctx, "callback", None)
    for _ in range(12):
        if obj is None:
            return None
        if type(obj).__name__.startswith("_TorchCompile"):
            return obj
        obj = getattr(obj, "_torchdynamo_orig_backend", None) or getattr(obj, "__wrapped__", None)
    return None


def _plain(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items() if _plain(x) is not _SKIP}
    if isinstance(v, list | tuple):
        return [p for p in map(_plain, v) if p is not _SKIP]
    return _SKIP


_SKIP = object()


def _inductor_mode(options: dict[str, Any]) -> str | None:
    try:
        from torch._inductor import list_mode_options  # already imported by an inductor compile
    except ImportError:
        return None
    for mode in _MODES:
        try:
            if list_mode_options(mode) == options:
                return mode
        except Exception:
            return None
    return None


def compile_options(wrapper: Any) -> dict[str, Any] | None:
    """``{"backend", "mode", "fullgraph", "dynamic", "options"}`` (what is recoverable) of an
    ``OptimizedModule``; None for a model that is not compiled."""
    if not hasattr(wrapper, "_orig_mod") or type(wrapper).__name__ != "OptimizedModule":
        return None
    out: dict[str, Any] = {}
    ctx = getattr(wrapper, "dynamo_ctx", None)
    if ctx is not None:
        fg = getattr(ctx, "fullgraph", None)
        if isinstance(fg, bool):
            out["fullgraph"] = fg
    b = _backend_object(ctx)
    if b is not None:
        if type(b).__name__ == "_TorchCompileInductorWrapper":
            out["backend"] = "inductor"
            cfg = getattr(b, "config", None)
            if isinstance(cfg, dict):
                mode = _inductor_mode(cfg)
                if mode is not None:
                    out["mode"] = mode
                elif cfg:
                    out["options"] = _plain(cfg)
        else:
            name = getattr(b, "compiler_name", None)
            if isinstance(name, str):
                out["backend"] = name
            kw = getattr(b, "kwargs", None)
            if isinstance(kw, dict) and kw:
                out["options"] = _plain(kw)
        dyn = getattr(b, "dynamic", None)
        if dyn is None or isinstance(dyn, bool):
            out["dynamic"] = dyn
    return out


def describe(rec: Any) -> str:
    """``torch.compile(backend='eager', fullgraph=True)``: how ``show`` and ``diff`` print it."""
    if not isinstance(rec, dict):
        return "torch.compile"
    args = [f"{k}={rec[k]!r}" for k in ("backend", "mode", "fullgraph", "dynamic", "options") if k in rec]
    return f"torch.compile({', '.join(args)})"
