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


# -- tests never import other test modules -------------------------------------------------------

TESTS = Path(__file__).resolve().parent


def _is_test_module(module: str) -> bool:
    """'tests.test_web', 'test_share', 'tests.spec.test_spec_vectors', 'conftest': modules pytest loads itself."""
    return any(part.startswith("test_") or part == "conftest" for part in module.split("."))


def imports_of_test_modules(tests: Path = TESTS) -> list[str]:
    """Every import of a test module (or a conftest) by a file under ``tests``, as 'file:line: module'.

    Why: importing a test module runs its tests twice and re-creates its module-scoped fixtures
    under a second name; shared fixtures go in conftest.py, shared helpers in tests/helpers.py.
    """
    bad = []
    for path in sorted(tests.rglob("*.py")):
        rel = path.relative_to(tests.parent)
        package = list(rel.with_suffix("").parts[:-1])
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            mods: list[str] = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                mod = ".".join(base + ([node.module] if node.module else []))
                mods = [mod] + [f"{mod}.{a.name}" for a in node.names]
            for mod in mods:
                if _is_test_module(mod):
                    bad.append(f"{rel}:{node.lineno}: imports {mod}")
                    break
    return bad


def test_no_test_module_imports_another():
    assert imports_of_test_modules() == []


def test_the_check_catches_a_test_module_import(tmp_path):
    fake = tmp_path / "tests"
    (fake / "spec").mkdir(parents=True)
    (fake / "helpers.py").write_text("import json\n")
    (fake / "test_a.py").write_text("from tests.helpers import x\nfrom tests.test_b import fixture\n")
    (fake / "spec" / "test_c.py").write_text("from .test_d import G\nfrom . import helpers\n")
    (fake / "test_e.py").write_text("import conftest\n")
    found = imports_of_test_modules(fake)
    assert found == [
        "tests/spec/test_c.py:1: imports tests.spec.test_d",
        "tests/test_a.py:2: imports tests.test_b",
        "tests/test_e.py:1: imports conftest",
    ], found
