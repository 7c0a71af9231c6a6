"""``git tvault help [COMMAND]``: the man page (as ``git help`` shows git's), else the ``-h`` text."""

from __future__ import annotations

import os
import shutil
import subprocess

import click

from tvault_git.errors import InvalidInput


@click.command("help")
@click.argument("command", required=False)
@click.pass_context
def help_cmd(ctx: click.Context, command: str | None) -> None:
    """Show the manual of git tvault, or of one COMMAND."""
    from tvault_git.cli.manpage import MAN_DIR, page_name

    root = ctx.find_root()
    group = root.command
    assert isinstance(group, click.Group)
    target: click.Command = group
    if command is not None:
        found = group.get_command(root, command)
        if found is None:
            raise InvalidInput(f"no command {command!r}; commands: {', '.join(group.list_commands(root))}")
        target = found
    page = os.path.join(MAN_DIR, page_name([command] if command else []) + ".1")
    man = shutil.which("man")
    if man and os.path.isfile(page) and subprocess.run([man, "-l", page]).returncode == 0:
        return
    sub = click.Context(
        target, info_name=f"git tvault {command}" if command else "git tvault", parent=None if command is None else root
    )
    click.echo(target.get_help(sub))
