"""``git tvault import-tvault DIR``: move an original ``tvault`` registry (``model_log/``) in.

The seed wrote one pickle per training commit, ``model_log/model_<sha7>``, holding
``{index: {"model": repr, "src": {"./file.py:Class": source}, "external_func": {...},
"optimizer": str(optimizer), "scheduler": str, "tag-<key>": value, "result": number}}``.
Those files come from wherever a registry was copied from, so they are read with an unpickler
that refuses every class (plain dicts, lists, strings and numbers are all the format needs; a
pickle naming any class or persistent id is refused before anything is built from it). Each
record becomes an entry on the recorded commit when this repository has it, else on HEAD with the
recorded hash kept as a tag. The seed stored no weights, so the entries have none (``show`` says
so). Importing twice adds nothing: each record's origin is a tag, looked up before writing.
Torch-free.
"""

from __future__ import annotations

import datetime as _dt
import io
import os
import pickle
import re
from dataclasses import dataclass
from typing import Any

import pygit2

from tvault_git import __version__
from tvault_git.errors import CorruptEntry, InvalidInput
from tvault_git.gitutil.repo import ensure_config, head_commit, signature
from tvault_git.registry import notes, query
from tvault_git.spec.format import (
    ARCHITECTURE,
    FORMAT_VERSION,
    MANIFEST,
    OPTIMIZER,
    REF_PREFIX,
    SCHEDULER,
    SOURCE_DIR,
    SOURCE_INDEX,
    WEIGHTS,
    dumps,
)

MAX_FILE = 64 * 1024 * 1024  # the seed's files hold source text: anything larger is not one
ORIGIN_TAG = "tvault_seed"  # "<file>:<index>", what makes a second import a no-op
COMMIT_TAG = "tvault_seed_commit"  # the recorded hash, when this repository lacks that commit
_FILE_RE = re.compile(r"^model_([0-9a-fA-F]{4,40})$")


class _NoClasses(pickle.Unpickler):
    """Builds only pickle's built-in containers and scalars; any global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise CorruptEntry(
            f"refused: the pickle asks for {module}.{name}; a tvault model_log holds only dicts, strings and numbers"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise CorruptEntry(
            "refused: the pickle uses persistent ids; a tvault model_log holds only dicts, strings and numbers"
        )


def read_model_log(path: str) -> dict[int, dict[str, Any]]:
    """One seed file, checked: a dict of model index -> record dict, nothing executable."""
    size = os.path.getsize(path)
    if size > MAX_FILE:
        raise CorruptEntry(f"{path}: {size} bytes is too large for a tvault model_log file (at most {MAX_FILE})")
    with open(path, "rb") as f:
        data = f.read(MAX_FILE + 1)
    try:
        obj = _NoClasses(io.BytesIO(data)).load()
    except CorruptEntry as e:
        raise CorruptEntry(f"{path}: {e}") from None
    except Exception as e:
        raise CorruptEntry(f"{path}: not a tvault model_log file ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict) or not all(isinstance(k, int) and isinstance(v, dict) for k, v in obj.items()):
        raise CorruptEntry(f"{path}: not a tvault model_log file (expected a dict of model index -> record)")
    return obj


@dataclass
class Imported:
    file: str
    index: int
    entry: str | None  # None: already imported (skipped)
    ref: str | None
    on_recorded_commit: bool


def _text(v: Any) -> str:
    return v if isinstance(v, str) else ("" if v is None else str(v))


def _scalar(text: str) -> Any:
    t = text.strip()
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    return {"True": True, "False": False, "None": None}.get(t, t)


def parse_optimizer_text(text: str) -> dict[str, Any]:
    """``str(optimizer)`` ("SGD (\\nParameter Group 0\\n    lr: 0.01 ...)") as class and param groups."""
    lines = text.strip().splitlines()
    cls = lines[0].split("(")[0].strip() if lines else ""
    groups: list[dict[str, Any]] = []
    for ln in lines[1:]:
        if ln.strip().startswith("Parameter Group"):
            groups.append({"params": []})
        elif ":" in ln and groups:
            k, _, v = ln.strip().partition(":")
            groups[-1][k.strip()] = _scalar(v)
    return {"class": cls, "param_groups": groups, "text": text}


def _source_objects(repo: pygit2.Repository, rec: dict[str, Any]) -> tuple[pygit2.Oid | None, list[dict[str, Any]]]:
    """The seed's class and function sources as ``source/<module>/<qualname>.py`` blobs."""
    index: list[dict[str, Any]] = []
    modules: dict[str, pygit2.TreeBuilder] = {}
    for field, kind, role in (("src", "class", "module"), ("external_func", "function", "dependency")):
        objs = rec.get(field) or {}
        if not isinstance(objs, dict):
            continue
        for key, text in sorted(objs.items()):
            if not isinstance(key, str) or not isinstance(text, str):
                continue
            file, _, qualname = key.rpartition(":")
            file = os.path.normpath(file).lstrip("./") if file else "?"
            module = file[:-3].replace("/", ".") if file.endswith(".py") else file.replace("/", ".")
            if not qualname or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", qualname) or not module or "/" in module:
                continue
            blob = repo.create_blob(text.rstrip("\n").encode() + b"\n")
            modules.setdefault(module, repo.TreeBuilder()).insert(f"{qualname}.py", blob, pygit2.enums.FileMode.BLOB)
            index.append(
                {
                    "kind": kind,
                    "role": role,
                    "module": module,
                    "qualname": qualname,
                    "file": file,
                    "line": None,
                    "path": f"{SOURCE_DIR}/{module}/{qualname}.py",
                }
            )
    if not modules:
        return None, index
    tb = repo.TreeBuilder()
    for mod, sub in modules.items():
        tb.insert(mod, sub.write(), pygit2.enums.FileMode.TREE)
    return tb.write(), index


def _number(v: Any) -> float | int | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
        return None
    return v


def _tag(v: Any) -> Any:
    return (
        v
        if v is None or isinstance(v, (bool, str, int)) or (isinstance(v, float) and _number(v) is not None)
        else str(v)
    )


def import_dir(repo: pygit2.Repository, path: str) -> list[Imported]:
    """Every record of every ``model_<sha>`` file under ``path`` (a ``model_log`` folder), in order."""
    if not os.path.isdir(path):
        raise InvalidInput(f"{path} is not a directory; give the original tvault's model_log folder")
    files = sorted(f for f in os.listdir(path) if _FILE_RE.match(f) and os.path.isfile(os.path.join(path, f)))
    if not files:
        raise InvalidInput(f"{path} holds no model_<hash> files; give the original tvault's model_log folder")
    logs = [(f, read_model_log(os.path.join(path, f))) for f in files]  # all checked before anything is written
    head = head_commit(repo)
    ensure_config(repo)
    sig = signature(repo)
    done = {r["tags"].get(ORIGIN_TAG) for r in query.find(repo)}
    out: list[Imported] = []
    for fname, log in logs:
        sha = _FILE_RE.match(fname).group(1).lower()  # type: ignore[union-attr]
        try:
            commit = str(repo.revparse_single(sha).peel(pygit2.Commit).id)
        except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
            commit = None
        for idx in sorted(log):
            origin = f"{fname}:{idx}"
            if origin in done:
                out.append(Imported(fname, idx, None, None, commit is not None))
                continue
            e = _write(repo, sig, log[idx], commit or str(head.id), origin, None if commit else sha)
            out.append(Imported(fname, idx, e[0], e[1], commit is not None))
    return out


def _write(
    repo: pygit2.Repository,
    sig: pygit2.Signature,
    rec: dict[str, Any],
    commit: str,
    origin: str,
    lost_commit: str | None,
) -> tuple[str, str]:
    tags = {k[4:]: _tag(v) for k, v in rec.items() if isinstance(k, str) and k.startswith("tag-") and k[4:]}
    tags[ORIGIN_TAG] = origin
    if lost_commit:
        tags[COMMIT_TAG] = lost_commit
    result = _number(rec.get("result"))
    arch = _text(rec.get("model"))
    src_tree, src_index = _source_objects(repo, rec)
    now = _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="microseconds")
    manifest = {
        "format": FORMAT_VERSION,
        "kind": "tvault-entry",
        "created": now,
        "author": {"name": sig.name, "email": sig.email},
        "commit": commit,
        "branch": None,
        "dirty": False,
        "untracked": [],
        "name": None,
        "message": f"imported from the original tvault ({origin})",
        "tags": tags,
        "result": result,
        "metrics": {},
        "model": {"class": arch.split("(")[0].strip() or "?", "parameters": 0, "tensors": 0, "bytes": 0},
        "versions": {"tvault_git": __version__, "pygit2": pygit2.__version__},
        "imported": {"from": "tvault", "record": origin, "weights": False},
    }
    blob = lambda data: repo.create_blob(data if isinstance(data, bytes) else data.encode())  # noqa: E731
    tb = repo.TreeBuilder()
    tb.insert(MANIFEST, blob(dumps(manifest)), pygit2.enums.FileMode.BLOB)
    tb.insert(ARCHITECTURE, blob(arch.rstrip("\n") + "\n"), pygit2.enums.FileMode.BLOB)
    tb.insert(WEIGHTS, blob(dumps({"chunk_bytes": 33554432, "tensors": {}}, ordered=True)), pygit2.enums.FileMode.BLOB)
    tb.insert(
        SOURCE_INDEX, blob(dumps({"objects": src_index, "external": [], "missing": []})), pygit2.enums.FileMode.BLOB
    )
    if src_tree is not None:
        tb.insert(SOURCE_DIR, src_tree, pygit2.enums.FileMode.TREE)
    if rec.get("optimizer"):
        tb.insert(OPTIMIZER, blob(dumps(parse_optimizer_text(_text(rec["optimizer"])))), pygit2.enums.FileMode.BLOB)
    if rec.get("scheduler"):
        text = _text(rec["scheduler"])
        tb.insert(
            SCHEDULER,
            blob(dumps({"class": text.split(" ")[0].split(".")[-1].strip("<>"), "state": {}, "text": text})),
            pygit2.enums.FileMode.BLOB,
        )
    title = f"tvault: {manifest['model']['class'].rsplit('.', 1)[-1]}" + (
        f" result={result}" if result is not None else ""
    )
    body = f"{title}\n\ntrained on {commit}\n\nimported from the original tvault ({origin})\n"
    entry_id = str(repo.create_commit(None, sig, sig, body, tb.write(), []))
    repo.references.create(REF_PREFIX + entry_id, pygit2.Oid(hex=entry_id), force=True)
    res_txt = None if result is None else repr(result)
    shown = notes.display_text(f"{manifest['model']['class']} (imported)", res_txt, entry_id)
    index = notes.add(repo, commit, entry_id, None, res_txt, created=now, display=shown, stamp=True)
    return entry_id, f"{commit[:7]}:{index}"
