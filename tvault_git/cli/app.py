"""The ``git tvault`` root command: options shared by every command, and the command table.

Commands live one concept per module in ``cli/commands/`` and are imported only when run (or
listed by ``--help``), so ``git tvault log`` never pays for torch, Flask or the diff engine, and no
module imports the group it is registered on (no import cycle).
"""

from __future__ import annotations

import importlib
import os

import click
import pygit2

from tvault_git import __version__
from tvault_git.errors import EXIT_CODES, NotARepository
from tvault_git.gitutil.repo import open_repo

# name -> "module:attribute" under tvault_git.cli.commands; the order is the --help order.
COMMANDS: dict[str, str] = {
    "log": "entries:log_cmd",
    "show": "entries:show_cmd",
    "find": "find:find_cmd",
    "diff": "diff:diff_cmd",
    "models": "models:models_cmd",
    "history": "models:history_cmd",
    "alias": "models:alias_cmd",
    "stale": "stale:stale_cmd",
    "export": "entries:export_cmd",
    "fsck": "check:fsck_cmd",
    "rm": "check:rm_cmd",
    "orphans": "rewrites:orphans_cmd",
    "reattach": "rewrites:reattach_cmd",
    "checkout": "checkout:checkout_cmd",
    "import": "importing:import_cmd",
    "import-tvault": "importing:import_tvault_cmd",
    "fetch": "share:fetch_cmd",
    "pull": "share:pull_cmd",
    "push": "share:push_cmd",
    "install": "hooks:install_cmd",
    "uninstall": "hooks:uninstall_cmd",
    "ui": "ui:ui_cmd",
    "gc": "storage:gc_cmd",
    "help": "help:help_cmd",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported from ``COMMANDS`` on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS) + sorted(set(self.commands) - set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        cmd = getattr(importlib.import_module(f"tvault_git.cli.commands.{module}"), attr)
        assert isinstance(cmd, click.Command)
        return cmd


def _exit_code_epilog() -> str:
    """The exit-status table (from ``errors.EXIT_CODES``); ``\\b`` keeps click from rewrapping it."""
    rows = "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES)
    return f"\b\nExit status:\n{rows}"


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=_exit_code_epilog())
@click.version_option(__version__, prog_name="tvault-git")
@click.option("-C", "repo_path", default=None, metavar="PATH", help="Run as if started in PATH (like git -C).")
@click.pass_context
def cli(ctx: click.Context, repo_path: str | None) -> None:
    """A PyTorch model registry inside your git repository."""
    ctx.obj = {"repo_path": repo_path}


def repo_from_ctx(ctx: click.Context) -> pygit2.Repository:
    """The repository the command runs in: ``-C PATH`` if given, else the one around the cwd."""
    root = ctx.find_root()
    path = root.obj.get("repo_path") if root.obj else None
    try:
        return open_repo(path)
    except NotARepository:  # the library's message names the Python keyword; say it the CLI's way
        where = os.path.abspath(path) if path else os.getcwd()
        hint = "give a repository's path to -C" if path else "cd into a repository or use git tvault -C PATH"
        raise NotARepository(f"not inside a git repository: {where} ({hint}; 'git init' makes one)") from None
