"""The typed records the front ends format, and the rule that keeps the CLI and web presentation only."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pygit2
import pytest

import tvault_git as tvault
from tests.helpers import import_fresh
from tests.helpers import tvault as run_tvault
from tvault_git.errors import CorruptEntry
from tvault_git.gitutil.repo import commit_info, has_object, tree_of
from tvault_git.registry import history, query, summary
from tvault_git.registry.contents import load_contents

PKG = Path(tvault.__file__).resolve().parent

# What only registry/, storage/ and gitutil/ may do: SQL, reading git objects, parsing stored JSON.
_LOWER_ONLY = re.compile(r"\.execute\(|\bsqlite3\b|\brepo\[|\brepo\.get\(|\bjson\.loads\(|\brun_git\(|\.odb\b")


def lower_layer_access(root: Path = PKG) -> list[str]:
    """'file:line: text' of each line in cli/ or web/ that reads the index or git objects itself."""
    bad = []
    for sub in ("cli", "web"):
        for path in sorted((root / sub).rglob("*.py")):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if _LOWER_ONLY.search(line.split("#", 1)[0]):
                    bad.append(f"{path.relative_to(root)}:{n}: {line.strip()}")
    return bad


def test_cli_and_web_are_presentation_only():
    assert lower_layer_access() == []


def test_the_presentation_check_catches_sql_in_web(tmp_path):
    (tmp_path / "web").mkdir()
    (tmp_path / "cli").mkdir()
    (tmp_path / "web" / "pages.py").write_text('rows = con.execute("SELECT 1")\nx = 1  # repo[oid] in a comment\n')
    (tmp_path / "cli" / "show.py").write_text("data = repo[oid].data\n")
    assert lower_layer_access(tmp_path) == [
        "cli/show.py:1: data = repo[oid].data",
        'web/pages.py:1: rows = con.execute("SELECT 1")',
    ]


@pytest.fixture
def logged(repo):
    model = import_fresh("model")
    e = tvault.log_all(model.Net(), name="m", result=0.5, metrics={"acc": 0.5}, tags={"lr": 0.1}, message="first")
    e2 = tvault.log_all(model.Net(), name="m", result=0.7, metrics={"acc": 0.7})
    return pygit2.Repository(str(repo)), e, e2


def test_one_entry_row_from_the_cache_and_from_the_manifest(logged):
    r, e, _ = logged
    from_cache = {x["id"]: x for x in query.find(r)}[e.id]
    from_manifest = summary.of_entry(query.lookup(r, e.id))
    assert from_cache.pop("version") == 1
    assert from_cache == {**from_manifest, "dirty": bool(from_manifest["dirty"])}
    shown = json.loads(run_tvault(r.workdir, "show", e.id, "--json").stdout)
    assert {k: shown[k] for k in from_manifest} == from_manifest


def test_load_contents_reads_every_small_part(logged):
    r, e, _ = logged
    c = load_contents(r, query.lookup(r, e.id))
    assert c.manifest["name"] == "m" and c.entry.id == e.id
    assert set(c.weights) == {n for n, _ in import_fresh("model").Net().state_dict().items()}
    assert "Linear" in c.architecture
    assert any(o["qualname"] == "Net" for o in c.objects)
    net = next(o for o in c.objects if o["qualname"] == "Net")
    assert "class Net" in c.text(net["path"])
    assert c.text("no/such/file.py") == "" and c.patch() == ""


def test_version_rows_and_history_agree(logged):
    r, e, e2 = logged
    rows = history.version_rows(r, "m")
    h = history.model_history(r, "m")
    assert [x.entry.id for x in rows] == [x.entry.id for x in h.rows] == [e.id, e2.id]
    assert [(x.result, x.metrics, x.author, x.message) for x in rows] == [
        (x.result, x.metrics, x.author, x.message) for x in h.rows
    ]
    assert h.computed == {"latest": e2.id, "best": e2.id}


def test_git_objects_typed(logged):
    r, e, _ = logged
    blob = r.create_blob(b"x")
    with pytest.raises(CorruptEntry, match="not a tree"):
        tree_of(r, blob)
    assert has_object(r, str(blob)) and not has_object(r, "zz") and not has_object(r, "0" * 40)
    info = commit_info(r, e.commit)
    assert info is not None and info.id == e.commit and info.subject == r[e.commit].message.splitlines()[0]
    assert commit_info(r, "0" * 40) is None and commit_info(r, str(blob)) is None and commit_info(r, None) is None
