"""Shared fixtures: real git repositories in temp dirs, real models, the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

MODEL_SRC = """
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import scale

WIDTH = 16  # hidden width


def act(x):
    return F.relu(x) * scale(1.0)


class Net(nn.Module):
    def __init__(self, width=WIDTH):
        super().__init__()
        self.fc1 = nn.Linear(4, width)
        self.fc2 = nn.Linear(width, 2)

    def forward(self, x):
        return self.fc2(act(self.fc1(x)))
"""

HELPERS_SRC = """
def scale(v):
    # a helper the model calls
    return v
"""

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path | str, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real git CLI in ``repo``."""
    e = dict(os.environ)
    e.update(GIT_ENV)
    if env:
        e.update(env)
    p = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env=e)
    if check and p.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def tvault(
    repo: Path | str, *args: str, check: bool = True, env: dict | None = None, input: str | None = None
) -> subprocess.CompletedProcess:
    """Run the installed ``git tvault`` CLI the way users do (through git)."""
    e = dict(os.environ)
    e.update(GIT_ENV)
    e["PATH"] = os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", "")
    e.setdefault("NO_COLOR", "1")
    if env:
        e.update(env)
    p = subprocess.run(["git", "tvault", *args], cwd=repo, capture_output=True, text=True, env=e, input=input)
    if check and p.returncode != 0:
        raise AssertionError(f"git tvault {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))


def init_repo(path: Path, with_model: bool = True) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test Author")
    git(path, "config", "user.email", "author@example.com")
    if with_model:
        write(path / "model.py", MODEL_SRC)
        write(path / "helpers.py", HELPERS_SRC)
        git(path, "add", ".")
        git(path, "commit", "-q", "-m", "model code")
    return path


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


def import_fresh(name: str):
    """Import a module from the test repo anew (tests rewrite model files)."""
    import importlib

    sys.modules.pop(name, None)
    importlib.invalidate_caches()
    return importlib.import_module(name)


def unique_module_name() -> str:
    return "m_" + uuid.uuid4().hex[:8]
