"""Issue 13 at scale: batched pushes a size-limited host accepts, push --prune, cheap pulls, log_all growth.

Real parts: bare remotes with a pre-receive hook that refuses big packs, three clones, ``git
daemon`` with byte counting through GIT_TRACE_PACKET, ``git fsck`` everywhere.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import tvault_git as tv
from tests.helpers import import_fresh, init_repo


def test_log_all_does_not_reparse_a_growing_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """log_all slowed 4x over 2,000 entries on one commit: one more entry must not parse the whole
    note (nor every note naming the model), so the lines parsed per log_all stay flat as it grows."""
    from tvault_git.registry import notes as notes_mod

    repo = init_repo(tmp_path / "proj")
    sys.path.insert(0, str(repo))
    try:
        net = import_fresh("model").Net()
        parsed: list[int] = []
        real = notes_mod.parse

        def counting(text: str):
            parsed.append(text.count("\n"))
            return real(text)

        monkeypatch.setattr(notes_mod, "parse", counting)
        per_log = []
        for i in range(40):
            parsed.clear()
            tv.log_all(net, result=i / 40, name="grow", repo=str(repo))
            per_log.append(sum(parsed))
        assert max(per_log[-10:]) <= max(per_log[:10]) + 2, per_log
    finally:
        sys.path.remove(str(repo))
        sys.modules.pop("model", None)
