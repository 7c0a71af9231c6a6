"""Man pages generated from the click commands, so ``git tvault --help`` (which git turns into
``git help tvault``, i.e. ``man git-tvault``) finds a page that says what ``-h`` says.

The pages ship as package data (``tvault_git/cli/man/``, read by ``git tvault help``) and as data
files installed into ``<prefix>/share/man/man1``, where ``man`` looks for any ``<prefix>/bin`` on
``PATH``. Regenerate after changing a command: ``python -m tvault_git.cli.manpage``; a test checks
the shipped pages match.
"""

from __future__ import annotations

import os
import sys

import click

from tvault_git import __version__

MAN_DIR = os.path.join(os.path.dirname(__file__), "man")


def _esc(text: str) -> str:
    """Plain text as roff: backslashes and hyphens escaped, no line starting a request."""
    out = []
    for ln in text.replace("\\", "\\e").replace("-", "\\-").splitlines():
        out.append("\\&" + ln if ln.startswith((".", "'")) else ln)
    return "\n".join(out)


def _paragraphs(text: str) -> str:
    paras = [p.strip() for p in (text or "").split("\n\n") if p.strip()]
    return "\n.PP\n".join(_esc(" ".join(p.split())) for p in paras)


def page_name(path: list[str]) -> str:
    """['log'] -> 'git-tvault-log'; [] -> 'git-tvault'."""
    return "-".join(["git", "tvault", *path])


def render(cmd: click.Command, path: list[str], ctx: click.Context) -> str:
    """One page in man(7) format for ``git tvault <path...>``."""
    name = page_name(path)
    prog = " ".join(["git", "tvault", *path])
    short = (cmd.get_short_help_str(limit=200) or "").rstrip(".")
    lines = [
        f'.TH "{name.upper()}" "1" "" "tvault-git {__version__}" "tvault-git Manual"',
        ".SH NAME",
        f"{_esc(name)} \\- {_esc(short)}",
        ".SH SYNOPSIS",
        f".B {_esc(prog)}",
        _esc(" ".join(cmd.collect_usage_pieces(ctx))),
        ".SH DESCRIPTION",
        _paragraphs(cmd.help or short),
    ]
    opts = [p.get_help_record(ctx) for p in cmd.get_params(ctx)]
    opts = [o for o in opts if o]
    if opts:
        lines.append(".SH OPTIONS")
        for term, help_text in opts:
            lines += [".TP", f".B {_esc(term)}", _esc(" ".join(help_text.split()))]
    if isinstance(cmd, click.Group):
        lines.append(".SH COMMANDS")
        for sub in cmd.list_commands(ctx):
            c = cmd.get_command(ctx, sub)
            if c is None or c.hidden:
                continue
            lines += [
                ".TP",
                f".B {_esc(sub)}",
                _esc(c.get_short_help_str(limit=200)) + f" See \\fB{page_name([*path, sub])}\\fR(1).",
            ]
        lines += [
            ".SH HELP",
            "\\fBgit tvault help\\fR \\fICOMMAND\\fR or \\fBgit tvault\\fR \\fICOMMAND\\fR \\fB\\-h\\fR for one command.",
        ]
    lines += [
        ".SH SEE ALSO",
        "\\fBgit\\-tvault\\fR(1), \\fBgit\\fR(1)" if path else "\\fBgit\\fR(1), \\fBgit\\-notes\\fR(1)",
    ]
    return "\n".join(lines) + "\n"


def pages() -> dict[str, str]:
    """File name -> page text for the root command and every subcommand."""
    from tvault_git.cli.app import cli

    root = click.Context(cli, info_name="git tvault", **cli.context_settings)
    out = {f"{page_name([])}.1": render(cli, [], root)}
    for sub in cli.list_commands(root):
        c = cli.get_command(root, sub)
        if c is not None and not c.hidden:
            out[f"{page_name([sub])}.1"] = render(
                c, [sub], click.Context(c, info_name=f"git tvault {sub}", parent=root, **cli.context_settings)
            )
    return out


def write_all(folder: str = MAN_DIR) -> list[str]:
    """Write every page (and drop stale ones); returns the file names."""
    os.makedirs(folder, exist_ok=True)
    want = pages()
    for old in os.listdir(folder):
        if old.endswith(".1") and old not in want:
            os.unlink(os.path.join(folder, old))
    for fname, text in want.items():
        with open(os.path.join(folder, fname), "w", encoding="utf-8") as f:
            f.write(text)
    return sorted(want)


if __name__ == "__main__":
    print("\n".join(write_all(sys.argv[1] if len(sys.argv) > 1 else MAN_DIR)))
