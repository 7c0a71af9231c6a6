"""Resuming training from a registry entry instead of a ``.ckpt`` file.

An entry logged with ``save_optimizer_state=True`` holds the weights, the
optimizer's state tensors and hyperparameters, and the scheduler's plain
state: everything a ``torch.optim`` training loop carries from one step to the
next except RNG state and the data loader's position (seed those per epoch).
"""

from __future__ import annotations

from typing import Any

import torch

from tvault_git.api.read import _repo, load_into, load_optimizer_into
from tvault_git.errors import InvalidInput
from tvault_git.registry import entries as registry
from tvault_git.spec.format import OPTIMIZER, OPTIMIZER_STATE, SCHEDULER


def _class_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _restored(logged: Any, current: Any) -> Any:
    """A logged plain value turned back into the type the scheduler holds now.

    Writers store inf/nan as strings and tuples as lists (JSON has neither).
    """
    if isinstance(logged, str) and isinstance(current, float):
        try:
            return float(logged)
        except ValueError:
            return current
    if isinstance(logged, list) and isinstance(current, (list, tuple)) and len(logged) == len(current):
        out = [_restored(a, b) for a, b in zip(logged, current)]
        return tuple(out) if isinstance(current, tuple) else out
    if isinstance(logged, dict) and isinstance(current, dict):
        return {k: _restored(v, current.get(k)) for k, v in logged.items()}
    if isinstance(logged, int) and not isinstance(logged, bool) and isinstance(current, float):
        return float(logged)
    return logged


def scheduler_state(logged: dict[str, Any], scheduler: Any) -> dict[str, Any]:
    """The state to hand ``scheduler.load_state_dict``: logged values, current ones where
    the writer could not store them (callables, values it wrote as their repr)."""
    current = scheduler.state_dict()
    out = dict(current)
    for k, v in logged.items():
        cur = current.get(k)
        if isinstance(v, str) and not isinstance(cur, (str, float)) and cur is not None:
            continue  # an object the writer could only describe by its repr: keep the live one
        out[k] = _restored(v, cur)
    return out


def resume(
    model: torch.nn.Module, optimizer: Any = None, scheduler: Any = None, ref: str = "", repo: Any = None
) -> registry.Entry:
    """Restore ``model``, ``optimizer`` and ``scheduler`` from entry ``ref``; returns the entry.

    Everything is checked before anything changes: an entry without optimizer
    state (log with ``save_optimizer_state=True``), without a scheduler, or
    with a different optimizer/scheduler class is refused and nothing is loaded.
    """
    if not isinstance(ref, str) or not ref:
        raise InvalidInput("resume needs an entry ref, e.g. tvault.resume(model, opt, sched, 'mnist@last')")
    r = _repo(repo)
    e = registry.resolve(r, ref)
    sched_doc = None
    if optimizer is not None:
        rec = registry.read_json(r, e.id, OPTIMIZER)
        if rec is None or registry.read_json(r, e.id, OPTIMIZER_STATE) is None:
            raise InvalidInput(
                f"entry {e.short} has no optimizer state to resume from; log it with save_optimizer_state=True"
            )
        if rec.get("class") != _class_name(optimizer):
            raise InvalidInput(f"entry {e.short} holds {rec.get('class')} state, not {_class_name(optimizer)}")
    if scheduler is not None:
        sched_doc = registry.read_json(r, e.id, SCHEDULER)
        if not isinstance(sched_doc, dict) or not isinstance(sched_doc.get("state"), dict):
            raise InvalidInput(f"entry {e.short} has no scheduler state; log it with scheduler=...")
        if sched_doc.get("class") != _class_name(scheduler):
            raise InvalidInput(
                f"entry {e.short} holds a {sched_doc.get('class')} scheduler, not {_class_name(scheduler)}"
            )
        if not hasattr(scheduler, "load_state_dict"):
            raise InvalidInput(f"scheduler {type(scheduler).__name__} has no load_state_dict()")
    load_into(model, e.id, r)
    if optimizer is not None:
        load_optimizer_into(optimizer, e.id, r)
    if sched_doc is not None:
        scheduler.load_state_dict(scheduler_state(sched_doc["state"], scheduler))
    return e


__all__ = ["resume", "scheduler_state"]
