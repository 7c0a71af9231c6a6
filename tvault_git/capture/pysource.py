"""Finding a definition in Python source by qualified name (shared by live and static capture)."""

from __future__ import annotations

import ast

_DEFS = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
_BLOCKS = (ast.If, ast.Try, ast.With, ast.For, ast.While)


def node_text(lines: list[str], node: ast.AST) -> str:
    """The lines of a definition, decorators included, as written."""
    return "".join(lines[node_start(node) - 1 : node.end_lineno])  # type: ignore[attr-defined]


def node_start(node: ast.AST) -> int:
    return min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])  # type: ignore[attr-defined]


def _statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """A body's statements, with those inside top-level if/try/with/for blocks (not inside defs)."""
    out: list[ast.stmt] = []
    for node in body:
        out.append(node)
        if isinstance(node, _BLOCKS):
            for name in ("body", "orelse", "finalbody"):
                out += _statements(getattr(node, name, []) or [])
            for h in getattr(node, "handlers", []) or []:
                out += _statements(h.body)
    return out


def _binds(node: ast.stmt, name: str) -> bool:
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    else:
        return False
    return name in {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def locate(body: list[ast.stmt], parts: list[str], kind: str) -> ast.AST | None:
    """The definition of ``parts`` (a qualname split on '.') in a body; the last binding wins.

    ``<locals>`` parts (a class made by a factory function) descend into that
    function's body; constants are found in top-level if/try/with blocks too.
    """
    found = None
    head, rest = parts[0], parts[1:]
    if rest and rest[0] == "<locals>":
        rest = rest[1:]
    for node in _statements(body) if kind == "constant" and not rest else body:
        if isinstance(node, _DEFS) and node.name == head:
            if rest:
                inner_body = node.body
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    inner_body = _statements(node.body)
                inner = locate(inner_body, rest, kind)
                found = inner if inner is not None else found
            elif kind == "constant":
                continue
            elif (kind == "class") == isinstance(node, ast.ClassDef):
                found = node
        elif kind == "constant" and not rest and _binds(node, head):
            found = node
    return found


def import_binding(body: list[ast.stmt], name: str) -> tuple[str, int, str] | None:
    """``from M import X as name`` at module level -> (M, level, X); the last binding wins."""
    found = None
    for node in _statements(body):
        if isinstance(node, ast.ImportFrom):
            for a in node.names:
                if (a.asname or a.name) == name and a.name != "*":
                    found = (node.module or "", node.level, a.name)
    return found
