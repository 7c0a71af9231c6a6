"""Named models: version numbering, NAME@N/alias/latest/best refs, aliases (storage, merge), history CLI."""

from __future__ import annotations

import json

import pygit2
import pytest
from conftest import git, import_fresh
from conftest import tvault as run_tvault

import tvault_git as tvault
from tvault_git.errors import InvalidInput, RefNotFound
from tvault_git.registry import names as models
from tvault_git.spec.format import ALIASES_REF


def _log(name: str, result: float, **kw):
    Net = import_fresh("model").Net
    return tvault.log_all(Net(), result=result, name=name, metrics={"acc": result, "loss": 1 - result}, **kw)


def test_versions_numbered_oldest_first_and_refs_resolve(repo):
    e1 = _log("mnist", 0.5)
    e2 = _log("mnist", 0.9)
    e3 = _log("mnist", 0.7)
    _log("other", 0.1)
    r = pygit2.Repository(str(repo))
    assert models.names(r) == ["mnist", "other"]
    vs = models.versions(r, "mnist")
    assert [v.number for v in vs] == [1, 2, 3]
    assert [v.entry.id for v in vs] == [e1.id, e2.id, e3.id]
    assert all(v.created for v in vs)
    assert tvault.get("mnist@2")["id"] == e2.id
    assert tvault.get("mnist@latest")["id"] == e3.id
    assert tvault.get("mnist@best")["id"] == e2.id
    with pytest.raises(RefNotFound):
        models.versions(r, "nope")
    with pytest.raises(RefNotFound):
        tvault.get("mnist@4")
    with pytest.raises(RefNotFound):
        tvault.get("mnist@staging")


def test_aliases_set_resolve_validate(repo):
    _log("mnist", 0.5)
    e2 = _log("mnist", 0.6)
    r = pygit2.Repository(str(repo))
    v = models.set_alias(r, "mnist", "mnist@1", "production")
    assert v.number == 1 and v.aliases == ["production"]
    assert models.aliases(r, "mnist") == {"production": models.versions(r, "mnist")[0].entry.id}
    models.set_alias(r, "mnist", e2.id, "production")  # move it
    assert tvault.get("mnist@production")["id"] == e2.id
    for bad in ("latest", "1x y", "3", ""):
        with pytest.raises(InvalidInput):
            models.set_alias(r, "mnist", "mnist@1", bad)
    _log("other", 0.1)
    with pytest.raises(InvalidInput):
        models.set_alias(r, "mnist", "other@1", "staging")  # not a version of mnist
    models.remove_alias(r, "mnist", "production")
    assert models.aliases(r, "mnist") == {}
    # the alias history is a plain commit chain under refs/tvault/aliases, fsck-clean
    assert len(list(r.walk(r.references[ALIASES_REF].target))) == 3
    git(repo, "fsck", "--strict")


def test_alias_histories_merge_last_writer_wins(repo, tmp_path):
    e1 = _log("mnist", 0.5)
    e2 = _log("mnist", 0.6)
    r = pygit2.Repository(str(repo))
    models.set_alias(r, "mnist", "mnist@1", "production")
    base = r.references[ALIASES_REF].target
    models.set_alias(r, "mnist", "mnist@2", "staging")  # side A
    side_a = r.references[ALIASES_REF].target
    r.references[ALIASES_REF].set_target(base)
    models.set_alias(r, "mnist", "mnist@2", "production")  # side B, newer
    models.set_alias(r, "mnist", "mnist@1", "canary")
    assert models.merge_alias_ref(r, side_a)
    assert models.aliases(r, "mnist") == {"production": e2.id, "staging": e2.id, "canary": e1.id}
    tip = r.references[ALIASES_REF].peel(pygit2.Commit)
    assert len(tip.parents) == 2
    assert not models.merge_alias_ref(r, side_a)  # already merged: nothing to do
    git(repo, "fsck", "--strict")


def test_history_cli_and_alias_cli(repo):
    _log("mnist", 0.5, message="first")
    _log("mnist", 0.75)
    out = run_tvault(repo, "alias", "mnist@2", "production").stdout
    assert "mnist@production -> version 2" in out
    assert "mnist@production -> version 2" in run_tvault(repo, "alias", "mnist").stdout
    assert json.loads(run_tvault(repo, "alias", "--json").stdout)[0]["alias"] == "production"
    rows = json.loads(run_tvault(repo, "history", "mnist", "--json").stdout)
    assert [x["version"] for x in rows] == [1, 2]
    assert rows[1]["aliases"] == ["production"]
    assert rows[0]["delta"] == {}
    assert rows[1]["delta"]["result"] == pytest.approx(0.25)
    assert rows[1]["delta"]["loss"] == pytest.approx(-0.25)
    text = run_tvault(repo, "history", "mnist").stdout
    assert "mnist@1" in text and "mnist@2 [production]" in text and "(+0.25)" in text and "Test Author" in text
    assert run_tvault(repo, "show", "mnist@production", "--json").returncode == 0
    p = run_tvault(repo, "alias", "mnist@2", "latest", check=False)
    assert p.returncode == 2 and "reserved" in p.stderr and "Traceback" not in p.stderr
    p = run_tvault(repo, "history", "nope", check=False)
    assert p.returncode == 3 and "no model named" in p.stderr


def test_numbering_same_in_two_clones_with_concurrent_versions(repo, tmp_path):
    """Two teammates log versions of the same model on the same commit; after exchanging notes both number alike."""
    _log("mnist", 0.5)
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(repo), str(other))
    git(other, "fetch", "-q", "origin", "refs/tvault/*:refs/tvault/*", "refs/notes/tvault:refs/notes/tvault")
    _log("mnist", 0.6)  # here
    import sys

    sys.path.insert(0, str(other))
    try:
        Net = import_fresh("model").Net
        tvault.log_all(Net(), result=0.7, name="mnist", repo=str(other))  # there, concurrently
    finally:
        sys.path.remove(str(other))
    for a, b in ((repo, other), (other, repo)):
        git(
            a,
            "fetch",
            "-q",
            str(b),
            "refs/tvault/entries/*:refs/tvault/entries/*",
            "refs/notes/tvault:refs/notes/theirs",
        )
        git(a, "notes", "--ref=tvault", "merge", "-q", "-s", "cat_sort_uniq", "refs/notes/theirs")
    ids = [[v.entry.id for v in models.versions(pygit2.Repository(str(p)), "mnist")] for p in (repo, other)]
    assert ids[0] == ids[1] and len(ids[0]) == 3


def test_a_stored_best_alias_wins_over_the_computed_one(repo):
    """A loss-ranked run (a training callback with mode='min') sets NAME@best itself (format 1.1)."""
    e1 = _log("ranked", 0.2)  # result = val_loss: lower is better
    e2 = _log("ranked", 0.9)
    r = pygit2.Repository(str(repo))
    assert tvault.get("ranked@best")["id"] == e2.id  # computed: the highest result
    models.set_alias(r, "ranked", e1.id, "best")
    assert tvault.get("ranked@best")["id"] == e1.id
    assert models.versions(r, "ranked")[0].aliases == ["best"]
    assert "ranked@1 [best]" in run_tvault(repo, "history", "ranked").stdout
    models.remove_alias(r, "ranked", "best")  # back to the computed rule
    assert tvault.get("ranked@best")["id"] == e2.id
