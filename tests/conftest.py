"""Shared fixtures (the helpers they use live in tests/helpers.py): repositories, git daemon, the web UI."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pygit2
import pytest

from tests.helpers import (
    ARTIFACTS,
    GIT_ENV,
    MODEL_SRC,
    PAYLOAD_KEY,
    ROOT,
    chromium,
    craft_malicious,
    git,
    git_daemon,
    git_tool,
    import_fresh,
    init_repo,
    write,
)


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


# -- git daemon (tests/test_share.py, tests/test_hostile_registry.py) ----------------------------


@pytest.fixture
def daemon(tmp_path: Path):
    """``git daemon`` serving tmp_path/srv on 127.0.0.1 with push enabled; yields (base dir, url prefix)."""
    if not git_tool("daemon"):
        pytest.skip("git daemon is not installed (Debian/Ubuntu: it ships with git; elsewhere: git-daemon)")
    base = tmp_path / "srv"
    base.mkdir()
    with git_daemon(base) as d:
        yield base, d.url


# -- the web UI: one registry per module, a test client, a server, a headless chromium ----------


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory):
    """The shared registry: {path, ids: {...}}."""
    import torch

    import tvault_git
    from tvault_git.registry import names as models

    path = init_repo(tmp_path_factory.mktemp("web") / "proj")
    mp = pytest.MonkeyPatch()
    mp.chdir(path)
    mp.syspath_prepend(str(path))
    for k, v in GIT_ENV.items():
        mp.setenv(k, v)
    try:
        ids: dict[str, str] = {}
        torch.manual_seed(0)
        net = import_fresh("model").Net()
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        ids["v1"] = tvault_git.log_all(
            net,
            repo=str(path),
            name="mnist",
            result=0.71,
            metrics={"acc": 0.71, "loss": 0.9},
            tags={"lr": 0.1, "aug": "none"},
            optimizer=opt,
            message="baseline",
        ).id
        write(path / "model.py", MODEL_SRC.replace("F.relu(x)", "F.gelu(x)"))
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "switch to gelu")
        torch.manual_seed(1)
        net = import_fresh("model").Net()
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        tvault_git.clear_metrics()
        for step in range(0, 40, 2):  # learning curves, one metric named by a hostile remote
            tvault_git.log_metrics(step=step, loss=1.0 / (1 + step), **{PAYLOAD_KEY: 0.5})
        for step in (10, 20, 30):
            tvault_git.log_metrics(step=step, val_acc=step / 40)
        ids["v2"] = tvault_git.log_all(
            net,
            repo=str(path),
            name="mnist",
            result=0.83,
            metrics={"acc": 0.83, "loss": 0.5},
            tags={"lr": 0.05, "aug": "flip"},
            optimizer=opt,
            message="gelu",
        ).id
        with torch.no_grad():
            net.fc1.weight.add_(0.01)
        tvault_git.clear_metrics()
        for step in range(0, 60, 3):  # another run's curve, for the overlay on compare pages
            tvault_git.log_metrics(step=step, loss=0.8 / (1 + step))
        ids["v3"] = tvault_git.log_all(
            net,
            repo=str(path),
            name="mnist",
            result=0.79,
            metrics={"acc": 0.79, "loss": 0.6},
            tags={"lr": 0.05, "aug": "crop"},
        ).id
        tvault_git.clear_metrics()
        ids["anon"] = tvault_git.log_all(net, repo=str(path), result=0.5, tags={"dropout": 0.2}).id
        ids["evil"] = craft_malicious(path, ids["anon"])
        models.set_alias(pygit2.Repository(str(path)), "mnist", ids["v2"], "production")
        yield {"path": path, "ids": ids}
    finally:
        mp.undo()
        tvault_git.clear_metrics()
        for mod in ("model", "helpers"):
            sys.modules.pop(mod, None)


@pytest.fixture(scope="module")
def client(reg):
    """A Flask test client of the web UI over ``reg``."""
    pytest.importorskip("flask", reason="the ui extra (flask) is not installed: pip install -e '.[ui]'")
    from tvault_git import web

    return web.create_app(str(reg["path"])).test_client()


@pytest.fixture(scope="module")
def browser():
    exe = chromium()
    if exe is None:
        pytest.skip("no chromium on this machine (Debian: apt-get install chromium; scripts/test.sh does this as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(
            executable_path=exe, headless=True, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        )
    except Exception as e:
        pw.stop()
        pytest.skip(f"chromium at {exe} did not start under playwright: {str(e).splitlines()[0]}")
    ARTIFACTS.mkdir(exist_ok=True)
    yield b
    b.close()
    pw.stop()


@pytest.fixture(scope="module")
def server(reg):
    """The web UI served over real HTTP on 127.0.0.1 for the browser tests."""
    pytest.importorskip("flask", reason="the ui extra (flask) is not installed: pip install -e '.[ui]'")
    from werkzeug.serving import make_server

    from tvault_git import web

    srv = make_server("127.0.0.1", 0, web.create_app(str(reg["path"])), threaded=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()


@pytest.fixture
def page(browser):
    """A fresh page that records console errors and uncaught exceptions."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    pg = ctx.new_page()
    pg.errors = []  # type: ignore[attr-defined]
    pg.on("console", lambda m: pg.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(f"pageerror: {e}"))
    yield pg
    ctx.close()
