"""Defects found in the architecture review (issue 11, §4-A), each pinned by a test that failed first."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pygit2
import pytest

import tvault_git as tvault
from tests.helpers import import_fresh
from tests.helpers import tvault as run_tvault
from tvault_git.registry import entries as registry
from tvault_git.registry import notes
from tvault_git.spec import format as fmt

# --- remote errors do not depend on git's UI language ---------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("language", ["de", "fr", ""])
def test_remote_errors_are_classified_in_any_ui_language(repo, tmp_path, language):
    """git speaks the user's language (``LANGUAGE=de``: "Schwerwiegend: ... scheint kein Git-Repository
    zu sein"); the classification reads git's C-locale output, so the message and code hold."""
    env = {"LANGUAGE": language}
    p = run_tvault(repo, "fetch", str(tmp_path / "nowhere.git"), check=False, env=env)
    assert p.returncode == 6 and "is not a git repository" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    p = run_tvault(repo, "fetch", f"git://127.0.0.1:{_free_port()}/x.git", check=False, env=env)
    assert p.returncode == 6 and "cannot reach" in p.stderr, p.stderr


# --- metric direction by whole tokens ---------------------------------------------------------------

HIGHER = ["confidence", "answer_acc", "fidelity", "uptime", "power", "cancer_auc", "acc", "f1", "bleu", "val.accuracy"]
LOWER = ["loss", "val_loss", "err", "wer", "perplexity", "train-time", "valLoss", "top1_error", "mse", "latency_ms"]


@pytest.mark.parametrize("key", HIGHER)
def test_higher_is_better_metrics(key):
    from tvault_git.registry.query import metric_direction

    assert metric_direction(key) == "max"


@pytest.mark.parametrize("key", LOWER)
def test_lower_is_better_metrics(key):
    from tvault_git.registry.query import metric_direction

    assert metric_direction(key) == "min"


def test_find_best_history_colours_and_web_use_one_direction(repo):
    """``find --best confidence`` is the most confident entry; history and the web call a rise better."""
    model = import_fresh("model")
    for c in (0.2, 0.9, 0.5):
        tvault.log_all(model.Net(), name="clf", metrics={"confidence": c, "val_loss": 1 - c})
    best = json.loads(run_tvault(repo, "find", "--best", "confidence", "--json").stdout)
    assert [r["metrics"]["confidence"] for r in best] == [0.9]
    best = json.loads(run_tvault(repo, "find", "--best", "val_loss", "--json").stdout)
    assert [r["metrics"]["val_loss"] for r in best] == [pytest.approx(0.1)]
    from tvault_git.cli.commands import models as cli_models

    green, red = "\x1b[32m", "\x1b[31m"
    assert green in cli_models._moved("confidence", 0.7) and red in cli_models._moved("confidence", -0.4)
    assert red in cli_models._moved("val_loss", 0.4) and green in cli_models._moved("val_loss", -0.7)
    pytest.importorskip("flask")
    from tvault_git.web import pages

    assert pages._move("confidence", 0.2, 0.9)["better"] is True
    assert pages._move("val_loss", 0.8, 0.1)["better"] is True
    assert pages._move("answer_acc", 0.9, 0.2)["better"] is False


def test_the_private_direction_regex_is_gone():
    root = Path(tvault.__file__).parent
    users = [p.name for p in root.rglob("*.py") if "_LOWER_IS_BETTER" in p.read_text()]
    assert users == []


# --- tvault.entries() lists what git tvault log lists, in the same order -----------------------------


def _entry_created_at(repo: Path, e, created: str) -> str:
    """A copy of entry ``e`` whose manifest says it was created at ``created`` (another clone's clock)."""
    r = pygit2.Repository(str(repo))
    manifest = registry.read_manifest(r, e.id)
    manifest["created"] = created
    tb = r.TreeBuilder(r[e.id].tree)
    tb.insert(fmt.MANIFEST, r.create_blob(fmt.dumps(manifest)), pygit2.enums.FileMode.BLOB)
    sig = pygit2.Signature("x", "x@y")
    new = str(r.create_commit(None, sig, sig, "entry", tb.write(), []))
    r.references.create(fmt.REF_PREFIX + new, pygit2.Oid(hex=new))
    notes.add(r, e.commit, new, None, None, created=created)
    return new


def test_entries_are_ordered_by_instant_like_log(repo):
    """10:00+09:00 is 01:00 UTC, earlier than 05:00+00:00, though its ISO string sorts later."""
    model = import_fresh("model")
    e = tvault.log_all(model.Net())
    tokyo = _entry_created_at(repo, e, "2026-01-01T10:00:00.000000+09:00")
    london = _entry_created_at(repo, e, "2026-01-01T05:00:00.000000+00:00")
    log = [row["id"] for row in json.loads(run_tvault(repo, "log", "--json").stdout)]
    assert log.index(london) < log.index(tokyo)
    assert [x.id for x in tvault.entries()] == log


def test_entries_skip_indexed_but_unfetched_entries_like_log(repo):
    """A note line pulled from a remote whose objects are not fetched: log hides it, entries() too."""
    model = import_fresh("model")
    e = tvault.log_all(model.Net())
    r = pygit2.Repository(str(repo))
    notes.add(r, e.commit, "ab" * 20, None, None)
    assert [x.id for x in tvault.entries()] == [e.id]
    assert [row["id"] for row in json.loads(run_tvault(repo, "log", "--json").stdout)] == [e.id]


# --- a missing optional dependency says what to install ---------------------------------------------

_NO_FLASK = "import sys; sys.modules['flask'] = None\n"


def test_web_without_flask_says_to_install_the_ui_extra(repo):
    p = subprocess.run(
        [sys.executable, "-c", _NO_FLASK + "import tvault_git.web"], cwd=repo, capture_output=True, text=True
    )
    assert p.returncode == 1 and "pip install 'tvault-git[ui]'" in p.stderr.strip().splitlines()[-1], p.stderr
    p = subprocess.run(
        [sys.executable, "-c", _NO_FLASK + "from tvault_git.cli import main; main(['ui'])"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 10, p.stderr  # InstallationError, not bad input
    assert p.stderr.startswith("tvault: error:") and "tvault-git[ui]" in p.stderr and len(p.stderr.splitlines()) == 1


# --- the hook scripts come with the package ----------------------------------------------------------


def test_hook_templates_are_found_without_a_checkout_or_share_dir(tmp_path):
    """Installed anywhere (``--user``, a zipapp-like copy, another prefix): only the package is needed."""
    pkg = Path(tvault.__file__).parent
    shutil.copytree(pkg, tmp_path / "site" / "tvault_git", ignore=shutil.ignore_patterns("__pycache__"))
    code = (
        "import sys; sys.prefix = sys.exec_prefix = '/nonexistent'\n"
        "from tvault_git import hooks; d = hooks.template_dir(); print(d)\n"
        "print(all('tvault-git post-' in (d / h).read_text() for h in hooks.HOOKS))"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    where, ok = p.stdout.split()
    assert where.startswith(str(tmp_path / "site")) and ok == "True"
