"""Entry refs through the CLI, locally and against a remote's index: one parser (spec/refs.py) for both."""

from __future__ import annotations

import pytest

from tests.helpers import G, git, import_vector, tvault


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    return import_vector(tmp_path_factory.mktemp("refs"), "good")


@pytest.fixture
def clone(origin, tmp_path):
    c = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--no-local", str(origin), str(c))  # only what main reaches
    return c


@pytest.mark.parametrize("ref", ["HEAD:\u00b2", "HEAD:\u0663", "HEAD:x"])
def test_bad_index_is_one_line_exit_3_locally(origin, ref):
    """'²' passed str.isdigit() and crashed int() with a traceback (exit 1) before."""
    p = tvault(origin, "show", ref, check=False)
    assert p.returncode == 3 and "bad entry ref" in p.stderr and "Traceback" not in p.stderr


def test_version_selector_in_unicode_digits_is_not_a_version(origin):
    p = tvault(origin, "show", "tiny@\u00b2", check=False)
    assert p.returncode == 3 and "no version or alias" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.parametrize("ref", ["HEAD:\u00b2", "HEAD:x"])
def test_bad_index_is_one_line_exit_3_on_a_remote(clone, ref):
    p = tvault(clone, "fetch", "origin", ref, check=False)
    assert p.returncode == 3 and "bad entry ref" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.parametrize(
    "ref,want",
    [("tiny@production", "e1"), ("tiny@1", "e1"), (f"{G['t1'][:7]}:1", "e2"), (G["e3"][:8].upper(), "e3")],
)
def test_every_form_resolves_against_the_remotes_index(clone, ref, want):
    tvault(clone, "fetch", "origin", ref)
    assert git(clone, "cat-file", "-t", G[want]).stdout.strip() == "commit"
    others = {G[k] for k in ("e1", "e2", "e3")} - {G[want]}
    assert all(git(clone, "cat-file", "-e", o, check=False).returncode != 0 for o in others)  # that entry only


def test_unknown_forms_name_the_remote(clone):
    p = tvault(clone, "fetch", "origin", "no such ref", check=False)
    assert p.returncode == 3 and "on origin" in p.stderr


def test_a_remote_numbers_only_versions_whose_note_says_when(clone):
    """e2's note line has no created= and its objects are not here: it cannot be numbered from the
    remote's index (FORMAT.md, Named models), so there tiny@latest is e1; once fetched, it is e2."""
    tvault(clone, "fetch", "origin", "tiny@latest")
    assert git(clone, "cat-file", "-t", G["e1"]).stdout.strip() == "commit"
    tvault(clone, "fetch", "origin", f"{G['t1']}:1")
    assert tvault(clone, "show", "tiny@latest").stdout.count(G["e2"][:10]) >= 1
