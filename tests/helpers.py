"""What the tests share: real git repositories in temp dirs, a real model, the real CLI.

Imported as ``tests.helpers`` (``tests`` is a package, so the name cannot collide with the
``helpers.py`` that test repositories hold and their model imports).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

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


def import_fresh(name: str):
    """Import a module from the test repo anew (tests rewrite model files)."""
    import importlib

    sys.modules.pop(name, None)
    importlib.invalidate_caches()
    return importlib.import_module(name)


def unique_module_name() -> str:
    return "m_" + uuid.uuid4().hex[:8]


def modules_after(repo: Path, argv: list[str]) -> set[str]:
    """The modules a ``git tvault ARGV`` process imported; asserts that the command succeeded
    (a command that fails early imports little, which must not pass for "stays light")."""
    code = (
        "import sys, json\n"
        "from tvault_git import cli\n"
        "code = 0\n"
        "try:\n"
        f"    cli.main({argv!r})\n"
        "except SystemExit as e:\n"
        "    code = e.code\n"
        "sys.stderr.write('EXIT=' + repr(code) + ' MODULES=' + json.dumps(sorted(sys.modules)))\n"
    )
    env = dict(os.environ, NO_COLOR="1")
    p = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, env=env)
    head, _, line = p.stderr.rpartition(" MODULES=")
    assert head.endswith("EXIT=0"), f"git tvault {' '.join(argv)} failed: {p.stderr[:2000]}"
    return set(json.loads(line))


# --- servers on 127.0.0.1 ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


def git_tool(name: str) -> bool:
    """Whether git's ``git-<name>`` helper program (daemon, http-backend) is installed."""
    exec_path = subprocess.run(["git", "--exec-path"], capture_output=True, text=True).stdout.strip()
    return os.access(os.path.join(exec_path, f"git-{name}"), os.X_OK)


class GitDaemon:
    """A running ``git daemon`` (see ``git_daemon``); ``stop()`` takes it down (the remote goes away)."""

    def __init__(self, proc: subprocess.Popen, url: str) -> None:
        self.proc, self.url = proc, url

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@contextlib.contextmanager
def git_daemon(base: Path) -> Iterator[GitDaemon]:
    """``git daemon`` serving ``base`` on 127.0.0.1 with push enabled; yields it (``.url``: ``git://...``)."""
    port = free_port()
    p = subprocess.Popen(
        [
            "git",
            "daemon",
            "--export-all",
            "--enable=receive-pack",
            "--reuseaddr",
            f"--base-path={base}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    d = GitDaemon(p, f"git://127.0.0.1:{port}")
    try:
        wait_port(port)
        yield d
    finally:
        d.stop()


# -- the web UI (tests/test_web.py, tests/test_workflow_ui.py; fixtures in conftest.py) -----------

PAYLOAD_TAG = "<script>window.__pwned=1</script>"
PAYLOAD_NAME = "<img/src=x/onerror=window.__pwned=2>"
PAYLOAD_KEY = "<img src=x onerror=window.__pwned=3>"
PAYLOAD_MSG = "</pre><script>window.__pwned=4</script>"
ARTIFACTS = ROOT / "test-artifacts"


def craft_malicious(repo_path: Path, base_id: str) -> str:
    """Copy an entry with a hostile manifest, as a teammate's (or attacker's) remote could deliver it."""
    import pygit2

    from tvault_git.registry import notes as notes
    from tvault_git.spec.format import MANIFEST, REF_PREFIX

    r = pygit2.Repository(str(repo_path))
    base = r[base_id]
    m = json.loads(r[base.tree[MANIFEST].id].data)
    m.update(
        {
            "name": "evil",  # a markup name is refused by manifest validation (issue 14); other fields carry payloads
            "message": PAYLOAD_MSG,
            "tags": {"note": PAYLOAD_TAG, PAYLOAD_KEY: 1},
            "metrics": {PAYLOAD_KEY: 0.5},
            "branch": "<b>evil</b>",
            "author": {"name": "<i>mallory</i>", "email": "m@x"},
        }
    )
    m["created"] = "2030-01-01T00:00:00+00:00"
    tb = r.TreeBuilder(base.tree)
    tb.insert(MANIFEST, r.create_blob(json.dumps(m, sort_keys=True).encode()), pygit2.enums.FileMode.BLOB)
    sig = pygit2.Signature("mallory", "m@x")
    cid = r.create_commit(None, sig, sig, "tvault: evil", tb.write(), [])
    r.references.create(REF_PREFIX + str(cid), cid)
    notes.add(r, m["commit"], str(cid), "evil", "0.5", created=m["created"])
    return str(cid)


def _get(client, url: str, status: int = 200) -> str:
    r = client.get(url)
    assert r.status_code == status, (url, r.status_code, r.get_data(as_text=True)[:2000])
    return r.get_data(as_text=True)


def chromium() -> str | None:
    """The chromium the browser tests drive (TVAULT_CHROMIUM or the first on PATH); None when there is none."""
    for name in (os.environ.get("TVAULT_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _shot(pg, name: str) -> None:
    pg.screenshot(path=str(ARTIFACTS / f"web-{name}.png"), full_page=True)


def _clean(pg) -> None:
    assert pg.errors == [], pg.errors
    assert pg.evaluate("window.__pwned") is None


def _plot_size(pg) -> tuple[int, int]:
    pg.wait_for_selector("#plot canvas")
    box = pg.locator("#plot canvas").first.bounding_box()
    return int(box["width"]), int(box["height"])


# -- conformance vectors (tests/spec/vectors: git fast-import streams by a second writer) ---------

VECTORS = ROOT / "tests" / "spec" / "vectors"
IDS = json.loads((VECTORS / "ids.json").read_text())
G, BAD = IDS["good"], IDS["bad"]  # entry ids by role, as the vector writer computed them


def import_vector(tmp_path: Path, name: str) -> Path:
    """The vector ``NAME.fi`` imported with the real git into a fresh repository (checked by fsck)."""
    repo = tmp_path / name
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    with open(VECTORS / f"{name}.fi", "rb") as f:
        p = subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, stdin=f, capture_output=True)
    assert p.returncode == 0, p.stderr
    git(repo, "reset", "-q", "--hard", "main")
    git(repo, "fsck", "--no-dangling")  # a vector is a valid git repository
    return repo
