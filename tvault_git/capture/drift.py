"""Is the file on disk the code that ran? Compare the live code objects with the file compiled now.

Researchers edit ``model.py`` while a job runs. The running functions keep
the code objects compiled at import; compiling a candidate text (the file
now, or the training commit's version) and comparing code objects, ignoring
line numbers, proves which text ran, or that none of them did.
"""

from __future__ import annotations

import functools
import os
import sys
import types
from typing import Any

_Key = tuple[Any, ...]


def _const_key(c: Any) -> Any:
    if isinstance(c, types.CodeType):
        return canonical(c)
    if isinstance(c, (tuple, frozenset)):
        return (
            type(c).__name__,
            tuple(_const_key(x) for x in (sorted(c, key=repr) if isinstance(c, frozenset) else c)),
        )
    return (type(c).__name__, repr(c))


def canonical(co: types.CodeType) -> _Key:
    """What a code object does, without where it sits in the file (no line numbers)."""
    return (
        co.co_code,
        co.co_names,
        co.co_varnames,
        co.co_freevars,
        co.co_cellvars,
        co.co_argcount,
        co.co_posonlyargcount,
        co.co_kwonlyargcount,
        co.co_flags,
        tuple(_const_key(c) for c in co.co_consts),
    )


def _qualname(co: types.CodeType) -> str:
    return getattr(co, "co_qualname", co.co_name)


def compiled_index(text: str, filename: str) -> dict[str, set[_Key]] | None:
    """qualname -> canonical forms of every function compiled from ``text``; None if it does not compile."""
    try:
        top = compile(text, filename, "exec", dont_inherit=True, optimize=sys.flags.optimize)
    except (SyntaxError, ValueError):
        return None
    out: dict[str, set[_Key]] = {}
    stack = [top]
    while stack:
        co = stack.pop()
        out.setdefault(_qualname(co), set()).add(canonical(co))
        stack.extend(c for c in co.co_consts if isinstance(c, types.CodeType))
    return out


@functools.lru_cache(maxsize=4096)
def _real(path: str) -> str:
    return os.path.realpath(path)


def _function_codes(obj: Any, filename: str) -> list[types.CodeType]:
    fn = obj
    if isinstance(fn, (staticmethod, classmethod)):
        fn = fn.__func__
    elif isinstance(fn, property):
        return [c for f in (fn.fget, fn.fset, fn.fdel) if f is not None for c in _function_codes(f, filename)]
    inline = getattr(fn, "_torchdynamo_inline", None)  # @torch.jit.script keeps the Python function here
    if isinstance(inline, types.FunctionType):
        fn = inline
    while isinstance(getattr(fn, "__wrapped__", None), types.FunctionType) and not isinstance(fn, types.FunctionType):
        fn = fn.__wrapped__
    if isinstance(fn, types.FunctionType) and _real(fn.__code__.co_filename) == filename:
        return [fn.__code__]
    return []


def object_codes(obj: Any, filename: str) -> list[types.CodeType]:
    """The running code objects of one function or class (its methods) compiled from ``filename``."""
    if isinstance(obj, type):
        return [c for attr in list(vars(obj).values()) for c in _function_codes(attr, filename)]
    return _function_codes(obj, filename)


def live_codes(module: types.ModuleType, filename: str) -> list[types.CodeType]:
    """Code objects now running that were compiled from ``filename`` (a real path): its functions and methods."""
    out: list[types.CodeType] = []
    for value in list(vars(module).values()):
        if isinstance(value, type) and value.__module__ == module.__name__:
            for attr in list(vars(value).values()):
                out += _function_codes(attr, filename)
        else:
            out += _function_codes(value, filename)
    return out


def matches(codes: list[types.CodeType], index: dict[str, set[_Key]] | None) -> bool:
    if index is None:
        return False
    return all(canonical(co) in index.get(_qualname(co), ()) for co in codes)
