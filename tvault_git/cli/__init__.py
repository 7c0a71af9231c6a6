"""``git tvault``: a thin click layer over the Python API.

``main`` is the one error boundary: errors from the hierarchy in ``errors.py`` become a one-line
message and their exit code here; nothing else catches them. Commands that need no tensor values
never import torch.
"""

from __future__ import annotations

import sys

import click

from tvault_git.cli.app import cli
from tvault_git.errors import TvaultError

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and an exit code."""
    try:
        cli.main(args=argv, prog_name="git tvault", standalone_mode=False)
    except TvaultError as e:
        click.echo(f"tvault: error: {e}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("tvault: aborted", err=True)
        sys.exit(130)
    except click.UsageError as e:
        usage_error(e)
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(0)


def usage_error(e: click.UsageError) -> None:
    """click's usage error, with a hint that works: git turns ``git tvault --help`` into ``git help tvault``."""
    if e.ctx is not None:
        root = e.ctx.parent is None
        hint = "Try 'git tvault -h' or 'git tvault help'" if root else f"Try '{e.ctx.command_path} -h'"
        click.echo(f"{e.ctx.get_usage()}\n{hint} for help.\n", err=True)
    click.echo(f"Error: {e.format_message()}", err=True)


if __name__ == "__main__":
    main()
