"""The developer gates: docs/cli.md matches --help, pre-commit runs what CI runs, mypy is configured."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers import ROOT
from tvault_git.cli import docs
from tvault_git.cli.app import cli


def test_cli_reference_is_generated_from_the_commands():
    """Regenerate with ``python -m tvault_git.cli.docs > docs/cli.md`` when a command or option changes."""
    assert (ROOT / "docs/cli.md").read_text() == docs.render(), "docs/cli.md is stale: regenerate it"


def _sections(text: str) -> dict[str, str]:
    found = re.findall(r"^## `git tvault (\S+)`\n\n```text\n(.*?)```$", text, flags=re.S | re.M)
    return {name: body for name, body in found}


@pytest.mark.parametrize("name", ["", *list(cli.list_commands(None))])  # type: ignore[arg-type]
def test_cli_reference_matches_help_output(name):
    """Each section is what ``git tvault NAME --help`` prints (an 80-column terminal)."""
    text = (ROOT / "docs/cli.md").read_text()
    if name:
        want = _sections(text)[name]
        args = [name, "--help"]
    else:
        want = text.split("```text\n", 1)[1].split("```", 1)[0]
        args = ["--help"]
    got = CliRunner().invoke(cli, args, prog_name="git tvault", terminal_width=80)
    assert got.exit_code == 0, got.output
    assert got.output == want


def test_pre_commit_runs_the_same_gates_as_ci():
    cfg = (ROOT / ".pre-commit-config.yaml").read_text()
    for hook in ("id: ruff-check", "id: ruff-format", "id: mypy", "id: layers"):
        assert hook in cfg, hook
    test_sh = (ROOT / "scripts/test.sh").read_text()
    assert "ruff check" in test_sh and "ruff format --check" in test_sh and "mypy" in test_sh


def test_mypy_is_strict_on_the_lower_layers():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        tomllib = pytest.importorskip("tomli")
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert conf["strict"] is True
    assert {Path(f).name for f in conf["files"]} >= {"spec", "gitutil", "storage", "registry"}
