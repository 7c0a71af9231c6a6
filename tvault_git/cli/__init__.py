"""``git tvault``: a thin click layer over the Python API.

``main`` is the one error boundary: errors from the hierarchy in ``errors.py`` become a one-line
message and their exit code here; anything else is a bug and becomes one line and exit 70 (the
traceback only with ``TVAULT_DEBUG=1``). Nothing else catches them. Commands that need no tensor
values never import torch.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from tvault_git.cli.app import cli
from tvault_git.errors import EXIT_INTERNAL, TvaultError
from tvault_git.textfmt import printable

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point: every error becomes one line on stderr and its exit code (table: ``--help``)."""
    try:
        rc = cli.main(args=argv, prog_name="git tvault", standalone_mode=False)
    except TvaultError as e:
        click.echo(f"tvault: error: {printable(e, newlines=False)}", err=True)
        sys.exit(e.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
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
    except Exception as e:  # a bug: say so in one line, keep the traceback for TVAULT_DEBUG=1
        if os.environ.get("TVAULT_DEBUG"):
            traceback.print_exc()
        msg = " ".join(str(e).split())
        click.echo(
            f"tvault: internal error: {type(e).__name__}: {msg} (set TVAULT_DEBUG=1 for the traceback)", err=True
        )
        sys.exit(EXIT_INTERNAL)
    sys.exit(rc if isinstance(rc, int) else 0)  # click returns ctx.exit(code) in non-standalone mode


def usage_error(e: click.UsageError) -> None:
    """click's usage error, with a hint that works: git turns ``git tvault --help`` into ``git help tvault``."""
    if e.ctx is not None:
        root = e.ctx.parent is None
        hint = "Try 'git tvault -h' or 'git tvault help'" if root else f"Try '{e.ctx.command_path} -h'"
        click.echo(f"{e.ctx.get_usage()}\n{hint} for help.\n", err=True)
    click.echo(f"Error: {e.format_message()}", err=True)


if __name__ == "__main__":
    main()
