"""Runtime values as plain JSON data: configuration objects, module attributes, constants.

Source text says ``n_embd = 16``; the model may have trained with 32 (a
command-line override). Values are read from the live objects at log time and
turned into bounded JSON: numbers, strings, lists, dicts; dataclasses,
namespaces, ``to_dict()`` configs (Hugging Face), mappings (OmegaConf, yacs,
Lightning hparams) and plain objects of the user's own classes become dicts
with a ``__class__`` key; tensors become shape/dtype/hash; callables their
name (and a lambda's source). An object reached twice is stored once, then
referred to as ``{"__same_as__": "<path>"}``. Containers longer than
``MAX_ITEMS`` keep their first items and a ``__truncated__`` count.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import functools
import hashlib
import inspect
import math
import re
import sys
import textwrap
import types
from collections.abc import Callable, Mapping
from typing import Any

MAX_ITEMS = 200  # per list or dict
MAX_STR = 2000  # characters per string
MAX_DEPTH = 8
MAX_LEAVES = 20000  # per entry: a model's configuration stays a few hundred KB at most
SMALL_TENSOR = 16  # tensors up to this many elements also keep their values

IsLocal = Callable[[type], bool]


def qualname(obj: Any) -> str:
    mod = getattr(obj, "__module__", None) or "?"
    return f"{mod}.{getattr(obj, '__qualname__', getattr(obj, '__name__', type(obj).__name__))}"


def _short_str(s: str) -> str:
    return s if len(s) <= MAX_STR else s[:MAX_STR] + f"... ({len(s) - MAX_STR} more characters)"


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def bounded_repr(obj: Any) -> str:
    """A repr capped in length, without memory addresses (they differ every run, the value does not)."""
    try:
        return _short_str(_ADDRESS.sub("", repr(obj)))
    except Exception as e:  # a broken __repr__ must not break logging
        return f"<{qualname(type(obj))}: repr failed: {type(e).__name__}>"


def lambda_source(fn: types.FunctionType) -> str | None:
    """The ``lambda ...`` expression text of a lambda, from its source line(s)."""
    try:
        lines, _ = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        return None
    text = textwrap.dedent("".join(lines))
    tree = None
    for cand in (text, text.strip().rstrip(",") + "\n", "(" + text.strip().rstrip(",") + ")\n"):
        try:
            tree = ast.parse(cand)
            text = cand
            break
        except SyntaxError:
            continue
    if tree is None:
        return text.strip()[:MAX_STR]
    argnames = list(fn.__code__.co_varnames[: fn.__code__.co_argcount])
    found = [n for n in ast.walk(tree) if isinstance(n, ast.Lambda)]
    for n in found:
        if [a.arg for a in n.args.args] == argnames:
            return ast.get_source_segment(text, n)
    return ast.get_source_segment(text, found[0]) if found else text.strip()[:MAX_STR]


def _tensor(obj: Any) -> dict[str, Any]:
    t = obj.detach()
    out: dict[str, Any] = {
        "__class__": "torch.Tensor",
        "shape": list(t.shape),
        "dtype": str(t.dtype).replace("torch.", ""),
    }
    if t.device.type == "meta":
        return out
    try:
        flat = t.cpu().contiguous().reshape(-1)
        if flat.numel() * flat.element_size() <= 64 * 1024 * 1024:
            import torch

            out["sha1"] = hashlib.sha1(flat.view(torch.uint8).numpy().tobytes()).hexdigest()
        if flat.numel() <= SMALL_TENSOR and not flat.is_complex():
            out["values"] = [plain_scalar(v) for v in flat.tolist()]
    except Exception:  # exotic dtypes or devices: shape and dtype still say a lot
        pass
    return out


def _ndarray(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"__class__": "numpy.ndarray", "shape": list(obj.shape), "dtype": str(obj.dtype)}
    if obj.nbytes <= 64 * 1024 * 1024 and obj.dtype != object:
        out["sha1"] = hashlib.sha1(obj.tobytes()).hexdigest()
    if obj.size <= SMALL_TENSOR and obj.dtype != object:
        out["values"] = [plain_scalar(v) for v in obj.reshape(-1).tolist()]
    return out


def plain_scalar(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, complex):
        return str(v)
    return v


def describe_callable(obj: Any) -> dict[str, Any]:
    fn = inspect.unwrap(obj) if isinstance(obj, types.FunctionType) else obj
    out: dict[str, Any] = {"__callable__": qualname(fn)}
    if isinstance(fn, types.FunctionType) and fn.__name__ == "<lambda>":
        src = lambda_source(fn)
        if src:
            out["__callable__"] = f"{fn.__module__}.<lambda>"
            out["source"] = src
    return out


class Plain:
    """One conversion pass: shared objects are stored once, leaves are counted against the budget."""

    def __init__(self, is_local: IsLocal) -> None:
        self.is_local = is_local
        self.seen: dict[int, str] = {}
        self.leaves = 0
        self.truncated: list[str] = []

    def convert(self, obj: Any, path: str, depth: int = 0) -> Any:
        """The JSON form of ``obj``; ``NotPlain`` for things that are not data (modules, code objects)."""
        self.leaves += 1
        if obj is None or isinstance(obj, (bool, int, str)):
            return _short_str(obj) if isinstance(obj, str) else obj
        if isinstance(obj, (float, complex)):
            return plain_scalar(obj)
        if isinstance(obj, bytes):
            return _short_str(repr(obj))
        if isinstance(obj, enum.Enum):
            return f"{type(obj).__name__}.{obj.name}"
        tname = f"{type(obj).__module__}.{type(obj).__qualname__}"
        if tname in ("torch.dtype", "torch.device", "torch.memory_format", "torch.layout"):
            return str(obj)
        if "torch" in sys.modules and isinstance(obj, sys.modules["torch"].Tensor):
            return _tensor(obj)
        if "numpy" in sys.modules and isinstance(obj, sys.modules["numpy"].ndarray):
            return _ndarray(obj)
        if "numpy" in sys.modules and isinstance(obj, sys.modules["numpy"].generic):
            return plain_scalar(obj.item())
        if isinstance(obj, (types.ModuleType, types.CodeType, types.FrameType, type)):
            return NotPlain
        if depth >= MAX_DEPTH or self.leaves > MAX_LEAVES:
            self.truncated.append(path)
            return {"__truncated__": 1, "__repr__": bounded_repr(obj)[:200]}
        if isinstance(obj, functools.partial):
            return {
                "__class__": "functools.partial",
                "func": qualname(obj.func),
                "args": [self._value(a, f"{path}.args", depth) for a in obj.args],
                "keywords": {str(k): self._value(v, f"{path}.{k}", depth) for k, v in obj.keywords.items()},
            }
        if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
            return describe_callable(obj)
        if _is_module_instance(obj):
            return NotPlain  # submodules are the architecture's business
        oid = id(obj)
        if oid in self.seen:
            return {"__same_as__": self.seen[oid]}
        self.seen[oid] = path
        if isinstance(obj, Mapping):
            return self._mapping(obj.items(), len(obj), path, depth, None)
        if isinstance(obj, (list, tuple, set, frozenset)):
            items = list(obj)
            if isinstance(obj, (set, frozenset)):
                items.sort(key=repr)
            if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # namedtuple
                return self._mapping(zip(obj._fields, obj), len(obj), path, depth, qualname(type(obj)))
            out = [self._value(v, f"{path}[{i}]", depth) for i, v in enumerate(items[:MAX_ITEMS])]
            if len(items) > MAX_ITEMS:
                out.append({"__truncated__": len(items) - MAX_ITEMS})
                self.truncated.append(path)
            return out
        cls = type(obj)
        if dataclasses.is_dataclass(obj):
            fields = [(f.name, getattr(obj, f.name, None)) for f in dataclasses.fields(obj)]
            return self._mapping(fields, len(fields), path, depth, qualname(cls))
        to_dict = getattr(obj, "to_dict", None)
        if callable(to_dict) and not isinstance(obj, type):
            try:
                d = to_dict()
            except Exception:
                d = None
            if isinstance(d, Mapping):
                return self._mapping(d.items(), len(d), path, depth, qualname(cls))
        if isinstance(obj, types.SimpleNamespace) or tname == "argparse.Namespace" or self.is_local(cls):
            attrs = [(k, v) for k, v in getattr(obj, "__dict__", {}).items() if not k.startswith("_")]
            return self._mapping(attrs, len(attrs), path, depth, qualname(cls))
        return NotPlain

    def _value(self, v: Any, path: str, depth: int) -> Any:
        out = self.convert(v, path, depth + 1)
        return bounded_repr(v) if out is NotPlain else out

    def _mapping(self, items: Any, n: int, path: str, depth: int, cls: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {} if cls is None else {"__class__": cls}
        for i, (k, v) in enumerate(items):
            if i >= MAX_ITEMS:
                out["__truncated__"] = n - MAX_ITEMS
                self.truncated.append(path)
                break
            key = k if isinstance(k, str) else repr(k)
            conv = self.convert(v, f"{path}.{key}" if path else key, depth + 1)
            if conv is not NotPlain:
                out[key] = conv
        return out


class _NotPlain:
    def __repr__(self) -> str:
        return "NotPlain"


NotPlain: Any = _NotPlain()


def _is_module_instance(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def value_of(obj: Any, is_local: IsLocal) -> Any:
    """A captured constant's value at log time: plain data where possible, else a bounded repr."""
    out = Plain(is_local).convert(obj, "")
    return bounded_repr(obj) if out is NotPlain else out


_TORCH_ATTRS: frozenset[str] | None = None


def _torch_attrs() -> frozenset[str]:
    global _TORCH_ATTRS
    if _TORCH_ATTRS is None:
        import torch

        _TORCH_ATTRS = frozenset(vars(torch.nn.Module()))
    return _TORCH_ATTRS


def _own_attrs(m: Any) -> list[tuple[str, Any]]:
    skip = _torch_attrs()
    attrs = [(k, v) for k, v in vars(m).items() if k not in skip and not k.startswith("_")]
    if "hparams" not in vars(m) and isinstance(getattr(type(m), "hparams", None), property):
        try:  # Lightning keeps them behind a property
            hp = m.hparams
        except Exception:
            hp = None
        if isinstance(hp, Mapping) or dataclasses.is_dataclass(hp):
            attrs.append(("hparams", hp))
    out = []
    for k, v in attrs:
        if isinstance(v, types.MethodType) and v.__self__ is m:
            continue  # a bound method of the module itself is its class's code
        out.append((k, v))
    return out


def module_configuration(model: Any, is_local: IsLocal) -> dict[str, Any]:
    """Plain-data instance attributes of every submodule, keyed by module path ('' = the model).

    torch's own layers are skipped: ``repr(model)`` (the architecture) already
    states their settings. Shared configuration objects are stored once.
    """
    conv = Plain(is_local)
    modules: dict[str, dict[str, Any]] = {}
    for name, m in model.named_modules():
        cls = type(m)
        if cls.__module__.startswith("torch.") or not hasattr(m, "__dict__"):
            continue
        rec: dict[str, Any] = {}
        for k, v in _own_attrs(m):
            out = conv.convert(v, f"{name}.{k}" if name else k)
            if out is not NotPlain:
                rec[k] = out
        if rec:
            modules[name] = rec
    return {"modules": modules, "truncated": sorted(set(conv.truncated))}


def flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    """Dotted leaves of a plain value: dicts are walked, lists and tensors summaries stay whole."""
    if (
        isinstance(value, dict)
        and value
        and not ("__callable__" in value or value.get("__class__") in ("torch.Tensor", "numpy.ndarray"))
    ):
        for k, v in value.items():
            flatten(v, f"{prefix}.{k}" if prefix else k, out)
    else:
        out[prefix] = value


def flat_configuration(conf: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mod, attrs in ((conf or {}).get("modules") or {}).items():
        flatten(attrs, mod, out)
    return out


MAX_SEARCHABLE = 1000


def searchable(conf: dict[str, Any]) -> dict[str, Any]:
    """The scalar leaves of a configuration (``config.n_layer``: 12), for ``find --where``; at most 1000."""
    out: dict[str, Any] = {}
    for k, v in flat_configuration(conf).items():
        if len(out) >= MAX_SEARCHABLE:
            break
        if k.endswith(("__class__", "__same_as__", "__truncated__")):
            continue
        if v is None or isinstance(v, (bool, int, float)) or (isinstance(v, str) and len(v) <= 200):
            out[k] = v
    return out
