"""Logging: turn a model (and its optimizer, tags, results) into a registry entry.

An entry is a git commit with no parent whose tree holds the parts as blobs
(see docs/FORMAT.md). Everything is validated before anything is written;
weights go into one new pack; the entry becomes visible only when the line in
the training commit's note is written (one atomic ref update), so a process
killed at any point leaves no partial entry.
"""

from __future__ import annotations

import datetime as _dt
import math
import numbers
import os
import platform
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pygit2
import torch

from tvault_git import __version__
from tvault_git.api import distributed
from tvault_git.capture import compiled, live, values
from tvault_git.errors import CaptureWarning, InvalidInput, StorageError, TvaultError
from tvault_git.gitutil.repo import (
    ensure_config,
    head_commit,
    open_repo_like,
    repo_keyword,
    retry_object_writes,
    signature,
    writes_shared,
)
from tvault_git.gitutil.submodules import submodule_patches
from tvault_git.registry import names, notes, series
from tvault_git.registry.entries import Entry
from tvault_git.spec import format as fmt
from tvault_git.spec.format import (
    ARCHITECTURE,
    BLOB_DIR,
    CONFIGURATION,
    FORMAT_VERSION,
    MANIFEST,
    NAME_RE,
    OPTIMIZER,
    OPTIMIZER_STATE,
    PATCH,
    REF_PREFIX,
    SCHEDULER,
    SOURCE_DIR,
    SOURCE_INDEX,
    STEPS,
    WEIGHTS,
    dumps,
    manifest_problem,
)
from tvault_git.storage import packmerge, reclaim, tensors


def unwrap_model(model: Any) -> torch.nn.Module:
    """The real module behind DDP / DataParallel / torch.compile wrappers."""
    seen = 0
    while seen < 10:
        seen += 1
        if hasattr(model, "_orig_mod") and isinstance(model._orig_mod, torch.nn.Module):
            model = model._orig_mod
            continue
        if isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
            model = model.module
            continue
        inner = distributed.fsdp1_inner(model)
        if inner is not None:
            model = inner
            continue
        break
    if not isinstance(model, torch.nn.Module):
        raise InvalidInput(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return model


def _compile_record(model: Any) -> dict[str, Any] | None:
    """The options of the first ``torch.compile`` wrapper around ``model`` (through DDP and kin)."""
    for _ in range(10):
        rec = compiled.compile_options(model)
        if rec is not None:
            return rec
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, torch.nn.Module):
            return None
        model = inner
    return None


def tied_tensors(state_dict: Mapping[str, Any]) -> dict[str, str]:
    """Names whose tensor shares memory with an earlier one (``lm_head.weight`` -> ``transformer.wte.weight``).

    The same test as ``storage.tensors.store_tensors`` uses to hash them once: equal bytes alone
    (two zero-initialised biases) are not a tie.
    """
    first: dict[tuple, str] = {}
    out: dict[str, str] = {}
    for name, t in state_dict.items():
        if type(t) not in (torch.Tensor, torch.nn.Parameter):  # ShardedTensor, DTensor: no local storage to share
            continue
        try:
            if t.device.type == "meta" or t.layout != torch.strided or not t.numel():
                continue
            key = (
                t.device.type,
                t.untyped_storage().data_ptr(),
                t.storage_offset(),
                tuple(t.shape),
                t.stride(),
                t.dtype,
            )
        except (RuntimeError, NotImplementedError):
            continue
        if key in first:
            out[name] = first[key]
        else:
            first[key] = name
    return out


def _number(value: Any, what: str) -> float | int:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise InvalidInput(f"{what} must be a single number, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    elif hasattr(value, "item") and callable(value.item) and not isinstance(value, (str, bytes)):
        try:
            value = value.item()  # numpy scalars
        except (TypeError, ValueError):
            pass
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInput(f"{what} must be a number, got {type(value).__name__} {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    f = float(value)
    if not math.isfinite(f):
        raise InvalidInput(f"{what} is {f}; only finite numbers can be logged (check for a diverged run)")
    return f


def _json_value(value: Any, what: str) -> Any:
    """Tags keep their JSON type; anything JSON cannot say exactly is refused."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{what} is {value}; tags must be finite numbers, strings, booleans, lists or dicts")
        return value
    if isinstance(value, (list, tuple)):
        return [_json_value(v, f"{what}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidInput(f"{what} has a non-string key {k!r}; JSON keys must be strings")
            out[k] = _json_value(v, f"{what}.{k}")
        return out
    raise InvalidInput(
        f"{what} is a {type(value).__name__}, not a JSON value (use a number, string, bool, list or dict)"
    )


def _plain(value: Any) -> Any:
    """Optimizer/scheduler settings as readable JSON; exotic values become their repr."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return repr(value)


def _optimizer_record(opt: Any, model: torch.nn.Module) -> dict[str, Any]:
    if not isinstance(opt, torch.optim.Optimizer):
        raise InvalidInput(f"optimizer must be a torch.optim.Optimizer, got {type(opt).__name__}")
    names = {}
    for n, p in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), n)
    groups = []
    for g in opt.param_groups:
        rec = {k: _plain(v) for k, v in g.items() if k != "params"}
        rec["params"] = [names.get(id(p), f"<unnamed {tuple(p.shape)}>") for p in g["params"]]
        groups.append(rec)
    cls = type(opt)
    return {
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "defaults": _plain(dict(opt.defaults)),
        "param_groups": groups,
    }


def _optimizer_state(
    opt: torch.optim.Optimizer, record: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Split state into plain values and tensors named ``<param>.<key>``."""
    sd = opt.state_dict()
    flat_names = [n for g in record["param_groups"] for n in g["params"]]
    plain: dict[str, Any] = {}
    tens: dict[str, torch.Tensor] = {}
    for idx, st in sd["state"].items():
        pname = flat_names[idx] if isinstance(idx, int) and idx < len(flat_names) else str(idx)
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tens[f"{pname}.{k}"] = v
            else:
                plain.setdefault(pname, {})[k] = _plain(v)
    return plain, tens


def _scheduler_record(sched: Any) -> dict[str, Any]:
    if not hasattr(sched, "state_dict"):
        raise InvalidInput(f"scheduler must have a state_dict(), got {type(sched).__name__}")
    cls = type(sched)
    state = {k: _plain(v) for k, v in sched.state_dict().items() if not callable(v)}
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "state": state}


def _work_tree_state(
    repo: pygit2.Repository, head: pygit2.Commit, cap: live.Captured | None = None
) -> tuple[bool, str, list[str]]:
    """(dirty, patch against the training commit, untracked files).

    The patch holds tracked changes plus untracked files that hold captured
    model code (so commit + patch reproduces the code), and leaves out files
    that changed on disk after import (their later edits did not run).
    """
    if repo.is_bare:
        return False, "", []
    st = repo.status(untracked_files="normal", ignored=False)
    untracked = sorted(
        p for p, f in st.items() if f & pygit2.enums.FileStatus.WT_NEW and not f & pygit2.enums.FileStatus.INDEX_NEW
    )
    drifted = {d["file"] for d in cap.drift} if cap else set()
    code_files = {o["file"] for o in cap.objects} if cap else set()
    new_code = [p for p in untracked if p in code_files and p not in drifted]
    tracked_changed = any(
        f not in (pygit2.enums.FileStatus.CURRENT, pygit2.enums.FileStatus.IGNORED)
        and f != pygit2.enums.FileStatus.WT_NEW
        and p not in drifted
        for p, f in st.items()
    )
    if not tracked_changed and not new_code:
        return False, "", untracked
    parts = []
    if tracked_changed:
        diff = head.tree.diff_to_index(repo.index)
        diff.merge(repo.index.diff_to_workdir())
        for patch in diff:
            if patch.delta.new_file.path not in drifted and patch.delta.old_file.path not in drifted:
                parts.append(patch.text or "")
    for rel in new_code:
        with open(os.path.join(repo.workdir, rel), "rb") as f:
            parts.append(pygit2.Patch.create_from(None, f.read(), old_as_path=rel, new_as_path=rel).text or "")
    if tracked_changed:  # a dirty submodule is only "Subproject commit X-dirty" above: its own changes
        parts.append(submodule_patches(repo, drifted))
    patch_text = "".join(parts)
    return bool(patch_text), patch_text, untracked


def _committed_text(head: pygit2.Commit) -> Callable[[str], str | None]:
    """A file's text in the training commit (capture proves with it which code ran)."""

    def read(rel: str) -> str | None:
        try:
            obj = head.tree[rel]
        except (KeyError, ValueError):
            return None
        try:
            return obj.data.decode("utf-8") if isinstance(obj, pygit2.Blob) else None
        except UnicodeDecodeError:
            return None

    return read


def _blob(repo: pygit2.Repository, data: bytes | str) -> pygit2.Oid:
    return repo.create_blob(data.encode() if isinstance(data, str) else data)


def _source_tree(repo: pygit2.Repository, cap: live.Captured) -> tuple[pygit2.Oid | None, list[dict[str, Any]]]:
    index = []
    tb = repo.TreeBuilder()
    modules: dict[str, pygit2.TreeBuilder] = {}
    for obj in cap.objects:
        mod = obj["module"]
        fname = f"{obj['qualname']}.py"
        modules.setdefault(mod, repo.TreeBuilder()).insert(fname, _blob(repo, obj["text"]), pygit2.enums.FileMode.BLOB)
        rec = {k: v for k, v in obj.items() if k != "text"}
        rec["path"] = f"{SOURCE_DIR}/{mod}/{fname}"
        index.append(rec)
    for mod, sub in modules.items():
        tb.insert(mod, sub.write(), pygit2.enums.FileMode.TREE)
    return (tb.write() if modules else None), index


def commit_info(c: pygit2.Commit) -> dict[str, Any]:
    """What identifies the training commit after git rewrote it (amend, rebase) and pruned the old one:
    its tree, and the author email, author time and subject that a rebase keeps (FORMAT.md)."""
    return {
        "tree": str(c.tree_id),
        "author": c.author.email,
        "time": int(c.author.time),
        "subject": c.message.split("\n", 1)[0][:200],
    }


@dataclass
class Prepared:
    """Everything ``log_all`` settles before it touches the weights (validated, captured, on the caller's thread)."""

    model: torch.nn.Module | None  # None: weights from a checkpoint file (api/ckptimport.py)
    repo: pygit2.Repository
    head: str
    sig: pygit2.Signature
    created: str
    tags: Any
    result: float | int | None
    metrics: dict[str, float | int]
    name: str | None
    message: str | None
    optimizer: dict[str, Any] | None
    optimizer_values: dict[str, Any] | None
    scheduler: dict[str, Any] | None
    architecture: str
    model_class: str
    n_params: int
    capture: live.Captured
    dirty: bool
    patch: str
    untracked: list[str]
    branch: str | None
    steps: dict[str, Any] | None = None  # step-metric columns (registry.series) snapshotted at the call
    imported: dict[str, Any] | None = None  # the manifest's ``imported`` (1.1): weights from a file, no capture
    tied: dict[str, str] = field(default_factory=dict)  # state_dict name -> the first name sharing its memory
    compiled: dict[str, Any] | None = None  # torch.compile options (capture/compiled.py), None if not compiled
    commit_info: dict[str, Any] | None = None  # the training commit's tree, author, time, subject (re-attaching)


def prepare(
    model: Any,
    tags: Mapping[str, Any] | None = None,
    result: Any = None,
    optimizer: Any = None,
    *,
    metrics: Mapping[str, Any] | None = None,
    scheduler: Any = None,
    name: str | None = None,
    message: str | None = None,
    repo: str | os.PathLike | pygit2.Repository | None = None,
    save_optimizer_state: bool = False,
) -> tuple[Prepared, dict[str, Any], dict[str, torch.Tensor] | None]:
    """Validate and capture everything but the tensors; returns (prepared, state_dict, optimizer state tensors)."""
    wrapped, model = model, unwrap_model(model)
    if tags is None:
        tags = {}
    if not isinstance(tags, Mapping):
        raise InvalidInput(f"tags must be a dict, got {type(tags).__name__}")
    clean_tags = _json_value(dict(tags), "tags")
    clean_result = None if result is None else _number(result, "result")
    clean_metrics: dict[str, float | int] = {}
    if metrics is not None:
        if not isinstance(metrics, Mapping):
            raise InvalidInput(f"metrics must be a dict of numbers, got {type(metrics).__name__}")
        for k, v in metrics.items():
            if not isinstance(k, str) or not k:
                raise InvalidInput(f"metric name {k!r} must be a non-empty string")
            clean_metrics[k] = _number(v, f"metric {k!r}")
    if name is not None and (not isinstance(name, str) or not NAME_RE.match(name)):
        raise InvalidInput(f"model name {name!r} is invalid: use letters, digits, '.', '_' or '-' (at most 100)")
    if message is not None and not isinstance(message, str):
        raise InvalidInput("message must be a string")
    opt_rec = _optimizer_record(optimizer, model) if optimizer is not None else None
    sched_rec = _scheduler_record(scheduler) if scheduler is not None else None
    with distributed.fsdp1_sharded(wrapped) as fsdp1_root:  # FSDP1: ShardedTensor values, never gathered
        state_dict = (fsdp1_root or model).state_dict()
    opt_values, opt_tensors = None, None
    if save_optimizer_state and optimizer is not None:
        opt_values, opt_tensors = _optimizer_state(optimizer, opt_rec)

    r = open_repo_like(repo)
    head = head_commit(r)
    ensure_config(r)
    sig = signature(r)
    now = _dt.datetime.now(_dt.timezone.utc).astimezone()
    root = r.workdir or os.path.dirname(r.path.rstrip("/"))
    with distributed.plain_classes(model):  # FSDP wrappers and classes out of the way: the entry records the user's
        cap = live.capture_model(model, root, _committed_text(head))
        arch = repr(model) + "\n"
    dirty, patch, untracked = _work_tree_state(r, head, cap)
    prepared = Prepared(
        model=model,
        repo=r,
        head=str(head.id),
        sig=sig,
        created=now.isoformat(timespec="microseconds"),
        tags=clean_tags,
        result=clean_result,
        metrics=clean_metrics,
        name=name,
        message=message,
        optimizer=opt_rec,
        optimizer_values=opt_values,
        scheduler=sched_rec,
        architecture=arch,
        model_class=cap.model_class,
        n_params=distributed.count_parameters(model, state_dict),
        capture=cap,
        dirty=dirty,
        patch=patch,
        untracked=untracked,
        branch=None if r.head_is_detached else r.head.shorthand,
        steps=series.pending(),
        tied=tied_tensors(state_dict),
        compiled=_compile_record(wrapped),
        commit_info=commit_info(head),
    )
    return prepared, state_dict, opt_tensors


Stored = tuple[dict[str, dict], list[str], int]  # tensor records in order, blob ids, new bytes


def commit_entry(p: Prepared, weights: Stored, opt_state: Stored | None) -> Entry:
    """Write the entry's tree and commit around stored tensors, then publish it (ref, then note line)."""
    r = p.repo
    w_records, blob_ids, new_bytes = weights
    opt_state_doc = None
    if opt_state is not None:
        s_records, s_ids, s_new = opt_state
        blob_ids = sorted(set(blob_ids) | set(s_ids))
        new_bytes += s_new
        opt_state_doc = {"chunk_bytes": fmt.CHUNK_BYTES, "tensors": s_records, "values": p.optimizer_values or {}}
    steps_doc = None
    if p.steps is not None:  # learning curves from tvault.log_metrics, as they were at the call
        dt = {"q": torch.int64, "f": torch.float32}
        col_t = {k: torch.frombuffer(bytearray(a.tobytes()), dtype=dt[a.typecode]) for k, a in p.steps.items()}
        c_records, c_ids, c_new = tensors.store_tensors(r, col_t, "step metrics")
        blob_ids = sorted(set(blob_ids) | set(c_ids))
        new_bytes += c_new
        steps_doc = {"chunk_bytes": fmt.CHUNK_BYTES, "tensors": c_records}
    src_tree, src_index = _source_tree(r, p.capture)
    manifest = {
        "format": FORMAT_VERSION,
        "kind": "tvault-entry",
        "created": p.created,
        "author": {"name": p.sig.name, "email": p.sig.email},
        "commit": p.head,
        "commit_info": p.commit_info,
        "branch": p.branch,
        "dirty": p.dirty,
        "untracked": p.untracked[:200],
        "name": p.name,
        "message": p.message,
        "tags": p.tags,
        "result": p.result,
        "metrics": p.metrics,
        "missing": p.capture.missing,
        "drift": p.capture.drift,
        "config": values.searchable(p.capture.configuration),
        "model": {
            "class": p.model_class,
            "parameters": p.n_params,
            "tensors": len(w_records),
            "bytes": sum(rec["nbytes"] for rec in w_records.values()),
            **({"tied": p.tied} if p.tied else {}),
            **({"compiled": p.compiled} if p.compiled is not None else {}),
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "tvault_git": __version__,
            "pygit2": pygit2.__version__,
        },
    }
    if p.imported is not None:
        manifest["imported"] = p.imported
    why = manifest_problem(manifest)  # the rule every reader applies: never write an entry readers refuse
    if why is not None:
        raise InvalidInput(f"cannot log this entry: {why}")

    def build() -> str:  # content-addressed writes only: safe to run again (retry_object_writes)
        tb = r.TreeBuilder()
        tb.insert(MANIFEST, _blob(r, dumps(manifest)), pygit2.enums.FileMode.BLOB)
        tb.insert(ARCHITECTURE, _blob(r, p.architecture), pygit2.enums.FileMode.BLOB)
        tb.insert(
            WEIGHTS,
            _blob(r, dumps({"chunk_bytes": fmt.CHUNK_BYTES, "tensors": w_records}, ordered=True)),
            pygit2.enums.FileMode.BLOB,
        )
        tb.insert(
            SOURCE_INDEX,
            _blob(r, dumps({"objects": src_index, "external": p.capture.external, "missing": p.capture.missing})),
            pygit2.enums.FileMode.BLOB,
        )
        tb.insert(CONFIGURATION, _blob(r, dumps(p.capture.configuration)), pygit2.enums.FileMode.BLOB)
        if src_tree is not None:
            tb.insert(SOURCE_DIR, src_tree, pygit2.enums.FileMode.TREE)
        if p.optimizer is not None:
            tb.insert(OPTIMIZER, _blob(r, dumps(p.optimizer)), pygit2.enums.FileMode.BLOB)
        if opt_state_doc is not None:
            tb.insert(OPTIMIZER_STATE, _blob(r, dumps(opt_state_doc, ordered=True)), pygit2.enums.FileMode.BLOB)
        if steps_doc is not None:
            tb.insert(STEPS, _blob(r, dumps(steps_doc, ordered=True)), pygit2.enums.FileMode.BLOB)
        if p.scheduler is not None:
            tb.insert(SCHEDULER, _blob(r, dumps(p.scheduler)), pygit2.enums.FileMode.BLOB)
        if p.dirty:
            tb.insert(PATCH, _blob(r, p.patch), pygit2.enums.FileMode.BLOB)
        bt = r.TreeBuilder()
        for oid in blob_ids:
            bt.insert(oid, pygit2.Oid(hex=oid), pygit2.enums.FileMode.BLOB)
        tb.insert(BLOB_DIR, bt.write(), pygit2.enums.FileMode.TREE)
        tree = tb.write()
        title = f"tvault: {p.name or p.model_class.rsplit('.', 1)[-1]}"
        if p.result is not None:
            title += f" result={p.result}"
        body = f"{title}\n\ntrained on {p.head}{' (dirty)' if p.dirty else ''}\n"
        if p.message:
            body += f"\n{p.message}\n"
        return str(r.create_commit(None, p.sig, p.sig, body, tree, []))

    try:
        entry_id = retry_object_writes(build)

        # Publish: the ref keeps the objects alive, the note line makes it visible.
        r.references.create(REF_PREFIX + entry_id, pygit2.Oid(hex=entry_id), force=True)
        res_txt = None if p.result is None else repr(p.result)

        def shown(tree: pygit2.Tree | None) -> str:  # under the notes update: the version readers will compute
            label = p.model_class.rsplit(".", 1)[-1]
            if p.name is not None:
                label = f"{p.name}@{names.next_version(r, p.name, tree) if tree is not None else 1}"
            return notes.display_text(label, res_txt, entry_id)

        try:
            index = notes.add(r, p.head, entry_id, p.name, res_txt, created=p.created, display=shown, stamp=True)
        except TvaultError:  # refused (the note is full): no entry ref without its line (an orphan)
            _drop_ref(r, REF_PREFIX + entry_id)
            raise
    except (OSError, pygit2.GitError) as e:  # disk full or read-only outside the weight write
        raise StorageError(f"could not record the entry: {e}; nothing is indexed (free space and retry)") from None
    # Housekeeping: many small weight packs slow every object lookup down.
    # Warnings name the user's line: commit_entry <- log_all <- its shared-umask wrapper <- the caller.
    try:
        packmerge.maybe_merge(r)
    except OSError as e:  # the entry is logged; merging can wait for the next call
        warnings.warn(f"tvault: could not merge weight packs ({e}); the entry is logged", stacklevel=4)
    gaps = live.capture_gaps(p.capture.missing, p.capture.drift)
    if gaps:
        warnings.warn(f"tvault: entry {entry_id[:10]}: {gaps}", CaptureWarning, stacklevel=4)
    return Entry(entry_id, p.head, index, p.name, res_txt, new_bytes, _repo=r, _manifest=manifest)


def _drop_ref(r: pygit2.Repository, name: str) -> None:
    try:
        ref = r.references.get(name)
        if ref is not None:
            ref.delete()
    except pygit2.GitError:
        pass  # left as an orphan: git tvault orphans lists it


@writes_shared(repo_keyword)
def log_all(
    model: Any,
    tags: Mapping[str, Any] | None = None,
    result: Any = None,
    optimizer: Any = None,
    *,
    metrics: Mapping[str, Any] | None = None,
    scheduler: Any = None,
    name: str | None = None,
    message: str | None = None,
    repo: str | os.PathLike | pygit2.Repository | None = None,
    save_optimizer_state: bool = False,
    background: bool = False,
    snapshot: str = "copy",
    collective: bool | None = None,
    writer_rank: int = 0,
) -> Any:
    """Log ``model`` as a new registry entry on the current commit; returns the entry.

    ``result`` is the primary number (what ``find --min/--max`` filters on),
    ``metrics`` any further named numbers, ``tags`` any JSON values.

    Under ``torch.distributed`` (a process group of more than one rank) every
    rank must call it: one entry is written, by ``writer_rank``, each rank's
    shards of FSDP/DTensor weights by that rank, and every rank gets the same
    ``Entry`` back. ``collective=False`` logs from this process alone (code
    already guarded by ``if rank == 0``).

    ``background=True`` returns a ``PendingEntry`` once the tensors are copied
    (``snapshot="copy"``) or at once (``snapshot="view"``: you promise not to
    change the weights until it is done); hashing and writing run in a thread.
    """
    args = dict(
        metrics=metrics,
        scheduler=scheduler,
        name=name,
        message=message,
        repo=repo,
        save_optimizer_state=save_optimizer_state,
    )
    if snapshot not in ("copy", "view"):
        raise InvalidInput(f"snapshot must be 'copy' or 'view', got {snapshot!r}")
    if distributed.active(collective):
        return distributed.log_all(model, tags, result, optimizer, args, writer_rank, background, snapshot)
    if background:
        from tvault_git.api import background as bg

        return bg.submit(model, tags, result, optimizer, args, snapshot)
    p, state_dict, opt_tensors = prepare(model, tags, result, optimizer, **args)
    if distributed.is_sharded(state_dict):
        raise InvalidInput(
            "the weights are sharded (FSDP / DTensor): call log_all on every rank, without collective=False"
        )
    with reclaim.writing(p.repo):  # no space reclaim between "this blob is stored" and the entry's ref
        weights = tensors.store_tensors(p.repo, state_dict)
        opt_state = tensors.store_tensors(p.repo, opt_tensors, "optimizer state") if opt_tensors is not None else None
        return commit_entry(p, weights, opt_state)
