"""The model code as it is in the work tree now, found statically (no import, no torch).

``git tvault diff A`` compares entry A with the current code: for each object A
captured we look it up by qualified name in the same file, then anywhere in
the work tree (a class moved to another file), and we follow the names the
current code references to local definitions (a new helper called from
``forward``). Importing the user's code could run training scripts, so we
only parse it.
"""

from __future__ import annotations

import ast
import os
from typing import Any

from tvault_git.capture.pysource import locate as _locate
from tvault_git.capture.pysource import node_text as _node_text
from tvault_git.capture.scope import global_references

_SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    "env",
    "node_modules",
    "__pycache__",
    "site-packages",
    "build",
    "dist",
    ".tox",
    ".mypy_cache",
}
_MAX_FILES = 5000


class _Files:
    def __init__(self, root: str) -> None:
        self.root = root
        self._parsed: dict[str, tuple[list[str], ast.Module] | None] = {}
        self._all: list[str] | None = None

    def parse(self, rel: str) -> tuple[list[str], ast.Module] | None:
        if rel not in self._parsed:
            try:
                with open(os.path.join(self.root, rel), encoding="utf-8") as f:
                    src = f.read()
                self._parsed[rel] = (src.splitlines(keepends=True), ast.parse(src))
            except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
                self._parsed[rel] = None
        return self._parsed[rel]

    def all_py(self) -> list[str]:
        if self._all is None:
            out: list[str] = []
            for d, dirs, files in os.walk(self.root):
                dirs[:] = sorted(x for x in dirs if x not in _SKIP_DIRS and not x.startswith("."))
                for f in sorted(files):
                    if f.endswith(".py"):
                        out.append(os.path.relpath(os.path.join(d, f), self.root).replace(os.sep, "/"))
                if len(out) > _MAX_FILES:
                    break
            self._all = out
        return self._all


def _module_name(rel: str) -> str:
    mod = rel[:-3] if rel.endswith(".py") else rel
    if mod.endswith("/__init__"):
        mod = mod[: -len("/__init__")]
    return mod.replace("/", ".")


def _module_file(files: _Files, module: str, importer: str | None = None, level: int = 0) -> str | None:
    base = module.replace(".", "/") if module else ""
    if level and importer:
        d = os.path.dirname(importer)
        for _ in range(level - 1):
            d = os.path.dirname(d)
        base = f"{d}/{base}".strip("/") if base else d
    for cand in (f"{base}.py", f"{base}/__init__.py"):
        if base and os.path.isfile(os.path.join(files.root, cand)):
            return cand
    return None


def _obj(kind: str, module: str, qualname: str, rel: str, node: ast.AST, lines: list[str], role: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "role": role,
        "module": module,
        "qualname": qualname,
        "file": rel,
        "line": node.lineno,
        "text": _node_text(lines, node),
    }


def _kind_of(node: ast.AST) -> str:
    return (
        "class"
        if isinstance(node, ast.ClassDef)
        else "function"
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        else "constant"
    )


def _resolve(files: _Files, rel: str, module: str, chain: list[str]) -> tuple[str, str, str, ast.AST] | None:
    """A reference ``a.b`` read in file ``rel`` -> (file, module, name, node) of a local definition."""
    parsed = files.parse(rel)
    if parsed is None:
        return None
    _, tree = parsed
    head = chain[0]
    for kind in ("class", "function", "constant"):
        node = _locate(tree.body, [head], kind)
        if node is not None:
            return rel, module, head, node
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for a in node.names:
                if (a.asname or a.name) == head:
                    target = _module_file(files, node.module or "", rel, node.level)
                    if target is None:
                        sub = _module_file(files, f"{node.module}.{a.name}" if node.module else a.name, rel, node.level)
                        if sub is not None and len(chain) > 1:
                            return _resolve(files, sub, _module_name(sub), chain[1:])
                        return None
                    return _resolve(files, target, _module_name(target), [a.name])
        elif isinstance(node, ast.Import) and len(chain) > 1:
            for a in node.names:
                if (a.asname or a.name.split(".")[0]) == head:
                    target = _module_file(files, a.name if a.asname else chain[0], None)
                    if target is not None:
                        return _resolve(files, target, _module_name(target), chain[1:])
    return None


def current_objects(root: str, objects: list[dict[str, Any]], texts: dict[str, str]) -> list[dict[str, Any]]:
    """The work-tree counterparts of an entry's captured objects, plus new local dependencies.

    ``texts`` maps each object's stored ``path`` to its captured text (unused
    here but kept for symmetry with entries). Objects not found are omitted.
    """
    files = _Files(root)
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    queue: list[tuple[str, str]] = []  # (file, module) of objects whose references we follow

    def add(o: dict[str, Any]) -> None:
        key = (o["file"], o["qualname"])
        if key in seen:
            return
        seen.add(key)
        out.append(o)
        queue.append((o["file"], o["module"]))

    for o in objects:
        kind, qual, rel = o.get("kind", "function"), o.get("qualname", ""), o.get("file", "")
        parts = qual.split(".")
        if "<locals>" in parts:
            continue
        parsed = files.parse(rel) if rel else None
        node = _locate(parsed[1].body, parts, kind) if parsed else None
        if node is not None:
            add(_obj(kind, o.get("module", _module_name(rel)), qual, rel, node, parsed[0], o.get("role", "dependency")))
            continue
        for cand in files.all_py():  # moved to another file?
            if cand == rel:
                continue
            p = files.parse(cand)
            n = _locate(p[1].body, parts, kind) if p else None
            if n is not None:
                add(_obj(kind, _module_name(cand), qual, cand, n, p[0], o.get("role", "dependency")))
                break
    i = 0
    while i < len(out):
        o = out[i]
        i += 1
        for chain in global_references(o["text"]):
            if o["kind"] == "constant" and chain[0] == o["qualname"]:
                continue
            hit = _resolve(files, o["file"], o["module"], chain)
            if hit is None:
                continue
            rel, module, name, node = hit
            if (rel, name) in seen:
                continue
            parsed = files.parse(rel)
            add(_obj(_kind_of(node), module, name, rel, node, parsed[0], "dependency"))
    return out
