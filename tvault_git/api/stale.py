"""``git tvault stale [NAME]``: registered models the work tree's code would now build differently.

For each model (its latest version, or every version) the captured classes, functions and
constants are compared with the work tree's definitions of the same qualified names: the
comparison ``git tvault diff REF`` makes (``diff.compute.code_against_worktree``, found statically,
nothing imported). A definition counts as changed only when its code changed: two texts that
parse to the same AST without docstrings (a comment, a blank line, a reformat, a reworded
docstring) are the same object. Torch-free.
"""

from __future__ import annotations

import ast
import os
import textwrap
from dataclasses import dataclass, field
from typing import Any

import pygit2

from tvault_git.diff.compute import code_against_worktree
from tvault_git.errors import RefNotFound, TvaultError
from tvault_git.gitutil.repo import open_repo_like
from tvault_git.registry import names
from tvault_git.spec.format import MAX_TEXT_BLOB
from tvault_git.textfmt import fmt_config


def _code(text: str) -> str | None:
    """The definition's AST without docstrings or positions; None when it does not parse alone."""
    try:
        tree = ast.parse(textwrap.dedent(text))
    except (SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
    return ast.dump(tree)


_NO_VALUE = object()


def _constant(text: str) -> Any:
    """The literal value of ``NAME = <literal>`` (or annotated), else _NO_VALUE."""
    try:
        tree = ast.parse(textwrap.dedent(text))
    except (SyntaxError, ValueError):
        return _NO_VALUE
    if len(tree.body) != 1 or not isinstance(tree.body[0], (ast.Assign, ast.AnnAssign)):
        return _NO_VALUE
    value = tree.body[0].value
    try:
        return ast.literal_eval(value) if value is not None else _NO_VALUE
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NO_VALUE


def _key(o: dict[str, Any]) -> str:
    return f"{o.get('module')}.{o.get('qualname')}"


def _uncheckable(o: dict[str, Any]) -> bool:
    """Objects no file in the work tree can hold: nested in a function, or from a notebook or stdin."""
    return "<locals>" in str(o.get("qualname", "")) or str(o.get("file", "")).startswith("<")


@dataclass
class Finding:
    """One changed definition: ``phrase`` is what ``stale`` prints."""

    status: str  # changed, removed, added, moved, renamed, unparsable
    kind: str
    name: str
    phrase: str


@dataclass
class ModelState:
    name: str
    version: int
    entry: str
    commit: str
    state: str  # "stale", "current", "no-code" (nothing captured: imported weights), "unavailable"
    findings: list[Finding] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # captured objects no work-tree file can hold
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "entry": self.entry,
            "commit": self.commit,
            "state": self.state,
            "findings": [f.__dict__ for f in self.findings],
            "unchecked": self.unchecked,
            "note": self.note,
        }


def _parses(root: str | None, rel: Any) -> bool | None:
    """Whether work-tree file ``rel`` parses (None: no such regular file, or not readable as text)."""
    if not root or not isinstance(rel, str) or rel.startswith("<") or os.path.isabs(rel) or ".." in rel.split("/"):
        return None
    path = os.path.join(root, rel)
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > MAX_TEXT_BLOB:
            return None
        with open(path, encoding="utf-8") as f:
            ast.parse(f.read())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    except SyntaxError:
        return False
    return True


def _findings(
    a_objs: list[dict[str, Any]], b_objs: list[dict[str, Any]], items: list[dict[str, Any]], root: str | None = None
) -> list[Finding]:
    a_by = {_key(o): o for o in a_objs}
    b_by = {_key(o): o for o in b_objs}
    out: list[Finding] = []
    for it in items:
        st, kind, name = it["status"], str(it.get("kind")), str(it["name"])
        short = name.rsplit(".", 1)[-1]
        where = it.get("file_b") or it.get("file_a")
        if st == "unchanged":
            continue
        if st in ("modified", "moved", "renamed"):
            src = a_by.get(it["from"].split(" (")[0]) if st in ("moved", "renamed") else a_by.get(name)
            dst = b_by.get(name)
            code_a = None if src is None else _code(src["text"])
            same_code = code_a is not None and dst is not None and code_a == _code(dst["text"])
            if st == "modified":
                if same_code:
                    continue  # comments, formatting, docstrings: the same object
                if kind == "constant" and src is not None and dst is not None:
                    va, vb = _constant(src["text"]), _constant(dst["text"])
                    if va is not _NO_VALUE and vb is not _NO_VALUE:
                        out.append(
                            Finding(
                                "changed", kind, name, f"constant {short} {fmt_config(va, 40)} -> {fmt_config(vb, 40)}"
                            )
                        )
                        continue
                out.append(Finding("changed", kind, name, f"{kind} {short} changed ({where})"))
            else:
                how = "" if same_code else ", and changed"
                out.append(Finding(st, kind, name, f"{kind} {st}: {it['from']} -> {it['to']}{how}"))
        elif st == "removed":
            src = a_by.get(name)
            if src is not None and _uncheckable(src):
                continue
            if _parses(root, it.get("file_a")) is False:  # not gone: its file does not parse now
                out.append(
                    Finding("unparsable", kind, name, f"{kind} {short}: {it.get('file_a')} has a syntax error now")
                )
                continue
            out.append(Finding("removed", kind, name, f"{kind} {short} removed (was in {it.get('file_a')})"))
        elif st == "added":
            out.append(Finding("added", kind, name, f"{kind} {short} added ({where}): new code the model now uses"))
    return out


def check_version(repo: pygit2.Repository, v: names.Version, name: str) -> ModelState:
    """One version of ``name`` against the work tree."""
    e = v.entry
    base = ModelState(name, v.number, e.id, e.commit, "current")
    try:
        m = e.manifest
    except RefNotFound:
        base.state, base.note = "unavailable", f"objects not here (git tvault fetch REMOTE {name}@{v.number})"
        return base
    except TvaultError as err:
        base.state, base.note = "unavailable", f"damaged: {err} (see git tvault fsck)"
        return base
    a_objs, b_objs, items = code_against_worktree(repo, e.id)
    imp = m.get("imported") if isinstance(m.get("imported"), dict) else {}
    if not a_objs:
        base.state = "no-code"
        base.note = (
            f"no code captured (weights imported from {imp.get('file')})"
            if imp.get("from") == "checkpoint"
            else "no code captured"
        )
        return base
    base.unchecked = sorted(_key(o) for o in a_objs if _uncheckable(o))
    base.findings = _findings(a_objs, b_objs, items, repo.workdir)
    if base.findings:
        base.state = "stale"
    return base


def stale(repo: Any = None, name: str | None = None, all_versions: bool = False) -> list[ModelState]:
    """Every model's latest version (or every version) against the work tree's code, by name."""
    r = open_repo_like(repo)
    model_names = [name] if name is not None else names.names(r)
    out: list[ModelState] = []
    for n in model_names:
        vs = [v for v in names.versions(r, n) if not v.entry.removed]
        if not vs:
            known = names.names(r)
            raise RefNotFound(
                f"no model named {n!r}"
                + (f" (models: {', '.join(known[:20])})" if known else " (no named models yet)"),
                ref=n,
            )
        for v in vs if all_versions else vs[-1:]:
            out.append(check_version(r, v, n))
    return out


__all__ = ["Finding", "ModelState", "check_version", "stale"]
