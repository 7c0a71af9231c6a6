"""``log_all(..., background=True)``: training goes on while the entry is hashed and written.

The caller's thread validates the arguments, captures source and work tree
state and copies the tensors into a host buffer kept per model and reused
(pinned when the weights live on a GPU); then it returns a ``PendingEntry``.
A thread hashes, writes and publishes the entry exactly as a foreground call
does (the note line last), so an entry is either fully there or not at all.

At most one snapshot per model is in flight: a second call for the same
model first waits for the first, so memory stays at the model plus one
snapshot. Interpreter exit waits for pending entries (saying so after a
second) and reports any failure nobody collected with ``result()``.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import dataclasses
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pygit2
import torch

from tvault_git.api import distributed
from tvault_git.errors import InvalidInput
from tvault_git.registry.entries import Entry
from tvault_git.storage import reclaim, tensors

EXIT_NOTICE_S = 1.0  # waiting longer than this at exit is announced on stderr
_ALIGN = 64


class PendingEntry:
    """The entry a background ``log_all`` is writing: ``result()`` waits for it, ``done()`` polls."""

    def __init__(self, future: concurrent.futures.Future) -> None:
        self._future = future
        self._collected = False
        self._thread: threading.Thread | None = None

    def done(self) -> bool:
        return self._future.done()

    def result(self, timeout: float | None = None) -> Entry:
        """The published ``Entry``; raises what the background write raised (nothing was recorded then)."""
        self._collected = True
        return self._future.result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._collected = True
        return self._future.exception(timeout)

    def _wait(self, timeout: float | None = None) -> bool:
        done, _ = concurrent.futures.wait([self._future], timeout)
        return bool(done)

    def _join(self) -> None:
        self._wait()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def __repr__(self) -> str:
        state = "done" if self.done() else "pending"
        return f"<PendingEntry {state}>"


class _Writer(threading.Thread):
    """A background writer's thread; exit joins every live one (a daemon thread still inside torch when
    the interpreter shuts down aborts the process)."""


class _Slot:
    """A model's reusable snapshot buffer and its in-flight log."""

    def __init__(self) -> None:
        self.buffer: torch.Tensor | None = None
        self.pending: PendingEntry | None = None
        self.lock = threading.Lock()


_slots: weakref.WeakKeyDictionary[torch.nn.Module, _Slot] = weakref.WeakKeyDictionary()
_slots_lock = threading.Lock()
_pending: set[PendingEntry] = set()
_pending_lock = threading.Lock()
_atexit_registered = False


def slot(model: torch.nn.Module) -> _Slot:
    with _slots_lock:
        s = _slots.get(model)
        if s is None:
            s = _slots[model] = _Slot()
        return s


def _storage_key(t: torch.Tensor) -> tuple | None:
    if t.numel() == 0:
        return None
    return (
        t.device.type,
        t.untyped_storage().data_ptr(),
        t.storage_offset(),
        tuple(t.shape),
        tuple(t.stride()),
        t.dtype,
    )


def snapshot(parts: Sequence[Mapping[str, Any]], slot: _Slot) -> list[dict[str, torch.Tensor]]:
    """Copies of every tensor in ``parts`` (state_dict, optimizer state) in the slot's one host buffer.

    Tied tensors stay tied (one copy); the buffer grows when the model did and is otherwise reused,
    so steady-state logging allocates nothing and faults in no fresh pages.
    """
    plan: list[tuple[int, str, torch.Tensor, int | None]] = []  # part, name, tensor, offset (None: an alias)
    seen: dict[tuple, tuple[int, str]] = {}
    total = 0
    on_gpu = False
    for k, part in enumerate(parts):
        for name, t in part.items():
            if not isinstance(name, str) or not isinstance(t, torch.Tensor):
                raise InvalidInput(f"state_dict entry {name!r} is a {type(t).__name__}, not a tensor")
            tensors.check_loggable(t, name)
            key = _storage_key(t)
            if key is not None and key in seen:
                plan.append((k, name, t, None))
                continue
            if key is not None:
                seen[key] = (k, name)
            plan.append((k, name, t, total))
            total += -(-t.numel() * t.element_size() // _ALIGN) * _ALIGN
            on_gpu = on_gpu or t.device.type == "cuda"
    buf = slot.buffer
    if buf is None or buf.numel() < total:
        pin = on_gpu and torch.cuda.is_available()
        buf = slot.buffer = None if total == 0 else torch.empty(total, dtype=torch.uint8, pin_memory=pin)
    out: list[dict[str, torch.Tensor]] = [{} for _ in parts]
    firsts: dict[tuple[int, str], torch.Tensor] = {}
    with torch.no_grad():
        for k, name, t, off in plan:
            if off is None:
                src = seen[_storage_key(t)]  # type: ignore[index]
                out[k][name] = firsts[src]
                continue
            n = t.numel() * t.element_size()
            if n == 0 or buf is None:
                copy = torch.empty(t.shape, dtype=t.dtype)
            else:
                copy = buf[off : off + n].view(t.dtype).view(t.shape)
                copy.copy_(t.detach(), non_blocking=copy.is_pinned())
            out[k][name] = firsts[(k, name)] = copy
    if on_gpu and torch.cuda.is_available():
        torch.cuda.synchronize()
    return out


def submit(model: Any, tags: Any, result: Any, optimizer: Any, args: dict[str, Any], mode: str) -> PendingEntry:
    """Prepare and snapshot here, hash/write/publish in a thread; returns at once after the copy."""
    from tvault_git.api.log import commit_entry, prepare, unwrap_model
    from tvault_git.gitutil.repo import shared_umask

    s = slot(unwrap_model(model))
    with s.lock:  # one snapshot per model in flight: wait for the previous one first
        if s.pending is not None:
            s.pending._wait()
        p, state_dict, opt_tensors = prepare(model, tags, result, optimizer, **args)
        if distributed.is_sharded(state_dict):
            raise InvalidInput(
                "the weights are sharded (FSDP / DTensor): call log_all on every rank, without collective=False"
            )
        parts: Sequence[Mapping[str, Any]] = [state_dict] + ([opt_tensors] if opt_tensors is not None else [])
        if mode == "copy":
            parts = snapshot(parts, s)
        else:
            for part in parts:
                for name, t in part.items():
                    if isinstance(t, torch.Tensor):
                        tensors.check_loggable(t, name)
        r = pygit2.Repository(p.repo.path)  # the thread's own: libgit2 objects stay in one thread
        q = dataclasses.replace(p, repo=r)

        def work() -> Entry:
            with shared_umask(r), reclaim.writing(r):  # this thread writes on its own now
                weights = tensors.store_tensors(r, parts[0])
                opt = tensors.store_tensors(r, parts[1], "optimizer state") if len(parts) > 1 else None
                return commit_entry(q, weights, opt)

        return start(s, work)


def start(s: _Slot, work: Callable[[], Entry]) -> PendingEntry:
    """Run ``work`` in a writer thread as the slot's pending log (the caller holds ``s.lock``)."""
    future: concurrent.futures.Future = concurrent.futures.Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():  # pragma: no cover - never cancelled
            return
        try:
            future.set_result(work())
        except BaseException as e:
            future.set_exception(e)

    handle = PendingEntry(future)
    s.pending = handle
    _track(handle)
    handle._thread = _Writer(target=run, name="tvault-log", daemon=True)
    handle._thread.start()
    return handle


def _track(handle: PendingEntry) -> None:
    global _atexit_registered
    with _pending_lock:
        _pending.add(handle)
        if not _atexit_registered:
            atexit.register(wait_all)
            _atexit_registered = True
    handle._future.add_done_callback(lambda _f: _untrack(handle))


def _untrack(handle: PendingEntry) -> None:
    if handle._future.exception() is None:
        with _pending_lock:
            _pending.discard(handle)


def wait_all() -> None:
    """Wait for every pending background entry; report failures nobody collected (run at exit)."""
    with _pending_lock:
        handles = list(_pending)
    start = time.monotonic()
    late = [h for h in handles if not h._wait(max(0.0, EXIT_NOTICE_S - (time.monotonic() - start)))]
    if late:
        print(
            f"tvault: waiting for {len(late)} background log_all call(s) to finish writing...",
            file=sys.stderr,
            flush=True,
        )
        for h in late:
            h._wait()
        print(f"tvault: done after {time.monotonic() - start:.1f} s", file=sys.stderr, flush=True)
    for h in handles:
        h._join()
        err = h._future.exception()
        if err is not None and not h._collected:
            print(f"tvault: a background log_all failed and nothing was recorded: {err}", file=sys.stderr, flush=True)
    with _pending_lock:
        _pending.difference_update(handles)
    for t in threading.enumerate():
        if isinstance(t, _Writer) and t is not threading.current_thread():
            t.join()
