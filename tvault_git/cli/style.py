"""Terminal styling for CLI output (click); pure text helpers live in ``tvault_git.textfmt``."""

from __future__ import annotations

import click


def heading(text: str) -> str:
    """A section heading: bold where the terminal takes colour."""
    return click.style(text, bold=True)
