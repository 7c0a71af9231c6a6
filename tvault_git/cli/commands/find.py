"""``git tvault find``: search entries; a table, JSON or CSV. Torch-free."""

from __future__ import annotations

import csv
import io
import json
import sys
from typing import Any

import click

from tvault_git.cli.app import repo_from_ctx
from tvault_git.registry import query
from tvault_git.textfmt import fmt_value, printable_tree, short_date


def columns(rows: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Every metric key and every tag key present in any row (none dropped)."""
    metrics = sorted({k for r in rows for k in r["metrics"]})
    tags = sorted({k for r in rows for k in r["tags"]})
    return metrics, tags


def _cell(v: Any) -> str:
    return "-" if v is None else fmt_value(v)


def _table(rows: list[dict[str, Any]]) -> str:
    metrics, tags = columns(rows)
    mset = set(metrics)
    head = ["id", "ref"]
    has_name = any(r["name"] for r in rows)
    has_result = any(r["result"] is not None for r in rows)
    head += ["name"] if has_name else []
    head += ["result"] if has_result else []
    head += metrics + [
        f"tag:{k}" if k in mset or k in ("id", "ref", "name", "result", "author", "date") else k for k in tags
    ]
    head += ["author", "date"]
    has_message = any(r.get("message") for r in rows)
    head += ["message"] if has_message else []
    body = []
    for r in rows:
        line = [r["id"][:10], r["ref"]]
        line += [(f"{r['name']}@{r['version']}" if r.get("version") else r["name"]) or "-"] if has_name else []
        line += [_cell(r["result"])] if has_result else []
        line += [_cell(r["metrics"].get(k)) for k in metrics]
        line += [_cell(r["tags"].get(k)) if k in r["tags"] else "-" for k in tags]
        line += [r["author"] or "-", short_date(r["created"])]
        if has_message:
            msg = " ".join((r.get("message") or "-").split())
            line.append(msg if len(msg) <= 48 else msg[:47] + "…")
        body.append(line)
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    numeric = [i for i in range(len(head)) if all(_isnum(b[i]) for b in body)]
    out = [click.style("  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip(), bold=True)]
    for b in body:
        cells = []
        for i, (c, w) in enumerate(zip(b, widths)):
            s = c.rjust(w) if i in numeric else c.ljust(w)
            cells.append(click.style(s, fg="yellow") if i == 0 else s)
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def _isnum(s: str) -> bool:
    if s == "-":
        return True
    try:
        float(s)
        return True
    except ValueError:
        return False


class _SafeWriter:
    def __init__(self, w: Any) -> None:
        self.w = w

    def writerow(self, row: list[Any]) -> None:
        self.w.writerow([csv_cell(c) for c in row])


def csv_cell(v: Any) -> Any:
    """A cell a spreadsheet shows as text: one starting with = + - @ TAB or CR would run as a formula
    (``=HYPERLINK(...)``, ``=cmd|...``), so it gets a leading quote (OWASP's advice). Numbers stay numbers."""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r") and not _isnum(v):
        return "'" + v
    return v


def _csv(rows: list[dict[str, Any]]) -> str:
    metrics, tags = columns(rows)
    mset = set(metrics)
    buf = io.StringIO()
    w = _SafeWriter(csv.writer(buf, lineterminator="\n"))
    base = ["id", "ref", "commit", "index", "name", "result"]
    tail = ["author", "email", "created", "branch", "dirty", "message"]
    w.writerow(base + metrics + [f"tag:{k}" if k in mset or k in base + tail else k for k in tags] + tail)
    j = lambda v: "" if v is None else (v if isinstance(v, str) else json.dumps(v))  # noqa: E731
    for r in rows:
        w.writerow(
            [r["id"], r["ref"], r["commit"], r["index"], r["name"] or "", j(r["result"])]
            + [j(r["metrics"].get(k)) for k in metrics]
            + [j(r["tags"][k]) if k in r["tags"] else "" for k in tags]
            + [
                r["author"] or "",
                r["email"] or "",
                r["created"] or "",
                r["branch"] or "",
                "true" if r["dirty"] else "false",
                r["message"] or "",
            ]
        )
    return buf.getvalue()


@click.command("find")
@click.option(
    "--hash", "commit", metavar="REV", help="Entries trained on this commit (any commit-ish: sha, branch, tag, HEAD~2)."
)
@click.option("--min", "min_result", type=float, metavar="X", help="Result at least X (inclusive).")
@click.option("--max", "max_result", type=float, metavar="Y", help="Result at most Y (inclusive).")
@click.option(
    "--tag",
    "tags",
    nargs=2,
    multiple=True,
    metavar="KEY VALUE",
    help="Tag KEY equals VALUE (typed: 0.01 matches the float, 0.5x the string).",
)
@click.option(
    "--where",
    "where",
    multiple=True,
    metavar="EXPR",
    help="Condition on a metric, tag, config value or field, e.g. 'acc>=0.9', 'opt==adam', 'name==mnist', "
    "'created>2024-05-01', 'version>=3'. A bare key no entry has is an error (a typo); metrics.KEY, tags.KEY, config.KEY "
    "match nothing while no entry has KEY.",
)
@click.option("--name", default=None, help="Model name (glob patterns allowed).")
@click.option("--author", default=None, help="Author name or email (regular expression, case-insensitive).")
@click.option("--branch", default=None, help="Branch the entry was trained on (glob allowed).")
@click.option("--since", default=None, metavar="DATE", help="Created at or after DATE (ISO date, or '2 days ago').")
@click.option("--until", default=None, metavar="DATE", help="Created at or before DATE.")
@click.option(
    "--sort",
    "sort",
    default=None,
    metavar="KEY",
    help="Sort by a metric, tag, result, date or name (default: date, newest first).",
)
@click.option("--asc", "--ascending", "ascending", is_flag=True, help="Sort ascending instead of descending.")
@click.option("-n", "--limit", "limit", type=int, default=None, help="Show at most N entries.")
@click.option(
    "--best", default=None, metavar="METRIC[:min|max]", help="Only the top entry by METRIC (loss-like names: lowest)."
)
@click.option("--json", "as_json", is_flag=True, help="JSON output for scripts.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV output for scripts and spreadsheets.")
@click.option("--exit-code", "exit_code", is_flag=True, help="Exit with status 1 when nothing matched.")
@click.pass_context
def find_cmd(
    ctx: click.Context,
    commit,
    min_result,
    max_result,
    tags,
    where,
    name,
    author,
    branch,
    since,
    until,
    sort,
    ascending,
    limit,
    best,
    as_json,
    as_csv,
    exit_code,
) -> None:
    """Find entries by commit, result range, tags, metrics, name, author, branch or date (conditions AND)."""
    from tvault_git.errors import InvalidInput

    if as_json and as_csv:
        raise InvalidInput("choose one of --json and --csv")
    repo = repo_from_ctx(ctx)
    rows = query.find(
        repo,
        commit=commit,
        min_result=min_result,
        max_result=max_result,
        tags=tuple(tags),
        where=tuple(where),
        name=name,
        author=author,
        branch=branch,
        since=since,
        until=until,
        sort=sort,
        ascending=ascending,
        limit=limit,
        best=best,
    )
    if as_json:
        click.echo(json.dumps(rows, indent=1))
    elif as_csv:
        click.echo(_csv(rows), nl=False)
    elif not rows:
        click.echo("no entries match")
    else:
        click.echo(_table(printable_tree(rows)))
    from tvault_git.cli.commands.check import warn_damaged

    warn_damaged(repo)
    if exit_code and not rows:
        sys.exit(1)
