"""Help as git users expect it: man pages for ``git tvault --help``, ``git tvault help``, usage hints that work."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from tests.helpers import ROOT, tvault
from tvault_git.cli import manpage


def test_shipped_man_pages_match_the_commands():
    want = manpage.pages()
    have = {f for f in os.listdir(manpage.MAN_DIR) if f.endswith(".1")}
    assert have == set(want), "regenerate: python -m tvault_git.cli.manpage"
    for fname, text in want.items():
        with open(os.path.join(manpage.MAN_DIR, fname), encoding="utf-8") as f:
            assert f.read() == text, f"{fname} is stale: python -m tvault_git.cli.manpage"
    assert {"git-tvault.1", "git-tvault-log.1", "git-tvault-checkout.1", "git-tvault-help.1"} <= have


@pytest.mark.skipif(not os.path.exists("/usr/bin/man"), reason="needs man(1)")
def test_git_help_finds_the_installed_man_page(tmp_path):
    """The wheel puts the pages in <prefix>/share/man/man1, beside <prefix>/bin, where git help finds them."""
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr
    (wheel,) = tmp_path.glob("tvault_git-*.whl")
    prefix = tmp_path / "prefix"
    with zipfile.ZipFile(wheel) as z:  # what an installer does with <dist>.data/data/: copy it under the prefix
        pages = [n for n in z.namelist() if ".data/data/share/man/man1/" in n]
        assert any(n.endswith("/git-tvault.1") for n in pages) and any(n.endswith("/git-tvault-find.1") for n in pages)
        for n in pages:
            dest = prefix / n.split(".data/data/", 1)[1]
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(z.read(n))
    (prefix / "bin").mkdir()
    (prefix / "bin" / "git-tvault").symlink_to(os.path.join(os.path.dirname(sys.executable), "git-tvault"))
    env = {k: v for k, v in os.environ.items() if k != "MANPATH"}
    env.update(PATH=f"{prefix / 'bin'}{os.pathsep}{os.environ['PATH']}", MANPAGER="cat", PAGER="cat", GIT_PAGER="cat")
    for cmd in (
        ["git", "tvault", "--help"],
        ["git", "help", "-m", "tvault"],
        ["man", "git-tvault"],
        ["man", "git-tvault-find"],
    ):
        p = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env)
        assert p.returncode == 0, (cmd, p.stderr)
        assert "No manual entry" not in p.stderr and "tvault-git Manual" in p.stdout, cmd
    assert "--where EXPR" in p.stdout


def test_help_command_and_usage_hints(repo):
    out = tvault(repo, "help").stdout
    assert "GIT-TVAULT" in out or "Usage: git tvault" in out
    assert "checkout" in out and "import-tvault" in out
    out = tvault(repo, "help", "find").stdout
    assert "--where" in out
    p = tvault(repo, "help", "nope", check=False)
    assert p.returncode == 2 and "no command 'nope'; commands: log, show" in p.stderr
    p = tvault(repo, "bogus", check=False)
    assert (
        p.returncode == 2
        and "Try 'git tvault -h' or 'git tvault help' for help." in p.stderr
        and "--help" not in p.stderr
    )
    p = tvault(repo, "log", "--bogus", check=False)
    assert p.returncode == 2 and "Try 'git tvault log -h' for help." in p.stderr
    assert "Usage: git tvault" in tvault(repo, "-h").stdout


def test_not_a_repository_is_said_the_cli_way(tmp_path):
    p = tvault(tmp_path, "-C", str(tmp_path), "log", check=False)
    assert p.returncode == 2 and "repo=PATH" not in p.stderr and "-C" in p.stderr and str(tmp_path) in p.stderr
    p = tvault(tmp_path, "log", check=False)
    assert p.returncode == 2 and "repo=PATH" not in p.stderr and "git tvault -C PATH" in p.stderr
