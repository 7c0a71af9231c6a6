"""Listings show what users type (NAME@N), the message and dirty marks; typos and bad refs say what works."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

import tvault_git as tv
from tests.helpers import MODEL_SRC, git, import_fresh, tvault, write
from tvault_git.cli import cli


@pytest.fixture
def named(repo):
    torch.manual_seed(0)
    Net = import_fresh("model").Net
    a = tv.log_all(
        Net(), name="mlp", result=0.5, metrics={"loss": 2.0, "acc": 0.5}, tags={"lr": 0.1}, message="baseline run"
    )
    b = tv.log_all(Net(), name="mlp", result=0.7, metrics={"loss": 1.0, "acc": 0.7}, tags={"lr": 0.01})
    write(repo / "model.py", MODEL_SRC.replace("F.relu(x)", "F.gelu(x)"))
    c = tv.log_all(import_fresh("model").Net(), name="mlp", result=0.6, message="gelu, uncommitted")
    d = tv.log_all(Net(), name="other", result=0.1)
    tvault(repo, "alias", "mlp@2", "production")
    return a, b, c, d


def test_log_shows_name_at_version_message_and_dirty(repo, named):
    lines = tvault(repo, "log").stdout.splitlines()
    assert len(lines) == 4
    assert "other@1" in lines[0]
    assert "mlp@3" in lines[1] and "(dirty)" in lines[1] and "gelu, uncommitted" in lines[1]
    assert "mlp@2" in lines[2] and "(dirty)" not in lines[2]
    assert "mlp@1" in lines[3] and "baseline run" in lines[3]
    rows = json.loads(tvault(repo, "log", "--json").stdout)
    assert [r["version"] for r in rows] == [1, 3, 2, 1]
    assert tvault(repo, "log", "-n", "0").stdout == ""


def test_find_table_and_diff_header_show_name_at_version(repo, named):
    out = tvault(repo, "find", "--name", "mlp").stdout
    assert (
        "mlp@1" in out
        and "mlp@2" in out
        and "mlp@3" in out
        and "message" in out.splitlines()[0]
        and "baseline run" in out
    )
    d = tvault(repo, "diff", "mlp@1", "mlp@3", "--no-weights").stdout
    assert "mlp@1" in d.splitlines()[0] and "'baseline run'" in d.splitlines()[0]
    assert "mlp@3" in d.splitlines()[1] and "dirty" in d.splitlines()[1]


def test_models_command_and_history_without_name(repo, named):
    out = tvault(repo, "models").stdout.splitlines()
    assert out[0].startswith("mlp") and "3 versions" in out[0] and "latest mlp@3" in out[0]
    assert "best mlp@2 (result=0.7, highest)" in out[0] and "production -> @2" in out[0]
    assert out[1].startswith("other") and "1 version " in out[1]
    rows = json.loads(tvault(repo, "models", "--json").stdout)
    assert rows[0]["name"] == "mlp" and rows[0]["versions"] == 3 and rows[0]["best"]["version"] == 2
    assert rows[0]["aliases"] == {"production": 2}
    assert tvault(repo, "history").stdout == tvault(repo, "models").stdout


def test_models_best_is_the_stored_best_alias_when_there_is_one(repo, named):
    """A callback ranking by validation loss stores mlp@best; models must agree with NAME@best, not recompute."""
    tvault(repo, "alias", "mlp@1", "best")
    line = tvault(repo, "models").stdout.splitlines()[0]
    assert "best mlp@1 (alias best, result=0.5)" in line and "highest" not in line
    assert tvault(repo, "show", "mlp@best", "--json").stdout == tvault(repo, "show", "mlp@1", "--json").stdout
    rows = json.loads(tvault(repo, "models", "--json").stdout)
    assert rows[0]["best"] == {"version": 1, "id": named[0].id, "result": 0.5, "from": "alias"}
    assert rows[1]["best"]["from"] == "result" and rows[1]["best"]["version"] == 1
    tvault(repo, "alias", "-d", "mlp", "best")
    assert "best mlp@2 (result=0.7, highest)" in tvault(repo, "models").stdout.splitlines()[0]


def test_unknown_keys_are_errors_listing_known_keys(repo, named):
    for args, key in (
        (["--where", "los<0.8"], "los"),
        (["--sort", "nonexistent"], "nonexistent"),
        (["--best", "acc2"], "acc2"),
    ):
        p = tvault(repo, "find", *args, check=False)
        assert p.returncode == 2, (args, p.stdout)
        assert f"unknown key {key!r}" in p.stderr and "known: acc, author" in p.stderr and "loss, lr" in p.stderr
    assert "did you mean 'loss'?" in tvault(repo, "find", "--where", "los<0.8", check=False).stderr
    assert len(json.loads(tvault(repo, "find", "--where", "loss<1.5", "--json").stdout)) == 1  # known keys still work
    assert len(json.loads(tvault(repo, "find", "--sort", "date", "--json").stdout)) == 4


def test_typos_are_errors_even_in_an_empty_registry(repo):
    """No entries yet: 'los<0.8' used to say "no entries match", exit 0; built-in fields are known anyway."""
    for expr, hint in (("los<0.8", ""), ("reslt>0.1", "did you mean 'result'?"), ("metric.loss<1", "'metrics.loss'")):
        p = tvault(repo, "find", "--where", expr, check=False)
        assert p.returncode == 2 and f"unknown key {expr.split('<')[0].split('>')[0]!r}" in p.stderr, (expr, p)
        assert "the registry has no entries yet" in p.stderr and hint in p.stderr
        assert "known: author, branch, commit, created" in p.stderr and "name, result" in p.stderr
    p = tvault(repo, "find", "--sort", "nonexistent", check=False)
    assert p.returncode == 2 and "unknown key 'nonexistent'" in p.stderr
    # spelled with its kind, a key nobody logged yet is a valid question with no answer (git-like)
    for expr in ("metrics.loss<0.8", "tags.opt==adam", "config.n_layer>=2", "result>0", "name==mlp"):
        p = tvault(repo, "find", "--where", expr, check=False)
        assert p.returncode == 0 and p.stdout.strip() == "no entries match", expr
        assert tvault(repo, "find", "--where", expr, "--exit-code", check=False).returncode == 1


def test_where_on_built_in_fields_and_namespaced_keys(repo, named):
    rows = lambda *a: [r["id"] for r in json.loads(tvault(repo, "find", *a, "--json").stdout)]  # noqa: E731
    a, b, c, d = (e.id for e in named)
    assert set(rows("--where", "name==mlp")) == {a, b, c}
    assert set(rows("--where", "name!=mlp")) == {d}
    assert set(rows("--where", "name==m*")) == {a, b, c}
    assert rows("--where", "dirty==true") == [d, c]  # 'other' was logged on the dirty tree too
    assert rows("--where", "created>2000-01-01", "--where", "message==baseline run") == [a]
    assert rows("--where", "created<2000-01-01") == []
    assert set(rows("--where", "commit==HEAD")) == {a, b, c, d}
    assert set(rows("--where", "version>=2")) == {b, c} and set(rows("--where", "version==1")) == {a, d}
    assert rows("--where", "metrics.loss<1.5") == [b] and rows("--where", "tags.lr==0.1") == [a]
    assert rows("--where", "metrics.lr<1") == []  # lr is a tag, not a metric: the namespace says which
    assert rows("--sort", "metrics.loss", "--asc", "--name", "mlp")[:2] == [b, a]
    p = tvault(repo, "find", "--where", "tag.lr==0.1", check=False)
    assert p.returncode == 2 and "did you mean 'tags.lr'?" in p.stderr and "no entry has it" in p.stderr


def test_ref_errors_suggest_what_works(repo, named):
    p = tvault(repo, "show", "HEAD", check=False)
    assert p.returncode == 3 and "use HEAD:0 .. HEAD:3" in p.stderr
    p = tvault(repo, "show", "mlp", check=False)
    assert p.returncode == 3 and "mlp@latest" in p.stderr
    p = tvault(repo, "show", "ab1", check=False)
    assert p.returncode == 3 and "at least 4 characters" in p.stderr
    git(repo, "commit", "-qam", "gelu")
    assert "no entries" in tvault(repo, "show", "HEAD", check=False).stderr


def test_listings_through_clicks_runner(repo, named):
    """The same output in-process (what the web and scripts reuse)."""
    r = CliRunner().invoke(cli, ["log"], catch_exceptions=False)
    assert r.exit_code == 0 and "mlp@3" in r.output
    r = CliRunner().invoke(cli, ["models"], catch_exceptions=False)
    assert r.exit_code == 0 and "latest mlp@3" in r.output
