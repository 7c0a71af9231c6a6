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
from tvault_git.textfmt import printable

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and an exit code."""
    try:
        cli.main(args=argv, prog_name="git tvault", standalone_mode=False)
    except TvaultError as e:
        click.echo(f"tvault: error: {printable(e, newlines=False)}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("tvault: aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(0)


if __name__ == "__main__":
    main()
