"""Source capture: the code that defines a model, and only that code.

Starting from the classes of every submodule, we read each class's source,
collect the names it references, and resolve them *by object* in the
defining module's globals (never by name across files, so two ``Block``
classes in two files are never confused). Functions, classes and
module-level constants defined inside the user's work tree are captured and
followed transitively; classes from installed packages are recorded by
qualified name and package version instead of being copied.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib.metadata
import inspect
import os
import sys
import textwrap
import types
from dataclasses import dataclass, field
from typing import Any

_CONST_TYPES = (int, float, complex, str, bytes, bool, type(None), tuple, list, dict, set, frozenset)


@dataclass
class Captured:
    objects: list[dict[str, Any]] = field(default_factory=list)  # kind, role, module, qualname, file, line, text
    external: list[dict[str, Any]] = field(default_factory=list)  # qualname, package, version
    missing: list[dict[str, Any]] = field(default_factory=list)  # qualname, reason


def _is_installed(path: str) -> bool:
    parts = path.replace("\\", "/").split("/")
    return "site-packages" in parts or "dist-packages" in parts


@functools.cache
def _package_version(top: str) -> tuple[str, str | None]:
    """(distribution, version) of an installed top-level package.

    Tries the module name as the distribution name first (torch, numpy): the
    full ``packages_distributions`` scan costs ~0.2 s of every first log_all.
    """
    try:
        return top, importlib.metadata.version(top)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        pass
    try:
        dists = importlib.metadata.packages_distributions().get(top) or [top]
    except Exception:  # broken metadata must not break logging
        dists = [top]
    for d in dists:
        try:
            return d, importlib.metadata.version(d)
        except importlib.metadata.PackageNotFoundError:
            continue
    mod = sys.modules.get(top)
    return top, getattr(mod, "__version__", None)


class _Capturer:
    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self.out = Captured()
        self.done: set[int] = set()
        self.queue: list[tuple[Any, str]] = []
        self.const_done: set[tuple[str, str]] = set()
        self.external_done: set[str] = set()
        self._module_ast: dict[str, ast.Module | None] = {}

    # -- classification ------------------------------------------------
    def _local_file(self, obj: Any) -> str | None:
        try:
            path = inspect.getsourcefile(obj) or inspect.getfile(obj)
        except (TypeError, OSError):
            return None
        if not path:
            return None
        real = os.path.realpath(path)
        if _is_installed(real):
            return None
        if real == self.root or real.startswith(self.root + os.sep):
            return real
        return None

    def _rel(self, path: str) -> str:
        return os.path.relpath(path, self.root).replace(os.sep, "/")

    def _record_external(self, obj: Any) -> None:
        qual = f"{obj.__module__}.{obj.__qualname__}"
        if qual in self.external_done or qual == "torch.nn.modules.module.Module":
            return
        self.external_done.add(qual)
        top = (obj.__module__ or "").split(".")[0]
        if top in ("builtins", "__main__"):
            return
        pkg, ver = _package_version(top)
        self.out.external.append({"qualname": qual, "package": pkg, "version": ver})

    # -- traversal -------------------------------------------------------
    def add_module_class(self, cls: type) -> None:
        self._enqueue(cls, "module")

    def _enqueue(self, obj: Any, role: str) -> None:
        if id(obj) in self.done:
            return
        self.done.add(id(obj))
        self.queue.append((obj, role))

    def run(self) -> Captured:
        while self.queue:
            obj, role = self.queue.pop(0)
            self._capture(obj, role)
        return self.out

    def _capture(self, obj: Any, role: str) -> None:
        module = getattr(obj, "__module__", None) or "?"
        qual = getattr(obj, "__qualname__", getattr(obj, "__name__", repr(obj)))
        path = self._local_file(obj)
        if path is None:
            if isinstance(obj, type):
                try:
                    f = inspect.getsourcefile(obj)
                except (TypeError, OSError):
                    f = None
                if (
                    (f and _is_installed(os.path.realpath(f)))
                    or (f is None and module.split(".")[0] in sys.stdlib_module_names)
                ) or (
                    f is None
                    and module.split(".")[0] not in ("__main__",)
                    and _package_version(module.split(".")[0])[1]
                ):
                    self._record_external(obj)
                else:
                    reason = (
                        "no source file (interactive session or notebook)"
                        if f is None
                        else f"source file {f} is outside the work tree"
                    )
                    self.out.missing.append({"qualname": f"{module}.{qual}", "reason": reason})
            return
        try:
            lines, line = inspect.getsourcelines(obj)
        except (OSError, TypeError) as e:
            self.out.missing.append({"qualname": f"{module}.{qual}", "reason": f"source not available: {e}"})
            return
        text = "".join(lines)
        kind = "class" if isinstance(obj, type) else "function"
        self.out.objects.append(
            {
                "kind": kind,
                "role": role,
                "module": module,
                "qualname": qual,
                "file": self._rel(path),
                "line": line,
                "text": text,
            }
        )
        g = (
            vars(sys.modules[module])
            if isinstance(obj, type) and module in sys.modules
            else getattr(obj, "__globals__", {})
        )
        closure: dict[str, Any] = {}
        if isinstance(obj, types.FunctionType) and obj.__closure__:
            try:
                closure = dict(inspect.getclosurevars(obj).nonlocals)
            except (ValueError, TypeError):
                closure = {}
        try:
            tree = ast.parse(textwrap.dedent(text))
        except SyntaxError:
            return
        for chain in _references(tree):
            self._resolve(chain, g, closure)

    def _resolve(self, chain: list[str], g: dict[str, Any], closure: dict[str, Any]) -> None:
        head = chain[0]
        if head in closure:
            obj = closure[head]
        elif head in g:
            obj = g[head]
        else:
            return  # builtins, locals, attributes of self
        if obj is builtins or (head in vars(builtins) and obj is vars(builtins)[head]):
            return
        # Follow module attributes: utils.helper, pkg.mod.CONST
        for _i, attr in enumerate(chain[1:], start=1):
            if not isinstance(obj, types.ModuleType):
                break
            if not hasattr(obj, attr):
                return
            owner = obj
            obj = getattr(obj, attr)
            if not isinstance(obj, types.ModuleType) and isinstance(obj, _CONST_TYPES):
                self._capture_constant(owner, attr)
                return
        if isinstance(obj, types.ModuleType):
            return
        if isinstance(obj, _CONST_TYPES):
            modname = g.get("__name__")
            mod = sys.modules.get(modname) if modname else None
            if mod is not None:
                self._capture_constant(mod, head)
            return
        if isinstance(obj, functools.partial):
            obj = obj.func
        try:
            obj = inspect.unwrap(obj)
        except ValueError:
            pass
        if isinstance(obj, (types.FunctionType, type)):
            if self._local_file(obj) is not None:
                self._enqueue(obj, "dependency")
            elif isinstance(obj, type) and _is_nn_module(obj):
                self._record_external(obj)

    def _capture_constant(self, mod: types.ModuleType, name: str) -> None:
        key = (mod.__name__, name)
        if key in self.const_done:
            return
        self.const_done.add(key)
        path = self._local_file(mod)
        if path is None:
            return
        tree = self._module_ast.get(path, False)
        if tree is False:
            try:
                src = open(path, encoding="utf-8").read()
                tree = ast.parse(src)
                self._module_ast[path] = tree
                self._module_src = getattr(self, "_module_src", {})
                self._module_src[path] = src
            except (OSError, SyntaxError, UnicodeDecodeError):
                self._module_ast[path] = tree = None
        if tree is None:
            return
        src = self._module_src[path]
        found = None
        for node in tree.body:
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets = [node.target]
            names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
            if name in names:
                found = node  # the last binding wins, as at import time
        if found is None:
            return
        text = "\n".join(src.splitlines()[found.lineno - 1 : found.end_lineno])
        self.out.objects.append(
            {
                "kind": "constant",
                "role": "dependency",
                "module": mod.__name__,
                "qualname": name,
                "file": self._rel(path),
                "line": found.lineno,
                "text": text + "\n",
            }
        )
        try:
            for chain in _references(ast.parse(text)):
                if chain[0] != name:
                    self._resolve(chain, vars(mod), {})
        except SyntaxError:
            pass


def _is_nn_module(cls: type) -> bool:
    return any(f"{c.__module__}.{c.__qualname__}" == "torch.nn.modules.module.Module" for c in cls.__mro__)


def _references(tree: ast.AST) -> list[list[str]]:
    """Dotted name chains read anywhere in the code (``a``, ``a.b.c``)."""
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


def capture_model(model: Any, root: str) -> Captured:
    """Capture the source of every class used in ``model`` and what it references."""
    cap = _Capturer(root)
    for m in model.modules():
        for cls in type(m).__mro__:
            if cls is object:
                break
            if _is_nn_module(cls) and f"{cls.__module__}.{cls.__qualname__}" == "torch.nn.modules.module.Module":
                break
            cap.add_module_class(cls)
    return cap.run()
