"""Source capture: the code that defines a model, and only that code, as it ran.

Starting from the classes of every submodule, we read each class's source,
collect the names it reads from its module (by scope: ``scope.py``), and
resolve them *by object* in the defining module's globals (never by name
across files, so two ``Block`` classes in two files are never confused).
Functions, classes and module-level objects defined inside the user's work
tree are captured and followed transitively, constants with their value at
log time (``values.py``); functions and classes from installed packages are
recorded by qualified name and package version instead of being copied.
Every file is checked against the live code objects first (``drift.py``): a
file edited after import is replaced by the training commit's version when
that is provably what ran, and is reported missing otherwise. Whatever
cannot be captured goes into ``missing`` with a reason.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib.metadata
import importlib.util
import inspect
import linecache
import os
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tvault_git.capture import drift, libraries, values
from tvault_git.capture.pysource import import_binding, locate, node_start, node_text
from tvault_git.capture.scope import global_references

DRIFT_NOTE = "changed on disk after it was imported"
_NEVER_LOCAL = frozenset({"builtins", "torch", "numpy", "collections", "typing", "enum"})


@dataclass
class Captured:
    objects: list[dict[str, Any]] = field(
        default_factory=list
    )  # kind, role, module, qualname, file, line, text[, value, closure]
    external: list[dict[str, Any]] = field(default_factory=list)  # qualname, package, version
    missing: list[dict[str, Any]] = field(default_factory=list)  # qualname, reason
    drift: list[dict[str, Any]] = field(default_factory=list)  # file, ran: "commit" | "unknown"
    configuration: dict[str, Any] = field(default_factory=dict)  # values.module_configuration
    model_class: str = ""


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


def _is_cell(filename: str) -> bool:
    """A notebook cell or IPython input: no file, but IPython keeps its text in linecache."""
    if filename in linecache.cache and not os.path.exists(filename):
        return bool(linecache.cache[filename][2])
    return False


def _cell_label(filename: str) -> str:
    return filename if filename.startswith("<") else f"<notebook cell {os.path.basename(filename)}>"


def _script_function(obj: Any) -> types.FunctionType | None:
    """The Python function a ``@torch.jit.script`` ScriptFunction was compiled from."""
    if type(obj).__name__ != "ScriptFunction":
        return None
    fn = getattr(obj, "_torchdynamo_inline", None)
    if isinstance(fn, types.FunctionType):
        return fn
    qual = str(getattr(obj, "qualified_name", "")).removeprefix("__torch__.")
    mod, _, name = qual.rpartition(".")
    cand = getattr(sys.modules.get(mod), name, None)
    return cand if isinstance(cand, types.FunctionType) else None


def _script_class(m: Any) -> type | bool | None:
    """The Python class behind a TorchScript module; False when ``m`` is not one."""
    c = getattr(m, "_c", None)
    if c is None or not hasattr(m, "original_name") or not hasattr(c, "_type"):
        return False
    try:
        qual = c._type().qualified_name()
    except Exception:
        return None
    parts = [p for p in qual.removeprefix("__torch__.").split(".") if not p.startswith("___torch_mangle_")]
    for i in range(len(parts) - 1, 0, -1):
        mod = sys.modules.get(".".join(parts[:i]))
        if mod is None:
            continue
        obj: Any = mod
        for p in parts[i:]:
            obj = getattr(obj, p, None)
        if isinstance(obj, type):
            return obj
    return None


_FileText = tuple[str, list[str], ast.Module | None, str]  # text, lines, tree, ran ("disk", "commit", "cell")


class _Capturer:
    def __init__(self, root: str, committed: Callable[[str], str | None] | None = None) -> None:
        self.root = os.path.realpath(root)
        self.committed = committed
        self.out = Captured()
        self.done: set[int] = set()
        self.queue: list[tuple[Any, str]] = []
        self.const_done: set[tuple[str, str]] = set()
        self.external_done: set[str] = set()
        self.missing_done: set[str] = set()
        self._files: dict[str, _File] = {}
        self._drift: dict[str, str] = {}  # file -> "commit" | "unknown"
        self._is_local: dict[type, bool] = {}
        self._paths: dict[str, str | None] = {}
        self._libraries: dict[str, Any] = {}

    # -- classification ------------------------------------------------
    def _local_path(self, path: str | None) -> str | None:
        if not path:
            return None
        if path not in self._paths:
            self._paths[path] = self._local_path_uncached(path)
        return self._paths[path]

    def _local_path_uncached(self, path: str) -> str | None:
        if _is_cell(path):
            return path
        real = os.path.realpath(path)
        if _is_installed(real):
            return None
        if real == self.root or real.startswith(self.root + os.sep):
            return real
        return None

    def _source_path(self, obj: Any) -> str | None:
        """The file an object's code lives in; classes in a cell are found through their methods."""
        try:
            path = inspect.getsourcefile(obj) or inspect.getfile(obj)
        except (TypeError, OSError):
            path = None
        if path is None and isinstance(obj, type):
            for v in vars(obj).values():
                fn = getattr(v, "__func__", v)
                co = getattr(fn, "__code__", None)
                if co is not None and _is_cell(co.co_filename):
                    return co.co_filename
        return path

    def _local_file(self, obj: Any) -> str | None:
        return self._local_path(self._source_path(obj))

    def is_local(self, cls: type) -> bool:
        """Is ``cls`` defined in the work tree (cached: asked for the type of every attribute)."""
        hit = self._is_local.get(cls)
        if hit is None:
            hit = self._is_local[cls] = cls.__module__ not in _NEVER_LOCAL and self._local_file(cls) is not None
        return hit

    def _module_file(self, mod: types.ModuleType, hint: str | None) -> str | None:
        f = getattr(mod, "__file__", None)
        if f:
            return self._local_path(f)
        return hint if hint and _is_cell(hint) else None

    def _rel(self, path: str) -> str:
        if _is_cell(path):
            return _cell_label(path)
        return os.path.relpath(path, self.root).replace(os.sep, "/")

    def _missing(self, qual: str, reason: str) -> None:
        if qual not in self.missing_done:
            self.missing_done.add(qual)
            self.out.missing.append({"qualname": qual, "reason": reason})

    def _library(self, obj: Any) -> dict[str, Any] | None:
        """The sibling git repository ``obj``'s source file lives in (not site-packages, not the work tree)."""
        top = (getattr(obj, "__module__", None) or "").split(".")[0]
        if not top or top in sys.stdlib_module_names or top in _NEVER_LOCAL or top == "__main__":
            return None  # the standard library may sit in a git checkout too (pyenv)
        f = self._source_path(obj)
        if not f or _is_cell(f) or _is_installed(os.path.realpath(f)) or self._local_path(f) is not None:
            return None
        return libraries.library_of(f, self.root, self._libraries)

    def _record_external(self, obj: Any, lib: dict[str, Any] | None = None) -> None:
        qual = f"{obj.__module__}.{obj.__qualname__}"
        if qual in self.external_done or qual == "torch.nn.modules.module.Module":
            return
        self.external_done.add(qual)
        top = (obj.__module__ or "").split(".")[0]
        if top in ("builtins", "__main__"):
            return
        pkg, ver = _package_version(top)
        rec: dict[str, Any] = {"qualname": qual, "package": pkg, "version": ver}
        lib = lib or self._library(obj)
        if lib is not None:
            rec["repo"] = lib
            if lib.get("dirty") is not False or not lib.get("commit"):
                self._missing(qual, f"library {libraries.describe(lib)}: its commit does not reproduce the code")
        self.out.external.append(rec)

    # -- the text that ran ---------------------------------------------
    def _text(self, path: str, obj: Any = None) -> _FileText | None:
        """The source of ``path`` that ``obj``'s running code was compiled from; None if it cannot be proven.

        Each function or class is checked on its own (its code objects against
        the file now, then the training commit's version), so an unused stale
        definition elsewhere in the file does not matter. Constants (``obj``
        None) come from the version the file's code was proven to run from.
        """
        if path not in self._files:
            self._files[path] = _File(path, self)
        f = self._files[path]
        if f.cell is not None:
            return f.cell
        codes = drift.object_codes(obj, path) if obj is not None else []
        if not codes:
            state = self._drift.get(f.rel)
            return None if state == "unknown" else f.version("commit" if state == "commit" else "disk")
        for ran in ("disk", "commit"):
            if drift.matches(codes, f.index(ran)):
                if ran == "commit" and self._drift.get(f.rel) != "unknown":
                    self._drift[f.rel] = "commit"
                return f.version(ran)
        self._drift[f.rel] = "unknown"
        return None

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
        src_path = self._source_path(obj)
        path = self._local_path(src_path)
        if path is None:
            if isinstance(obj, type):
                f = src_path
                if (
                    (f and _is_installed(os.path.realpath(f)))
                    or (f is None and module.split(".")[0] in sys.stdlib_module_names)
                    or (
                        f is None
                        and module.split(".")[0] not in ("__main__",)
                        and _package_version(module.split(".")[0])[1]
                    )
                ):
                    self._record_external(obj)
                elif (lib := self._library(obj)) is not None:
                    self._record_external(obj, lib)  # pip install -e ../mylib: its commit identifies the code
                else:
                    reason = (
                        "no source file (interactive session or notebook)"
                        if f is None
                        else f"source file {f} is outside the work tree"
                    )
                    self._missing(f"{module}.{qual}", reason)
            return
        mod = sys.modules.get(module)
        ft = self._text(path, obj)
        if ft is None:
            self._missing(f"{module}.{qual}", f"{self._rel(path)} {DRIFT_NOTE} and differs from the training commit")
            return
        kind = "class" if isinstance(obj, type) else "function"
        found = self._locate(obj, qual, kind, ft)
        if found is None:
            self._missing(f"{module}.{qual}", "source not available: definition not found in its file")
            return
        text, line = found
        rec: dict[str, Any] = {
            "kind": kind,
            "role": role,
            "module": module,
            "qualname": qual,
            "file": self._rel(path),
            "line": line,
            "text": text,
        }
        self.out.objects.append(rec)
        if isinstance(obj, type):
            g = vars(mod) if mod is not None else {}
        else:
            g = getattr(obj, "__globals__", {})
        closure = self._closure(obj)
        if closure:
            data = {}
            for k, v in closure.items():
                conv = values.Plain(self.is_local).convert(v, k)
                if conv is not values.NotPlain:
                    data[k] = conv
            if data:
                rec["closure"] = data
        for chain in global_references(text):
            self._resolve(chain, g, closure, path)

    def _locate(self, obj: Any, qual: str, kind: str, ft: _FileText) -> tuple[str, int] | None:
        _, lines, tree, ran = ft
        if tree is not None and "<lambda>" not in qual:
            node = locate(tree.body, qual.split("."), kind)
            if node is not None:
                return node_text(lines, node), node_start(node)
        if ran == "disk":
            try:
                src, line = inspect.getsourcelines(obj)
                return "".join(src), line
            except (OSError, TypeError):
                return None
        return None

    @staticmethod
    def _closure(obj: Any) -> dict[str, Any]:
        fns = [obj] if isinstance(obj, types.FunctionType) else []
        if isinstance(obj, type) and "<locals>" in obj.__qualname__:
            fns = [getattr(v, "__func__", v) for v in vars(obj).values()]
        out: dict[str, Any] = {}
        for fn in fns:
            if isinstance(fn, types.FunctionType) and fn.__closure__:
                try:
                    nl = inspect.getclosurevars(fn).nonlocals
                except (ValueError, TypeError):
                    continue
                out.update({k: v for k, v in nl.items() if k != "__class__"})
        return out

    def _resolve(self, chain: list[str], g: dict[str, Any], closure: dict[str, Any], hint: str | None) -> None:
        head = chain[0]
        if head in closure:
            obj, owner = closure[head], None
        elif head in g:
            obj, owner = g[head], sys.modules.get(g.get("__name__", ""))
        else:
            return  # builtins, or names bound at run time
        if obj is builtins or (head in vars(builtins) and obj is vars(builtins)[head]):
            return
        name = head
        # Follow module attributes: utils.helper, pkg.mod.CONST
        for attr in chain[1:]:
            if not isinstance(obj, types.ModuleType):
                break
            if not hasattr(obj, attr):
                return
            owner, name = obj, attr
            obj = getattr(obj, attr)
        if isinstance(obj, types.ModuleType):
            return
        self._use(obj, owner, name, hint)

    def _use(self, obj: Any, owner: types.ModuleType | None, name: str, hint: str | None) -> None:
        """A referenced object: code is followed, data is captured as a constant with its value."""
        fn = _script_function(obj)
        if fn is not None:
            obj = fn
        if isinstance(obj, functools.partial):
            if owner is not None:
                self._capture_constant(owner, name, obj, hint)
            self._use(obj.func, None, "", hint)
            return
        if isinstance(obj, types.FunctionType | type):
            try:
                obj = inspect.unwrap(obj)
            except ValueError:
                pass
            if self._local_file(obj) is not None:
                self._enqueue(obj, "dependency")
                if owner is not None and (name != obj.__name__ or "<locals>" in obj.__qualname__):
                    self._capture_constant(owner, name, obj, hint)  # Gate = make_gate(K): the binding
            elif isinstance(obj, type):
                if _is_nn_module(obj):
                    self._record_external(obj)
            elif self._installed(obj) or self._library(obj) is not None:
                self._record_external(obj)
            return
        if isinstance(obj, types.BuiltinFunctionType | types.MethodType | types.ModuleType):
            return
        if owner is not None and self._module_file(owner, hint) is not None:
            self._capture_constant(owner, name, obj, hint)

    def _installed(self, fn: types.FunctionType) -> bool:
        top = (fn.__module__ or "").split(".")[0]
        if not top or top in sys.stdlib_module_names or top in ("__main__", "builtins"):
            return False
        f = fn.__code__.co_filename
        return _is_installed(os.path.realpath(f)) or bool(_package_version(top)[1])

    def _capture_constant(self, mod: types.ModuleType, name: str, obj: Any, hint: str | None) -> None:
        key = (mod.__name__, name)
        if key in self.const_done:
            return
        self.const_done.add(key)
        path = self._module_file(mod, hint)
        if path is None:
            return
        ft = self._text(path)
        qual = f"{mod.__name__}.{name}"
        if ft is None:
            self._missing(qual, f"{self._rel(path)} {DRIFT_NOTE} and differs from the training commit")
            return
        _, lines, tree, _ = ft
        node = locate(tree.body, [name], "constant") if tree is not None else None
        if node is None and tree is not None:
            imp = import_binding(tree.body, name)
            if imp is not None:  # from config import HIDDEN_MULT: the definition lives in config
                src = _imported_module(mod, *imp[:2])
                if src is not None and getattr(src, imp[2], None) is obj:
                    self._capture_constant(src, imp[2], obj, None)
                    return
        if node is not None:
            text = node_text(lines, node)
            line = node_start(node)
        else:
            text, line = f"# {name}: no assignment in {self._rel(path)}; its value at log time is recorded\n", 0
        self.out.objects.append(
            {
                "kind": "constant",
                "role": "dependency",
                "module": mod.__name__,
                "qualname": name,
                "file": self._rel(path),
                "line": line,
                "text": text if text.endswith("\n") else text + "\n",
                "value": values.value_of(obj, self.is_local),
            }
        )
        if isinstance(obj, functools.partial):
            return  # the partial's function is followed by the caller
        for chain in global_references(text):
            if chain[0] != name:
                self._resolve(chain, vars(mod), {}, path)

    # -- callables stored on modules ------------------------------------
    def add_attribute_callable(self, fn: Any) -> None:
        """A function or lambda a module holds (``self.pool = pool``): its code and what it reads."""
        if isinstance(fn, functools.partial):
            fn = fn.func
        if not isinstance(fn, types.FunctionType):
            return
        if fn.__name__ != "<lambda>":
            self._use(fn, None, "", None)
            return
        src = values.lambda_source(fn)
        path = self._local_file(fn)
        if src and path is not None:
            for chain in global_references(src):
                self._resolve(chain, fn.__globals__, self._closure(fn), path)


def capture_gaps(missing: list[dict[str, Any]], drift: list[dict[str, Any]]) -> str | None:
    """One line naming what capture could not do, or None when capture is complete."""
    notes_ = []
    for d in drift:
        how = (
            "recorded the training commit's version, which is what ran"
            if d["ran"] == "commit"
            else "its code is not recorded"
        )
        notes_.append(f"{d['file']} {DRIFT_NOTE} ({how})")
    gone = [m for m in missing if DRIFT_NOTE not in m.get("reason", "")]
    if gone:
        shown = ", ".join(f"{m['qualname']} ({m['reason']})" for m in gone[:4])
        more = f" and {len(gone) - 4} more" if len(gone) > 4 else ""
        notes_.append(f"could not capture {shown}{more}")
    drift_missing = [m["qualname"] for m in missing if DRIFT_NOTE in m.get("reason", "")]
    if drift_missing:
        notes_.append("not recorded: " + ", ".join(drift_missing[:6]) + (" ..." if len(drift_missing) > 6 else ""))
    return "; ".join(notes_) if notes_ else None


class _File:
    """One source file's candidate texts (on disk now, in the training commit), read and compiled lazily."""

    def __init__(self, path: str, cap: _Capturer) -> None:
        self.path, self.rel, self.cap = path, cap._rel(path), cap
        self.cell: _FileText | None = None
        if _is_cell(path):
            text = "".join(linecache.getlines(path))
            self.cell = (text, text.splitlines(True), _parse(text), "cell")
        self._texts: dict[str, str | None] = {}
        self._versions: dict[str, _FileText | None] = {}
        self._indexes: dict[str, Any] = {}

    def text(self, ran: str) -> str | None:
        if ran not in self._texts:
            if ran == "disk":
                try:
                    with open(self.path, encoding="utf-8") as f:
                        self._texts[ran] = f.read()
                except (OSError, UnicodeDecodeError):
                    self._texts[ran] = None
            else:
                self._texts[ran] = self.cap.committed(self.rel) if self.cap.committed else None
        return self._texts[ran]

    def version(self, ran: str) -> _FileText | None:
        if ran not in self._versions:
            t = self.text(ran)
            self._versions[ran] = None if t is None else (t, t.splitlines(True), _parse(t), ran)
        return self._versions[ran]

    def index(self, ran: str) -> Any:
        if ran not in self._indexes:
            t = self.text(ran)
            self._indexes[ran] = None if t is None else drift.compiled_index(t, self.path)
        return self._indexes[ran]


def _parse(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        return None


def _imported_module(mod: types.ModuleType, name: str, level: int) -> types.ModuleType | None:
    try:
        full = importlib.util.resolve_name("." * level + name, mod.__package__ or "") if level else name
    except (ImportError, ValueError):
        return None
    return sys.modules.get(full)


def _is_nn_module(cls: type) -> bool:
    return any(f"{c.__module__}.{c.__qualname__}" == "torch.nn.modules.module.Module" for c in cls.__mro__)


def _classes(model: Any, cap: _Capturer) -> list[type]:
    """The classes of every submodule; TorchScript modules map back to their Python classes."""
    out = []
    for m in model.modules():
        cls = _script_class(m)
        if cls is False:
            cls = type(m)
        elif cls is None:
            cap._missing(f"TorchScript module {m.original_name}", "its Python class is not importable")
            continue
        out.append(cls)
    return out


def model_class(model: Any) -> str:
    """The model's class name; for a TorchScript model, the class it was scripted from."""
    cls = _script_class(model)
    cls = type(model) if not isinstance(cls, type) else cls
    return f"{cls.__module__}.{cls.__qualname__}"


def capture_model(model: Any, root: str, committed: Callable[[str], str | None] | None = None) -> Captured:
    """Capture the source of every class used in ``model``, what it references, and its configuration.

    ``committed(rel_path)`` returns a file's text in the training commit (to
    recover the code that ran when the file changed on disk after import).
    """
    cap = _Capturer(root, committed)
    for top in _classes(model, cap):
        for cls in top.__mro__:
            if cls is object:
                break
            if f"{cls.__module__}.{cls.__qualname__}" == "torch.nn.modules.module.Module":
                break
            cap.add_module_class(cls)
    for m in model.modules():
        for v in list(getattr(m, "__dict__", {}).values()):
            if isinstance(v, types.FunctionType | functools.partial):
                cap.add_attribute_callable(v)
            elif not isinstance(v, type | types.ModuleType) and cap.is_local(type(v)):
                cap._enqueue(type(v), "dependency")  # a config object's class: its defaults and code
    out = cap.run()
    out.drift = [{"file": f, "ran": ran} for f, ran in sorted(cap._drift.items())]
    out.configuration = values.module_configuration(model, cap.is_local)
    out.model_class = model_class(model)
    return out
