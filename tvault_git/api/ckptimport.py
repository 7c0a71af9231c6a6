"""``git tvault import FILE...|DIR``: checkpoint files a training run already wrote, as entries.

A checkpoint is data from wherever it was copied from, so nothing in it may run: ``.pt`` /
``.pth`` / ``.bin`` / ``.ckpt`` files are read with ``torch.load(weights_only=True)`` only, and
``.safetensors`` files with the safetensors library after their header is checked against the file
(a header claiming more bytes than the file holds is refused before anything is allocated). What
imports is a state_dict: a (nested) dict of tensors; a training checkpoint's ``state_dict`` (as
Lightning writes) is unwrapped, with a note. Anything else (a pickled class or whole model, a
value that is not a tensor) is refused with ``CheckpointRefused``. Every file is checked before
the first entry is written, so a refused file leaves no entries behind.

Each file becomes one version of ``name``, in natural order (``epoch_9`` before ``epoch_10``), on
the training commit given (default HEAD). Tensors equal to one stored before are not written again
(storage dedups per tensor), so a run of checkpoints that fine-tune a few layers costs about the
changed layers; ``Report`` says how much. The entry has no captured code: its manifest's
``imported`` key (docs/FORMAT.md) names the file and its sha256. A file whose sha256 is already a
version of ``name`` is skipped, so importing a checkpoint folder again adds only the new ones.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pygit2
import torch

from tvault_git.api import log as logmod
from tvault_git.capture import live
from tvault_git.errors import CheckpointRefused, InvalidInput, RefNotFound
from tvault_git.gitutil.repo import ensure_config, head_commit, open_repo_like, signature
from tvault_git.registry import names
from tvault_git.registry.entries import Entry
from tvault_git.spec.format import NAME_RE
from tvault_git.storage import reclaim, tensors

TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
SUFFIXES = (".safetensors",) + TORCH_SUFFIXES
#: keys under which training checkpoints keep the model's state_dict (Lightning: ``state_dict``)
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
MAX_HEADER = 100 * 1024 * 1024  # the safetensors format's own limit on its JSON header
_ST_DTYPES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
    "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1,
}  # fmt: skip


def natural_key(path: str) -> list[Any]:
    """``epoch_9`` before ``epoch_10``: digit runs compare as numbers."""
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", path)]


def checkpoint_files(paths: Iterable[str]) -> list[str]:
    """The files to import, in natural order: each FILE as given, each DIR's checkpoint files."""
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            found = [
                os.path.join(p, f)
                for f in os.listdir(p)
                if f.endswith(SUFFIXES) and not f.startswith(".") and os.path.isfile(os.path.join(p, f))
            ]
            if not found:
                raise InvalidInput(f"{p} holds no checkpoint files ({', '.join(SUFFIXES)})")
            out += found
        elif os.path.isfile(p):
            if not p.endswith(SUFFIXES):
                raise CheckpointRefused(
                    f"{p}: not a checkpoint file; import takes {', '.join(SUFFIXES)} files or a folder of them",
                    path=p,
                )
            out.append(p)
        else:
            raise InvalidInput(f"{p}: no such file or directory")
    if len(set(out)) != len(out):
        raise InvalidInput("a checkpoint file is named twice; give each file once")
    return sorted(out, key=natural_key)


def _refuse(path: str, why: str) -> CheckpointRefused:
    return CheckpointRefused(f"refused {path}: {why}; nothing was imported", path=path)


def check_safetensors(path: str) -> dict[str, Any]:
    """The header of a .safetensors file, every tensor's extent checked against the file's size."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise _refuse(path, "too short for a safetensors file")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER or 8 + n > size:
            raise _refuse(path, f"the safetensors header claims {n} bytes; the file has {size} (damaged or hostile)")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _refuse(path, "the safetensors header is not JSON (damaged or not a safetensors file)") from None
    if not isinstance(header, dict):
        raise _refuse(path, "the safetensors header is not an object")
    data = size - 8 - n
    for name, rec in header.items():
        if name == "__metadata__":
            continue
        ok = isinstance(rec, dict) and rec.get("dtype") in _ST_DTYPES
        shape, offs = (rec.get("shape"), rec.get("data_offsets")) if ok else (None, None)
        ok = ok and isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)
        ok = ok and isinstance(offs, list) and len(offs) == 2 and all(isinstance(o, int) for o in offs)
        if not ok:
            raise _refuse(path, f"tensor {name!r} has a malformed header record")
        numel = 1
        for d in shape:  # type: ignore[union-attr]
            numel *= d
        begin, end = offs  # type: ignore[misc]
        if not 0 <= begin <= end <= data or end - begin != numel * _ST_DTYPES[rec["dtype"]]:
            raise _refuse(
                path, f"tensor {name!r} claims bytes {begin}..{end} of {data} for shape {shape} (damaged or hostile)"
            )
    return header


def _flatten(obj: Any, path: str, prefix: str, out: dict[str, torch.Tensor]) -> None:
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
        return
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise _refuse(path, f"key {k!r} under {prefix or 'the top level'} is not a string")
            _flatten(v, path, f"{prefix}.{k}" if prefix else k, out)
        return
    where = f"at {prefix!r}" if prefix else "at the top level"
    raise _refuse(path, f"it holds a value of type {type(obj).__name__} {where}; only (nested) dicts of tensors import")


def state_dict_of(obj: Any, path: str) -> tuple[dict[str, torch.Tensor], str | None]:
    """The tensors of a loaded checkpoint, flattened with dots; the wrapper key when unwrapped."""
    if isinstance(obj, Mapping) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                out: dict[str, torch.Tensor] = {}
                _flatten(inner, path, "", out)
                return out, key
    if not isinstance(obj, Mapping):
        raise _refuse(path, f"it holds a {type(obj).__name__}, not a state_dict (save model.state_dict())")
    out = {}
    _flatten(obj, path, "", out)
    if not out:
        raise _refuse(path, "it holds no tensors")
    return out, None


def read_checkpoint(path: str) -> tuple[dict[str, torch.Tensor], str, str | None]:
    """(tensors, "safetensors" | "torch", the unwrapped key or None); refuses what is not a state_dict."""
    if path.endswith(".safetensors"):
        header = check_safetensors(path)
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            out = load_file(path, device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise _refuse(path, f"safetensors could not read it ({e})") from None
        if not out and len(header) <= 1:
            raise _refuse(path, "it holds no tensors")
        return dict(out), "safetensors", None
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:  # the legacy (pre-zip) format cannot be memory-mapped
            if "mmap" not in str(e):
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError, zip errors...
        msg = str(e)
        m = re.search(r"GLOBAL (\S+)", msg)  # torch names the global its weights-only unpickler refused
        if m:
            raise _refuse(
                path,
                f"loading it would run code ({m.group(1)}: a pickled class or whole model); "
                "save model.state_dict(), or convert it to .safetensors where you trust it",
            ) from None
        boiler = ("weights_only", "Weights only", "documentation", "trusted source", "PyTorch 2.6")
        detail = next((ln.strip() for ln in msg.splitlines() if ln.strip() and not any(b in ln for b in boiler)), "")
        first = type(e).__name__ + (f": {' '.join(detail.split())[:160]}" if detail else "")
        raise _refuse(
            path, f"torch.load(weights_only=True) cannot read it ({first}; damaged, or not a torch checkpoint)"
        ) from None
    out, key = state_dict_of(obj, path)
    return out, "torch", key


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class Imported:
    file: str
    entry: Entry | None  # None: this file's sha256 is already a version of the name (skipped)
    version: int | None
    format: str
    unwrapped: str | None
    logical_bytes: int
    new_bytes: int


@dataclass
class Report:
    name: str
    files: list[Imported] = field(default_factory=list)

    @property
    def logical_bytes(self) -> int:
        return sum(f.logical_bytes for f in self.files if f.entry is not None)

    @property
    def new_bytes(self) -> int:
        return sum(f.new_bytes for f in self.files if f.entry is not None)

    @property
    def dedup_ratio(self) -> float | None:
        """Bytes the imported checkpoints hold per byte written (None when nothing was written)."""
        return self.logical_bytes / self.new_bytes if self.new_bytes else None


def default_name(files: list[str]) -> str:
    """The name of the folder that holds the (first) checkpoint, when it is a valid model name."""
    folder = os.path.basename(os.path.dirname(os.path.abspath(files[0])))
    if NAME_RE.match(folder or ""):
        return folder
    raise InvalidInput(f"cannot name the model after the folder {folder!r}; give --name NAME")


def _imported_shas(repo: pygit2.Repository, name: str) -> set[str]:
    out: set[str] = set()
    try:
        vs = names.versions(repo, name)
    except RefNotFound:
        return out
    for v in vs:
        try:
            imp = v.entry.manifest.get("imported")
        except Exception:  # a version whose objects are not here or are damaged: not a duplicate
            continue
        if isinstance(imp, dict) and isinstance(imp.get("sha256"), str):
            out.add(imp["sha256"])
    return out


def import_checkpoints(
    repo: Any,
    paths: Iterable[str],
    *,
    name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    result: Any = None,
    commit: str | None = None,
    message: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Import every checkpoint of ``paths`` as a version of ``name``; checked in full before writing.

    ``repo`` is a path, a ``pygit2.Repository`` or None (the one around the cwd).
    ``progress(file)`` is called once per file as it is stored (the CLI's progress bar).
    """
    repo = open_repo_like(repo)
    files = checkpoint_files(paths)
    if not files:
        raise InvalidInput("give checkpoint files or a folder of them")
    name = name if name is not None else default_name(files)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidInput(f"model name {name!r} is invalid: use letters, digits, '.', '_' or '-' (at most 100)")
    clean_tags = logmod._json_value(dict(tags or {}), "tags")
    clean_result = None if result is None else logmod._number(result, "result")
    if commit is None:
        train = head_commit(repo)
    else:
        try:
            train = repo.revparse_single(commit).peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
            raise RefNotFound(f"--commit {commit!r} names no commit in this repository", ref=commit) from None
    shas = {f: file_sha256(f) for f in files}
    done = _imported_shas(repo, name)
    todo = [f for f in files if shas[f] not in done]
    for f in todo:  # every file checked before the first entry exists: a refusal leaves nothing behind
        tens, _, _ = read_checkpoint(f)
        for k, t in tens.items():
            tensors.check_loggable(t, k)
        del tens
    ensure_config(repo)
    sig = signature(repo)
    report = Report(name)
    for f in files:
        if f not in todo:
            report.files.append(Imported(f, None, None, "", None, 0, 0))
            if progress:
                progress(f)
            continue
        tens, kind, key = read_checkpoint(f)
        imported = {
            "from": "checkpoint",
            "file": os.path.basename(f),
            "sha256": shas[f],
            "format": kind,
            "weights": True,
            "state_dict_key": key,
        }
        note = f"imported from {os.path.basename(f)}" + (f" (its {key!r})" if key else "")
        now = _dt.datetime.now(_dt.timezone.utc).astimezone()
        p = logmod.Prepared(
            model=None,
            repo=repo,
            head=str(train.id),
            sig=sig,
            created=now.isoformat(timespec="microseconds"),
            tags=clean_tags,
            result=clean_result,
            metrics={},
            name=name,
            message=message if message is not None else note,
            optimizer=None,
            optimizer_values=None,
            scheduler=None,
            architecture=f"(not recorded: {note}; the code is not captured)\n",
            model_class="",
            n_params=sum(t.numel() for t in tens.values()),
            capture=live.Captured(),
            dirty=False,
            patch="",
            untracked=[],
            branch=None,
            imported=imported,
            commit_info=logmod.commit_info(train),  # re-attaches after a rebase, as logged entries do
        )
        with reclaim.writing(repo):
            weights = tensors.store_tensors(repo, tens)
            e = logmod.commit_entry(p, weights, None)
        logical = sum(int(r["nbytes"]) for r in weights[0].values())
        version = next((v.number for v in names.versions(repo, name) if v.entry.id == e.id), None)
        report.files.append(Imported(f, e, version, kind, key, logical, weights[2]))
        del tens
        if progress:
            progress(f)
    return report


__all__ = ["SUFFIXES", "Imported", "Report", "import_checkpoints", "natural_key", "read_checkpoint"]
