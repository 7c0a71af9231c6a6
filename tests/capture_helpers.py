"""Helpers for the capture corpus tests: run real scripts in temp work trees and read entries back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pygit2
from conftest import GIT_ENV, git, tvault

from tvault_git.registry import entries as registry


def run_script(repo: Path, script: str, *args: str) -> str:
    """Run ``python script args`` in the work tree (as a researcher does); its last stdout line is the entry id."""
    env = dict(os.environ)
    env.update(GIT_ENV)
    env["PYTHONWARNINGS"] = "default"
    p = subprocess.run([sys.executable, script, *args], cwd=repo, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout.strip().splitlines()[-1]


def run_script_full(repo: Path, script: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(GIT_ENV)
    p = subprocess.run([sys.executable, script, *args], cwd=repo, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def source(repo: Path, entry_id: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(source.json, {module.qualname: object record with its text})."""
    r = pygit2.Repository(str(repo))
    idx = registry.read_json(r, entry_id, "source.json")
    tree = registry.entry_tree(r, entry_id)
    objs = {}
    for o in idx["objects"]:
        objs[f"{o['module']}.{o['qualname']}"] = {**o, "text": registry.read_blob(r, tree, o["path"]).decode()}
    return idx, objs


def show_json(repo: Path, ref: str) -> dict[str, Any]:
    return json.loads(tvault(repo, "show", ref, "--json").stdout)


def diff_json(repo: Path, a: str, b: str) -> dict[str, Any]:
    return json.loads(tvault(repo, "diff", a, b, "--json").stdout)


def diff_text(repo: Path, a: str, b: str, *args: str) -> str:
    return tvault(repo, "diff", a, b, *args).stdout


def commit_all(repo: Path, msg: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", msg)


def capture_warnings(fn, *a, **kw):
    """Call ``fn`` and return (result, [tvault CaptureWarning messages])."""
    from tvault_git import CaptureWarning

    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = fn(*a, **kw)
    return out, [str(w.message) for w in rec if issubclass(w.category, CaptureWarning)]
