"""log_all(..., background=True): snapshot isolation, errors on result() and at exit, exit waits."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pygit2
import pytest
import torch
from conftest import git

import tvault_git as tvault
from tvault_git.api import background
from tvault_git.errors import InvalidInput, StorageError
from tvault_git.registry import entries as registry


@pytest.fixture
def gate(monkeypatch):
    """Hold background writers before they read the snapshot, until ``gate.set()``: the real writer, timed."""
    ev = threading.Event()
    real = background.tensors.store_tensors

    def held(*a, **k):
        assert ev.wait(60), "the test never opened the gate"
        return real(*a, **k)

    monkeypatch.setattr(background.tensors, "store_tensors", held)
    yield ev
    ev.set()


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Linear(64, 64, bias=False))
    m[1].weight = m[0].weight  # tied: stays one tensor in the snapshot
    return m


def test_mutating_weights_after_the_call_does_not_change_the_entry(repo, gate):
    m = _model()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    h = tvault.log_all(m, tags={"step": 1}, result=0.5, background=True)
    assert isinstance(h, tvault.PendingEntry) and not h.done()
    assert repr(h) == "<PendingEntry pending>"
    with torch.no_grad():
        for p in m.parameters():
            p.add_(1.0)  # the optimizer steps on while the entry is written
    gate.set()
    e = h.result(timeout=60)
    assert h.done() and e.index == 0
    sd = tvault.load(e.id)
    assert all(torch.equal(sd[k], before[k]) for k in before)
    # Same bytes as a foreground log of the unmutated weights: the same blobs, nothing new written.
    m2 = _model()
    fg = tvault.log_all(m2, tags={"step": 1}, result=0.5)
    r = pygit2.Repository(str(repo))
    assert registry.weight_records(r, fg.id) == registry.weight_records(r, e.id)
    assert fg.new_bytes == 0
    git(repo, "fsck", "--full", "--strict")


def test_a_view_snapshot_sees_later_changes_so_the_copy_is_what_isolates(repo, gate):
    m = _model()
    h = tvault.log_all(m, background=True, snapshot="view")
    with torch.no_grad():
        m[0].bias.fill_(3.0)
    gate.set()
    assert torch.equal(tvault.load(h.result(timeout=60).id)["0.bias"], torch.full((64,), 3.0))


def test_the_snapshot_buffer_is_reused_and_one_log_per_model_is_in_flight(repo, gate):
    m = _model()
    h1 = tvault.log_all(m, result=1.0, background=True)
    buf = background.slot(m).buffer
    assert buf is not None
    with torch.no_grad():
        m[0].bias.fill_(2.0)
    second: dict = {}
    t = threading.Thread(target=lambda: second.setdefault("h", tvault.log_all(m, result=2.0, background=True)))
    t.start()
    t.join(0.3)
    assert "h" not in second, "a second snapshot of the same model must wait for the first"
    gate.set()
    t.join(60)
    e1, e2 = h1.result(timeout=60), second["h"].result(timeout=60)
    assert background.slot(m).buffer is buf  # the same host memory, no new allocation
    assert e1.id != e2.id
    assert torch.equal(tvault.load(e2.id)["0.bias"], torch.full((64,), 2.0))
    assert not torch.equal(tvault.load(e1.id)["0.bias"], torch.full((64,), 2.0))


def test_bad_arguments_fail_in_the_call_not_later(repo):
    with pytest.raises(InvalidInput, match="tags.x is nan"):
        tvault.log_all(_model(), tags={"x": float("nan")}, background=True)
    with pytest.raises(InvalidInput, match="snapshot must be"):
        tvault.log_all(_model(), background=True, snapshot="maybe")
    assert tvault.entries(str(repo)) == []


def test_a_crash_in_the_background_surfaces_on_result_and_records_nothing(repo, monkeypatch):
    import errno

    from tvault_git.storage import packwrite

    def full(fd, bufs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as mp:
        mp.setattr(packwrite.os, "writev", full)
        h = tvault.log_all(_model(), result=1.0, background=True)
        with pytest.raises(StorageError, match="No space left on device.*nothing was recorded"):
            h.result(timeout=60)
    assert isinstance(h.exception(), StorageError)
    assert tvault.entries(str(repo)) == []
    assert tvault.log_all(_model(), result=1.0, background=True).result(timeout=60).index == 0


def _run(repo: Path, body: str) -> subprocess.CompletedProcess:
    script = repo / "job.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, str(script)], cwd=repo, capture_output=True, text=True, timeout=120)


def test_exit_waits_for_pending_entries_and_says_so(repo):
    p = _run(
        repo,
        """
        import threading, torch
        import tvault_git as tvault
        from tvault_git.api import background

        gate = threading.Event()
        real = background.tensors.store_tensors
        background.tensors.store_tensors = lambda *a, **k: (gate.wait(), real(*a, **k))[1]
        torch.manual_seed(0)
        tvault.log_all(torch.nn.Linear(8, 8), result=0.75, background=True)
        opener = threading.Timer(2.5, gate.set)  # the writer is still held well after the script ends
        opener.daemon = True
        opener.start()
        print("script done")
        """,
    )
    assert p.returncode == 0, p.stderr
    assert "script done" in p.stdout
    assert "tvault: waiting for 1 background log_all call(s) to finish writing" in p.stderr
    (e,) = tvault.entries(str(repo))
    assert e.result == "0.75"
    git(repo, "fsck", "--full", "--strict")


def test_an_uncollected_failure_is_reported_at_exit(repo):
    p = _run(
        repo,
        """
        import errno, os, torch
        import tvault_git as tvault
        from tvault_git.storage import packwrite

        def full(fd, bufs):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        packwrite.os.writev = full
        tvault.log_all(torch.nn.Linear(8, 8), result=0.75, background=True)
        """,
    )
    assert "tvault: a background log_all failed and nothing was recorded" in p.stderr
    assert "No space left on device" in p.stderr
    assert tvault.entries(str(repo)) == []


def test_two_models_in_flight_at_once_both_publish(repo, gate):
    a, b = _model(), torch.nn.Linear(16, 4)
    ha = tvault.log_all(a, result=1.0, background=True)
    hb = tvault.log_all(b, result=2.0, background=True)  # another model: no wait for the first
    assert not ha.done() and not hb.done()
    gate.set()
    ea, eb = ha.result(timeout=60), hb.result(timeout=60)
    assert sorted([ea.index, eb.index]) == [0, 1]
    assert {e.id for e in tvault.entries(str(repo))} == {ea.id, eb.id}
    git(repo, "fsck", "--full", "--strict")
