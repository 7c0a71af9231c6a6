"""Which names a piece of code reads from its module's globals, by scope rather than by spelling.

A parameter ``config`` or a local ``batch_size`` must not pull a training
script's global of the same name into an entry, so references are filtered
through the compiler's own scope analysis (``symtable``): only names that a
scope of the snippet resolves globally (or freely, from a scope outside the
snippet: a class factory's closure) count.
"""

from __future__ import annotations

import ast
import symtable
import textwrap


def references(tree: ast.AST) -> list[list[str]]:
    """Dotted name chains read anywhere in the code (``a``, ``a.b.c``), in first-seen order."""
    chains: list[list[str]] = []
    seen: set[tuple[str, ...]] = set()
    for node in ast.walk(tree):
        chain: list[str] | None = None
        if isinstance(node, ast.Attribute):
            parts = []
            cur: ast.AST = node
            while isinstance(cur, ast.Attribute):
                parts.append(cur.attr)
                cur = cur.value
            if isinstance(cur, ast.Name):
                chain = [cur.id] + parts[::-1]
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            chain = [node.id]
        if chain and tuple(chain) not in seen:
            seen.add(tuple(chain))
            chains.append(chain)
    return chains


def _outer_names(table: symtable.SymbolTable, enclosing: frozenset[str], out: set[str]) -> None:
    """Collect names a scope reads from outside the snippet (globals, or free from beyond it)."""
    kind = table.get_type()
    kind = getattr(kind, "value", kind)  # an enum from Python 3.13 on
    own: set[str] = set()
    for sym in table.get_symbols():
        name = sym.get_name()
        if kind == "module":
            if sym.is_referenced():
                out.add(name)
            continue
        global_read = (sym.is_global() and sym.is_referenced()) or sym.is_declared_global()
        if global_read or (sym.is_free() and name not in enclosing):
            out.add(name)
        elif kind == "class" and sym.is_referenced() and not sym.is_assigned():
            out.add(name)  # class bodies read unassigned names from the module
        if kind == "function" and (sym.is_local() or sym.is_parameter()):
            own.add(name)
    inner = enclosing | own if kind == "function" else enclosing
    for child in table.get_children():
        _outer_names(child, frozenset(inner), out)


def outer_names(text: str) -> set[str] | None:
    """Names the snippet reads from outside itself; None when it cannot be analysed."""
    try:
        table = symtable.symtable(textwrap.dedent(text), "<capture>", "exec")
    except (SyntaxError, ValueError):
        return None
    out: set[str] = set()
    _outer_names(table, frozenset(), out)
    return out


def global_references(text: str) -> list[list[str]]:
    """The dotted chains of ``text`` whose head is a name from outside the snippet."""
    try:
        tree = ast.parse(textwrap.dedent(text))
    except SyntaxError:
        return []
    chains = references(tree)
    names = outer_names(text)
    if names is None:
        return chains
    return [c for c in chains if c[0] in names]
