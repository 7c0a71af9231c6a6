"""The exporter: every page of the UI written as a static site with relative links (``git tvault ui --export``).

Why static: a team can publish its model history on any static host. The entries
table is paginated into files of 1,000 rows, newest first; each page sorts and
filters itself in the browser (app.js), since there is no server to ask.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import Any

from flask import Flask, render_template

from tvault_git.errors import StorageError, TvaultError
from tvault_git.gitutil.repo import open_repo
from tvault_git.registry import query
from tvault_git.web import pages
from tvault_git.web.app import STATIC, TEMPLATES, jinja_setup
from tvault_git.web.links import ExportLinks

EXPORT_PER_PAGE = 1000  # the export sorts and filters a page in the browser: make pages big


def export_site(
    repo_path: str,
    out_dir: str,
    weights: bool = False,
    compare: bool = True,
    per: int = EXPORT_PER_PAGE,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Write every page as files: entries (paginated), each entry, compare-with-previous, models; the counts."""
    repo = open_repo(repo_path)
    app = Flask("tvault_git.web_export", template_folder=TEMPLATES, static_folder=None)
    jinja_setup(app)
    L = ExportLinks(weights=weights)
    os.makedirs(out_dir, exist_ok=True)
    shutil.copytree(STATIC, os.path.join(out_dir, "static"), dirs_exist_ok=True)
    counts = {"pages": 0, "entries": 0, "compare": 0, "models": 0, "weights": 0, "skipped": 0}

    def write(file_name: str, template: str, **ctx: Any) -> None:
        with app.app_context():
            html = render_template(template, L=L, **ctx)
        try:
            with open(os.path.join(out_dir, file_name), "w", encoding="utf-8") as fh:
                fh.write(html)
        except OSError as e:
            raise StorageError(f"could not write {file_name} in {out_dir}: {e.strerror or e}") from None
        counts["pages"] += 1

    f = pages.Filters()
    first = pages.entries_page(repo, f, 1, per)
    for p in range(1, first["pages"] + 1):
        ctx = first if p == 1 else pages.entries_page(repo, f, p, per)
        write(L.entries(p), "entries.html", **ctx)
    for row in query.find(repo):
        eid = row["id"]
        if progress:
            progress(eid)
        try:  # per-entry boundary: one odd entry is left out (and counted), the site is still whole
            ctx = pages.entry_page(repo, eid)
        except (StorageError, OSError):
            raise
        except TvaultError:
            counts["skipped"] += 1
            continue
        if not compare:
            ctx["previous"] = None
        write(L.entry(eid), "entry.html", **ctx)
        counts["entries"] += 1
        if compare and ctx["previous"]:
            try:
                cmp = pages.compare_page(repo, ctx["previous"], eid)
            except (StorageError, OSError):
                raise
            except TvaultError:
                cmp = None
            if cmp is not None:
                write(L.compare(ctx["previous"], eid), "compare.html", **cmp)
                counts["compare"] += 1
        if weights:
            from tvault_git.api import read

            os.makedirs(os.path.join(out_dir, "weights"), exist_ok=True)
            try:
                read.export(eid, os.path.join(out_dir, L.download(eid) or ""), repo)
            except (StorageError, OSError):
                raise
            except TvaultError:
                continue
            counts["weights"] += 1
    mp = pages.models_page(repo)
    write(L.models(), "models.html", **mp)
    for mrow in mp["models"]:
        write(L.model(mrow["name"]), "history.html", **pages.history_page(repo, mrow["name"]))
        counts["models"] += 1
    return counts


__all__ = ["EXPORT_PER_PAGE", "export_site"]
