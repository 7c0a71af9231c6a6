"""One definition per concept: numbers, instants, ref tips, repo arguments (issue 11, change 3)."""

from __future__ import annotations

import ast
from pathlib import Path

import pygit2
import pytest

import tvault_git
from tvault_git.gitutil.repo import open_repo_like, ref_tip
from tvault_git.spec.values import as_number, iso_to_instant


@pytest.mark.parametrize(
    "value, want",
    [(1, 1.0), (0.5, 0.5), (True, None), ("1", None), (None, None), (float("nan"), None), (float("inf"), None)],
)
def test_as_number(value, want):
    assert as_number(value) == want


def test_iso_to_instant_orders_by_the_instant_not_the_text():
    tokyo, london = "2026-01-01T10:00:00+09:00", "2026-01-01T05:00:00+00:00"
    assert tokyo > london and iso_to_instant(tokyo) < iso_to_instant(london)
    assert iso_to_instant("2026-01-01T05:00:00Z") == iso_to_instant(london) == iso_to_instant("2026-01-01T05:00:00")
    assert iso_to_instant("yesterday") is None and iso_to_instant(None) is None


def _defs(name_pred) -> list[str]:
    root = Path(tvault_git.__file__).parent
    out = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and name_pred(node.name):
                out.append(f"{path.relative_to(root)}:{node.name}")
    return out


def test_each_helper_is_defined_once():
    """The copies the review counted (_num x4, _ts x2, ref tips x4, repo coercion x7) are gone."""
    assert _defs(lambda n: n in ("_num", "_plot_num", "as_number")) == ["spec/values.py:as_number"]
    assert _defs(lambda n: n in ("_ts", "iso_to_instant")) == ["spec/values.py:iso_to_instant"]
    assert _defs(lambda n: n in ("_tip", "_tip_id", "ref_tip")) == ["gitutil/repo.py:ref_tip"]
    root = Path(tvault_git.__file__).parent
    coerce = "isinstance(repo, pygit2.Repository) else open_repo(repo)"
    assert [p.name for p in root.rglob("*.py") if coerce in p.read_text()] == ["repo.py"]


def test_ref_tip_and_repo_like(repo):
    r = open_repo_like(str(repo))
    assert open_repo_like(r) is r and open_repo_like(None).workdir == r.workdir
    assert ref_tip(r, "refs/heads/main").id == r.head.target and ref_tip(r, "refs/notes/none") is None
    assert isinstance(ref_tip(r, "HEAD"), pygit2.Commit)
