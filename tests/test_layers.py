"""The layer contract: imports inside tvault_git point one way only (docs/architecture.md).

    cli  ->  web | integrations  ->  api  ->  diff | share | hooks
        ->  registry | storage | capture  ->  gitutil  ->  spec  ->  errors | textfmt

A module may import its own subpackage and any lower layer; ``|`` separates siblings of one layer,
which must not import each other. ``cli`` sits above ``web`` because ``git tvault ui`` starts it. Function-level imports count too (a lazy import is still a
dependency). The package root (``tvault_git.__version__``) may be imported from anywhere.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "tvault_git"

LAYERS: list[set[str]] = [
    {"errors", "textfmt"},
    {"spec"},
    {"gitutil"},
    {"registry", "storage", "capture"},
    {"diff", "share", "hooks"},
    {"api"},
    {"web", "integrations"},
    {"cli"},  # above web: `git tvault ui` serves the web app
]
RANK = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def unit_of(module: str) -> str | None:
    """'tvault_git.registry.cache' -> 'registry'; None for the package root itself."""
    parts = module.split(".")
    if parts[0] != "tvault_git" or len(parts) < 2:
        return None
    return parts[1]


def imports_of(path: Path, pkg: Path = PKG) -> list[tuple[int, str]]:
    """Every tvault_git module a file imports, with the line, resolving relative imports."""
    rel = path.relative_to(pkg.parent).with_suffix("")
    here = list(rel.parts)
    if here[-1] == "__init__":
        here = here[:-1]
    package = here if path.name == "__init__.py" else here[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.append((node.lineno, mod))
            found += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
    return [(ln, m) for ln, m in found if m.startswith("tvault_git")]


def violations(pkg: Path = PKG) -> list[str]:
    bad = []
    for path in sorted(pkg.rglob("*.py")):
        rel = path.relative_to(pkg.parent)
        me = unit_of(".".join(rel.with_suffix("").parts))
        if me is None or me == "__init__":
            continue  # the public facade may name anything (it imports lazily)
        if me not in RANK:
            bad.append(f"{rel}: '{me}' is in no layer; add it to LAYERS")
            continue
        for line, mod in imports_of(path, pkg):
            other = unit_of(mod)
            if other is None or other == me or other == "__version__":
                continue
            if other not in RANK:
                continue  # a name imported from a module, e.g. tvault_git.errors.X; its module is checked
            if RANK[other] >= RANK[me]:
                bad.append(f"{rel}:{line}: {me} (layer {RANK[me]}) imports {mod} ({other}, layer {RANK[other]})")
    return bad


def test_imports_point_down_the_layers():
    assert violations() == []


def test_the_check_catches_a_wrong_way_import(tmp_path):
    fake = tmp_path / "tvault_git"
    (fake / "storage").mkdir(parents=True)
    (fake / "storage" / "__init__.py").write_text("")
    (fake / "storage" / "bad.py").write_text("def f():\n    from tvault_git.registry import cache\n")
    (fake / "spec").mkdir()
    (fake / "spec" / "bad.py").write_text("from ..cli import app\n")
    found = violations(fake)
    assert any("storage/bad.py:2: storage" in v and "registry" in v for v in found), found
    assert any("spec/bad.py:1: spec" in v and "tvault_git.cli" in v for v in found), found


@pytest.mark.parametrize("unit", sorted(RANK))
def test_every_layer_unit_exists(unit):
    if unit == "integrations" and not (PKG / unit).exists():
        pytest.skip("no integrations package yet")
    assert (PKG / unit).exists() or (PKG / f"{unit}.py").exists()
