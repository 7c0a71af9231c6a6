"""Shared fixtures (the helpers they use live in tests/helpers.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import GIT_ENV, ROOT, git_daemon, git_tool, init_repo


def _registry_refs(path: Path) -> str:
    p = subprocess.run(
        ["git", "-C", str(path), "for-each-ref", "refs/tvault", "refs/notes/tvault"], capture_output=True, text=True
    )
    return p.stdout if p.returncode == 0 else ""


@pytest.fixture(scope="session", autouse=True)
def project_repo_untouched():
    """No test may log into the project's own checkout (a test that loses its temp-dir cwd would)."""
    before = _registry_refs(ROOT)
    yield
    assert _registry_refs(ROOT) == before, "a test wrote tvault entries into the project's own git repository"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real git repo with model.py/helpers.py committed; cwd and sys.path point at it."""
    p = init_repo(tmp_path / "proj")
    monkeypatch.chdir(p)
    monkeypatch.syspath_prepend(str(p))
    for k, v in GIT_ENV.items():
        monkeypatch.setenv(k, v)
    yield p
    for mod in ("model", "helpers"):
        sys.modules.pop(mod, None)


@pytest.fixture
def daemon(tmp_path: Path):
    """``git daemon`` serving tmp_path/srv on 127.0.0.1 with push enabled; yields (base dir, url prefix)."""
    if not git_tool("daemon"):
        pytest.skip("git daemon is not installed (Debian/Ubuntu: it ships with git; elsewhere: git-daemon)")
    base = tmp_path / "srv"
    base.mkdir()
    with git_daemon(base) as d:
        yield base, d.url
