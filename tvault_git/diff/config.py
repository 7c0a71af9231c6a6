"""The configuration section of a diff: recorded values that differ, one readable line each.

Why two models differ is often a value, not code: ``dropout_rate`` in a cfg
dict, ``n_embd`` overridden on the command line, ``eps`` in a partial, a
closure's ``k``. Entries of format 1.1 record submodule attributes
(``configuration.json``) and constants' values (``source.json``); both are
compared here, leaf by leaf, with shared objects compared once.
"""

from __future__ import annotations

from typing import Any

from tvault_git.capture.values import flat_configuration
from tvault_git.textfmt import fmt_config

_ABSENT = object()


def _values(conf: dict[str, Any] | None, objects: list[dict[str, Any]]) -> dict[str, tuple[str, Any]]:
    out: dict[str, tuple[str, Any]] = {k: ("attribute", v) for k, v in flat_configuration(conf).items()}
    for o in objects:
        name = f"{o.get('module')}.{o.get('qualname')}"
        if "value" in o:
            out[f"constant {name}"] = ("constant", o["value"])
        for k, v in (o.get("closure") or {}).items():
            out[f"closure {name}.{k}"] = ("closure", v)
    return out


def phrase(item: dict[str, Any]) -> str:
    """'dropout_rate 0.2 -> 0.5 in features.0.cfg', 'n_embd 32 -> 48 (constant __main__)'."""
    a = fmt_config(item["a"], 40) if item["in_a"] else "(none)"
    b = fmt_config(item["b"], 40) if item["in_b"] else "(none)"
    key, kind = item["key"], item["kind"]
    if kind == "constant":
        mod, _, name = key.removeprefix("constant ").rpartition(".")
        return f"{name} {a} -> {b} (constant {mod})"
    if kind == "closure":
        owner, _, name = key.removeprefix("closure ").rpartition(".")
        return f"{name} {a} -> {b} (closure of {owner})"
    where, _, name = key.rpartition(".")
    return f"{name} {a} -> {b}" + (f" in {where}" if where else "")


def configuration(
    conf_a: dict[str, Any] | None,
    objects_a: list[dict[str, Any]],
    conf_b: dict[str, Any] | None,
    objects_b: list[dict[str, Any]],
    worktree: bool = False,
) -> dict[str, Any]:
    if worktree:
        return {
            "summary": "not available for the work tree (values are recorded at log time)",
            "changed": False,
            "available": False,
            "items": [],
        }
    if conf_a is None or conf_b is None:
        which = "either entry" if conf_a is None and conf_b is None else "entry a" if conf_a is None else "entry b"
        return {
            "summary": f"not recorded in {which} (logged before format 1.1)",
            "changed": False,
            "available": False,
            "items": [],
        }
    va, vb = _values(conf_a, objects_a), _values(conf_b, objects_b)
    items = []
    for key in list(va) + [k for k in vb if k not in va]:
        kind, x = va.get(key, (vb.get(key, ("attribute", None))[0], _ABSENT))
        y = vb.get(key, (kind, _ABSENT))[1]
        if x is _ABSENT or y is _ABSENT:
            if kind != "attribute":
                continue  # a constant or closure only one side captured shows in the source sections
        elif x == y:
            continue
        items.append(
            {
                "key": key,
                "kind": kind,
                "a": None if x is _ABSENT else x,
                "b": None if y is _ABSENT else y,
                "in_a": x is not _ABSENT,
                "in_b": y is not _ABSENT,
            }
        )
    if not items:
        return {"summary": f"identical ({len(va)} values)", "changed": False, "items": []}
    summary = "; ".join(phrase(it) for it in items[:4]) + (f"; {len(items) - 4} more" if len(items) > 4 else "")
    return {"summary": summary, "changed": True, "items": items}
