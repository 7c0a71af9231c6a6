"""``git tvault diff A [B]``: colors, pager and section choice like ``git diff``. Torch-free."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click

from tvault_git.cli.app import repo_from_ctx


def use_color(when: str, stream=None) -> bool:
    """git's rule: always/never, else only on a terminal and when NO_COLOR is not set."""
    if when == "always":
        return True
    if when == "never":
        return False
    stream = stream or sys.stdout
    return (
        bool(getattr(stream, "isatty", lambda: False)())
        and not os.environ.get("NO_COLOR")
        and os.environ.get("TERM") != "dumb"
    )


def pager_command(repo) -> str | None:
    """GIT_PAGER, core.pager, PAGER, then 'less', as git chooses; None for no pager."""
    cmd = os.environ.get("GIT_PAGER")
    if cmd is None:
        try:
            cmd = repo.config["core.pager"]
        except (KeyError, Exception):
            cmd = None
    if cmd is None:
        cmd = os.environ.get("PAGER", "less")
    cmd = cmd.strip()
    return None if cmd in ("", "cat") else cmd


def page(text: str, cmd: str) -> None:
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")
    env.setdefault("LV", "-c")
    try:
        p = subprocess.Popen(cmd, shell=True, stdin=subprocess.PIPE, env=env)
    except OSError:
        click.echo(text, nl=False)
        return
    try:
        assert p.stdin is not None
        p.stdin.write(text.encode("utf-8", "replace"))
        p.stdin.close()
    except BrokenPipeError:
        pass
    p.wait()


@click.command("diff")
@click.argument("a")
@click.argument("b", required=False)
@click.option(
    "--section",
    "sections",
    multiple=True,
    metavar="NAME",
    help="Only these sections: architecture, classes, functions, weights, optimizer, metadata, context (repeatable).",
)
@click.option("--stat", "stat", is_flag=True, help="Only the one-line summary of each changed section.")
@click.option("--json", "as_json", is_flag=True, help="The full structured diff as JSON.")
@click.option("--no-weights", "no_weights", is_flag=True, help="Skip the weights section (never reads tensors).")
@click.option(
    "--color",
    "color",
    type=click.Choice(["always", "never", "auto"]),
    default="auto",
    show_default=True,
    help="Color the output (auto: on a terminal, unless NO_COLOR is set).",
)
@click.option("--no-pager", "no_pager", is_flag=True, help="Do not pipe the output into a pager.")
@click.pass_context
def diff_cmd(
    ctx: click.Context,
    a: str,
    b: str | None,
    sections: tuple[str, ...],
    stat: bool,
    as_json: bool,
    no_weights: bool,
    color: str,
    no_pager: bool,
) -> None:
    """What changed between entries A and B (id or COMMIT:INDEX); without B, A against the work tree's code."""
    from tvault_git.diff import compute
    from tvault_git.diff.text import render as render_diff

    repo = repo_from_ctx(ctx)
    d = compute.diff_entries(repo, a, b, sections=list(sections) or None, weights=not no_weights)
    if as_json:
        click.echo(json.dumps(d, indent=1))
        return
    text = render_diff(d, stat=stat)
    colored = use_color(color)
    if not colored:
        text = click.unstyle(text)
    tty = sys.stdout.isatty()
    cmd = None if no_pager or not tty else pager_command(repo)
    if cmd:
        page(text, cmd)
    else:
        click.echo(text, nl=False, color=colored)


__all__ = ["diff_cmd", "pager_command", "use_color"]
