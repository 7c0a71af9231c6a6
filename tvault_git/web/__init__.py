"""``git tvault ui``: a read-only web view of the registry, served live or written as a static site.

Why a server at all: researchers compare runs by looking (sortable tables,
metric plots, side-by-side diffs). Everything is read from the git repository
on each request (the entries table through the SQLite cache keyed on the notes
tip), so new entries show up without a restart and there is no database to
run. Every registry value reaches the page through Jinja2 autoescaping (or
Pygments, which escapes too); plot data travels as JSON in a
``<script type="application/json">`` block via ``tojson``, which escapes
``<``, ``>``, ``&`` and quotes. Only GET routes exist. Torch is imported only
by the pages that need tensor values (weights diff numbers, the safetensors
download).

Presentation only: app.py (the app factory and its routes), pages.py (each page's
template context), export.py (the static site), links.py (live URLs or export file
names); templates/ and static/ are package data. Every registry read is in registry/.
"""

from __future__ import annotations

try:
    import flask  # noqa: F401  (the optional ``ui`` extra)
except ModuleNotFoundError as e:  # say what to install, not "no module flask"
    raise ModuleNotFoundError(
        f"tvault_git.web needs the optional 'ui' extra ({e.name} is missing): pip install 'tvault-git[ui]'",
        name=e.name,
    ) from e

from tvault_git.web.app import create_app
from tvault_git.web.export import export_site
from tvault_git.web.links import ExportLinks, Links
from tvault_git.web.pages import Filters, side_by_side

__all__ = ["ExportLinks", "Filters", "Links", "create_app", "export_site", "side_by_side"]
