"""``diff``: what changed between two entries (or an entry and the work tree).

Only what affects the model: architecture, captured source, weights,
optimizer, tags/metrics, and the training commits in between restricted to
files that hold model code. Weights are compared tensor by tensor: tensors
with the same blob ids are counted unchanged without being read, and only two
tensors are in memory at a time. Torch is imported only when tensor values
must be compared.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pygit2

from tvault_git.diff import config
from tvault_git.diff.sums import DiffSums
from tvault_git.errors import InvalidInput, RefNotFound, TvaultError
from tvault_git.gitutil.repo import open_repo_like
from tvault_git.registry import entries
from tvault_git.spec.format import (
    ARCHITECTURE,
    CHUNK_BYTES,
    CONFIGURATION,
    OPTIMIZER,
    PATCH,
    SCHEDULER,
    SOURCE_INDEX,
    WEIGHTS,
)
from tvault_git.spec.values import as_number

SECTIONS = ("architecture", "configuration", "classes", "functions", "weights", "optimizer", "metadata", "context")
TITLES = {
    "architecture": "Architecture",
    "configuration": "Configuration",
    "classes": "Model class source",
    "functions": "Functions and other code",
    "weights": "Weights",
    "optimizer": "Optimizer and scheduler",
    "metadata": "Tags, result and metrics",
    "context": "Training code context",
}
ALIASES = {
    "arch": "architecture",
    "config": "configuration",
    "values": "configuration",
    "class": "classes",
    "source": "classes",
    "function": "functions",
    "code": "functions",
    "weight": "weights",
    "tensors": "weights",
    "scheduler": "optimizer",
    "optim": "optimizer",
    "tags": "metadata",
    "metrics": "metadata",
    "result": "metadata",
    "commits": "context",
    "git": "context",
}
MAX_COMMITS = 200


def section_name(s: str) -> str:
    key = ALIASES.get(s.lower(), s.lower())
    if key not in SECTIONS:
        raise InvalidInput(f"unknown section {s!r}: choose from {', '.join(SECTIONS)}")
    return key


@dataclass
class Side:
    """One side of a diff: an entry, or the work tree (``entry`` is None)."""

    label: str
    commit: str | None
    entry: entries.Entry | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    objects: list[dict[str, Any]] = field(default_factory=list)
    architecture: str | None = None
    weights: dict[str, Any] | None = None
    chunk_bytes: int = CHUNK_BYTES  # the weights table's own (spec/tables.py)
    optimizer: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    configuration: dict[str, Any] | None = None
    version: int | None = None  # the N of NAME@N
    external: list[dict[str, Any]] = field(default_factory=list)  # source.json's installed / sibling-repo code

    def describe(self) -> dict[str, Any]:
        if self.entry is None:
            return {"kind": "worktree", "label": self.label, "commit": self.commit}
        m = self.manifest
        return {
            "kind": "entry",
            "label": self.label,
            "id": self.entry.id,
            "ref": self.entry.ref,
            "commit": self.commit,
            "index": self.entry.index,
            "name": m.get("name"),
            "version": self.version,
            "message": m.get("message"),
            "result": m.get("result"),
            "created": m.get("created"),
            "dirty": bool(m.get("dirty")),
        }


def _version(repo: pygit2.Repository, e: entries.Entry) -> int | None:
    from tvault_git.registry import names

    name = e.manifest.get("name")
    if not isinstance(name, str) or not name:
        return None
    try:
        return next((v.number for v in names.versions(repo, name) if v.entry.id == e.id), None)
    except RefNotFound:
        return None


def _entry_side(repo: pygit2.Repository, ref: str) -> Side:
    e = entries.resolve(repo, ref)
    tree = e.tree()
    src = entries.read_json(repo, e.id, SOURCE_INDEX) or {}
    objs = []
    for o in src.get("objects") or []:
        text = entries.read_blob(repo, tree, o.get("path", "")) or b""
        objs.append({**o, "text": text.decode("utf-8", "replace")})
    arch = entries.read_blob(repo, tree, ARCHITECTURE)
    w = entries.tensor_table(repo, e.id, WEIGHTS)
    return Side(
        label=f"{e.short} ({e.ref})",
        commit=e.commit,
        entry=e,
        manifest=e.manifest,
        objects=objs,
        architecture=None if arch is None else arch.decode("utf-8", "replace"),
        weights=w.tensors,
        chunk_bytes=w.chunk_bytes,
        optimizer=entries.read_json(repo, e.id, OPTIMIZER),
        scheduler=entries.read_json(repo, e.id, SCHEDULER),
        configuration=entries.read_json(repo, e.id, CONFIGURATION),
        version=_version(repo, e),
        external=[x for x in src.get("external") or [] if isinstance(x, dict)],
    )


def _worktree_side(repo: pygit2.Repository, a: Side) -> Side:
    from tvault_git.capture import static

    if repo.is_bare or not repo.workdir:
        raise InvalidInput("comparing with the work tree needs a repository with a work tree; give two entry refs")
    head = None if repo.head_is_unborn else str(repo.head.peel(pygit2.Commit).id)
    objs = static.current_objects(repo.workdir, a.objects, {})
    return Side(label="work tree", commit=head, objects=objs)


# -- sections --------------------------------------------------------------


_HUNK = re.compile(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@")


def _udiff(a: str, b: str, name_a: str, name_b: str, line_a: int = 1, line_b: int = 1) -> list[str]:
    """A unified diff; hunk line numbers count from the file (``line_*``: where each text starts)."""
    out = [ln.rstrip("\n") for ln in difflib.unified_diff(a.splitlines(True), b.splitlines(True), name_a, name_b, n=3)]
    if line_a == line_b == 1:
        return out

    def shift(m: re.Match[str]) -> str:
        na, nb = int(m.group(1)), int(m.group(3))
        na = na + line_a - 1 if na else 0
        nb = nb + line_b - 1 if nb else 0
        return f"@@ -{na}{m.group(2) or ''} +{nb}{m.group(4) or ''} @@"

    return [_HUNK.sub(shift, ln) if ln.startswith("@@") else ln for ln in out]


def _start(o: dict[str, Any]) -> int:
    line = o.get("line")
    return line if isinstance(line, int) and line > 0 and not str(o.get("file", "")).startswith("<") else 1


def _count(lines: list[str]) -> tuple[int, int]:
    plus = sum(1 for ln in lines if ln.startswith("+") and not ln.startswith("+++"))
    minus = sum(1 for ln in lines if ln.startswith("-") and not ln.startswith("---"))
    return plus, minus


def _architecture(a: Side, b: Side) -> dict[str, Any]:
    if a.architecture is None or b.architecture is None:
        return {"summary": "not available for the work tree (no trained model)", "changed": False, "available": False}
    lines = _udiff(a.architecture, b.architecture, f"a/{ARCHITECTURE}", f"b/{ARCHITECTURE}")
    if not lines:
        return {"summary": "identical", "changed": False, "diff": []}
    plus, minus = _count(lines)
    return {"summary": f"{plus} line(s) added, {minus} removed in repr(model)", "changed": True, "diff": lines}


def _source(a: Side, b: Side, kinds: tuple[str, ...], noun: str) -> dict[str, Any]:
    """Per-object diffs; a definition found under the same name in another file is 'moved'."""
    ao = [o for o in a.objects if o.get("kind") in kinds]
    bo = [o for o in b.objects if o.get("kind") in kinds]
    key = lambda o: (o.get("kind"), o.get("module"), o.get("qualname"))  # noqa: E731
    bmap = {key(o): o for o in bo}
    items: list[dict[str, Any]] = []
    rest_a = []
    for o in ao:
        other = bmap.pop(key(o), None)
        if other is None:
            rest_a.append(o)
        else:
            items.append(_pair(o, other))
    by_name: dict[tuple, list[dict[str, Any]]] = {}
    for o in bmap.values():
        by_name.setdefault((o.get("kind"), o.get("qualname")), []).append(o)
    for o in rest_a:
        cands = by_name.get((o.get("kind"), o.get("qualname"))) or []
        if len(cands) == 1:
            other = cands.pop()
            bmap.pop(key(other), None)
            items.append(_pair(o, other))
        else:
            items.append(
                {
                    "status": "removed",
                    "kind": o.get("kind"),
                    "name": f"{o.get('module')}.{o.get('qualname')}",
                    "file_a": o.get("file"),
                    "file_b": None,
                    "diff": _udiff(o.get("text", ""), "", f"a/{o.get('file')}", "/dev/null", _start(o)),
                }
            )
    for o in bmap.values():
        items.append(
            {
                "status": "added",
                "kind": o.get("kind"),
                "name": f"{o.get('module')}.{o.get('qualname')}",
                "file_a": None,
                "file_b": o.get("file"),
                "diff": _udiff("", o.get("text", ""), "/dev/null", f"b/{o.get('file')}", 1, _start(o)),
            }
        )
    items = _renames(items, ao, bo)
    counts: dict[str, int] = {}
    for it in items:
        counts[it["status"]] = counts.get(it["status"], 0) + 1
    changed = [it for it in items if it["status"] != "unchanged"]
    order = ("modified", "renamed", "moved", "added", "removed")
    if not changed:
        summary = f"no changes ({counts.get('unchanged', 0)} {noun} unchanged)"
    else:
        parts = []
        for st in order:
            names = [it["name"].rsplit(".", 1)[-1] for it in changed if it["status"] == st]
            if names:
                parts.append(
                    f"{st} " + ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
                )
        summary = "; ".join(parts)
        if counts.get("unchanged"):
            summary += f" ({counts['unchanged']} unchanged)"
    status_rank = {s: i for i, s in enumerate(order + ("unchanged",))}
    items.sort(key=lambda it: (status_rank[it["status"]], it["name"]))
    return {"summary": summary, "changed": bool(changed), "counts": counts, "items": items}


RENAME_SIMILARITY = 0.5  # as git's default -M50%


def _renames(items: list[dict[str, Any]], ao: list[dict[str, Any]], bo: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A removed and an added definition of the same kind with similar text are one renamed definition."""
    removed = [it for it in items if it["status"] == "removed"]
    added = [it for it in items if it["status"] == "added"]
    if not removed or not added:
        return items
    by_name = {f"{o.get('module')}.{o.get('qualname')}": o for o in ao}
    by_name_b = {f"{o.get('module')}.{o.get('qualname')}": o for o in bo}
    scored = []
    for r in removed:
        ra = by_name[r["name"]]
        for ad in added:
            ob = by_name_b[ad["name"]]
            if ad["kind"] != r["kind"]:
                continue
            ta = ra.get("text", "").replace(str(ra.get("qualname")).rsplit(".", 1)[-1], "\0")
            tb = ob.get("text", "").replace(str(ob.get("qualname")).rsplit(".", 1)[-1], "\0")
            ratio = difflib.SequenceMatcher(None, ta, tb, autojunk=False).ratio()
            if ratio >= RENAME_SIMILARITY:
                scored.append((ratio, r["name"], ad["name"]))
    used: set[str] = set()
    renamed: list[dict[str, Any]] = []
    for ratio, ra_name, ad_name in sorted(scored, reverse=True):
        if ra_name in used or ad_name in used:
            continue
        used |= {ra_name, ad_name}
        it = _pair(by_name[ra_name], by_name_b[ad_name])
        it.update(status="renamed", similarity=round(ratio, 3), modified=bool(it["diff"]))
        it["from"] = f"{ra_name} ({by_name[ra_name].get('file')})"
        it["to"] = f"{ad_name} ({by_name_b[ad_name].get('file')})"
        renamed.append(it)
    keep = [it for it in items if not (it["status"] in ("removed", "added") and it["name"] in used)]
    return keep + renamed


def _pair(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    fa, fb = a.get("file"), b.get("file")
    moved = fa != fb or a.get("module") != b.get("module")
    lines = _udiff(a.get("text", ""), b.get("text", ""), f"a/{fa}", f"b/{fb}", _start(a), _start(b))
    status = "moved" if moved else ("modified" if lines else "unchanged")
    it = {
        "status": status,
        "kind": a.get("kind"),
        "name": f"{b.get('module')}.{b.get('qualname')}",
        "file_a": fa,
        "file_b": fb,
        "diff": lines,
    }
    if moved:
        it["from"] = f"{a.get('module')}.{a.get('qualname')} ({fa})"
        it["to"] = f"{b.get('module')}.{b.get('qualname')} ({fb})"
        it["modified"] = bool(lines)
    return it


_num = as_number


class _Stats(DiffSums):
    """Streaming L2 of the difference, ||a-b||/||a||, max |a-b|, cosine, over chunk blocks.

    float32 math for float32 and narrower dtypes, float64 for float64 and
    integers; sums are carried in Python floats (double) across blocks.
    """

    def __init__(self, scratch: Any = None) -> None:
        super().__init__()
        self.scratch = scratch  # reused for a - b: no fresh 32 MB allocation per chunk

    def add(self, a: Any, b: Any | None) -> None:
        import torch

        if a.is_complex():
            a = torch.view_as_real(a).reshape(-1)
            b = None if b is None else torch.view_as_real(b).reshape(-1)
        wide = a.dtype == torch.float64 or not a.is_floating_point()
        if wide or a.dtype != torch.float32:
            a = a.to(torch.float64 if wide else torch.float32)
            b = None if b is None else b.to(a.dtype)
        self.numel += a.numel()
        na = float(torch.linalg.vector_norm(a)) if a.numel() else 0.0
        self.na2 += na * na
        if b is None:  # same blob on both sides: no difference, |b| = |a|, a.b = |a|^2
            self.nb2 += na * na
            self.ab += na * na
            return
        nb = float(torch.linalg.vector_norm(b)) if b.numel() else 0.0
        self.nb2 += nb * nb
        if not a.numel():
            return
        self.ab += float(torch.dot(a, b))
        if self.scratch is None or self.scratch.dtype != a.dtype or self.scratch.numel() < a.numel():
            self.scratch = torch.empty(a.numel(), dtype=a.dtype)
        d = torch.sub(a, b, out=self.scratch[: a.numel()])
        l2 = float(torch.linalg.vector_norm(d))
        self.l2sq += l2 * l2
        lo, hi = torch.aminmax(d)  # one pass; a max-norm of d is several times slower
        self.max_abs = max(self.max_abs, -float(lo), float(hi))
        self.changed += int(torch.count_nonzero(d))


def _numpy_usable(items: list[tuple[str, Any, Any]]) -> bool:
    from tvault_git.diff import weights_np

    return weights_np.usable(items)


def _weights(repo: pygit2.Repository, a: Side, b: Side) -> dict[str, Any]:
    if a.weights is None or b.weights is None:
        return {"summary": "not available for the work tree (no trained weights)", "changed": False, "available": False}
    wa, wb = a.weights, b.weights
    items: list[dict[str, Any]] = []
    to_read: list[tuple[str, Any, Any]] = []
    unchanged = 0
    unread = ""
    for name, ra in wa.items():
        rb = wb.get(name)
        if rb is None:
            items.append({"name": name, "status": "removed", "shape_a": ra.get("shape"), "dtype_a": ra.get("dtype")})
            continue
        if (
            ra.get("chunks") == rb.get("chunks")
            and ra.get("shape") == rb.get("shape")
            and ra.get("dtype") == rb.get("dtype")
        ):
            unchanged += 1  # same blob ids: same bytes, nothing to read
            continue
        base = {
            "name": name,
            "shape_a": ra.get("shape"),
            "shape_b": rb.get("shape"),
            "dtype_a": ra.get("dtype"),
            "dtype_b": rb.get("dtype"),
        }
        if ra.get("shape") != rb.get("shape"):
            items.append({**base, "status": "shape"})
        elif ra.get("dtype") != rb.get("dtype"):
            items.append({**base, "status": "dtype"})
        else:
            to_read.append((name, ra, rb))
            items.append(base)
    if to_read:  # values of every changed tensor, streamed chunk by chunk in one pipeline
        pos = {it["name"]: it for it in items if "status" not in it}
        where = (f"entry {a.entry.short}", f"entry {b.entry.short}")  # type: ignore[union-attr]
        from tvault_git.storage.packread import check_stored  # torch-free: object headers only

        try:
            check_stored(repo, [(n, ra) for n, ra, _ in to_read], where[0], None, a.chunk_bytes)
            check_stored(repo, [(n, rb) for n, _, rb in to_read], where[1], None, b.chunk_bytes)
        except TvaultError as e:  # e.g. 1 TB declared from one repeated chunk: not worth 8 hours of reading
            for it in pos.values():
                it.update(status="unread")
            to_read = []
            unread = str(e)
        from tvault_git.diff import weights_py

        same_chunks = a.chunk_bytes == b.chunk_bytes
        if same_chunks and weights_py.usable(to_read):  # a few KB changed: no numpy import either
            stream: Any = weights_py.stream_pairs(repo, to_read, *where, chunk_bytes=a.chunk_bytes)
            new_stats: Any = weights_py.Stats
        elif "torch" not in sys.modules and same_chunks and _numpy_usable(to_read):  # no 1.8 s torch import
            from tvault_git.diff import weights_np  # numpy: only when many tensor values are compared

            stream = weights_np.stream_pairs(repo, to_read, *where, chunk_bytes=a.chunk_bytes)
            new_stats = weights_np.Stats
        else:
            from tvault_git.storage import tensors

            stream = tensors.stream_pairs(repo, to_read, *where, chunk_a=a.chunk_bytes, chunk_b=b.chunk_bytes)
            new_stats = _Stats
        acc = new_stats()
        for name, ta, tb, last in stream:
            acc.add(ta, tb)
            if last:
                stats = acc.result()
                # e.g. -0.0 vs 0.0: different bytes, equal values
                pos[name].update(status="bits" if stats["changed_values"] == 0 else "values", **stats)
                acc = _Stats(acc.scratch) if new_stats is _Stats else new_stats()
    for name, rb in wb.items():
        if name not in wa:
            items.append({"name": name, "status": "added", "shape_b": rb.get("shape"), "dtype_b": rb.get("dtype")})
    counts: dict[str, int] = {}
    for it in items:
        counts[it["status"]] = counts.get(it["status"], 0) + 1
    if not items:
        summary = f"identical ({unchanged} tensors, same blobs)"
    else:
        words = {
            "values": "with changed values",
            "shape": "with a new shape",
            "dtype": "with a new dtype",
            "added": "added",
            "removed": "removed",
            "bits": "with equal values but different bits",
            "unread": "not compared",
        }
        summary = (
            ", ".join(
                f"{counts[k]} tensor{'s' if counts[k] > 1 else ''} {w}" for k, w in words.items() if counts.get(k)
            )
            + f"; {unchanged} unchanged"
            + (f" ({unread})" if unread else "")
        )
    out = {"summary": summary, "changed": bool(items), "unchanged": unchanged, "counts": counts, "items": items}
    out["overview"] = _weights_overview(a, b, items, unchanged)
    tied = out["overview"]["tied"]
    by_name = {it["name"]: it for it in items}
    for t in tied:
        if t["name"] in by_name:
            by_name[t["name"]]["tied_to"] = t["to"]
    if tied and items:
        out["summary"] += "; " + ", ".join(f"{t['name']} = {t['to']} (tied{t['note']})" for t in tied[:3])
        out["summary"] += f" and {len(tied) - 3} more tied" if len(tied) > 3 else ""
    return out


TOP_TENSORS = 5  # the largest relative changes the summary names
GROUP_OVER = 20  # longer lists of changed tensors are shown grouped by module prefix
_CHANGED = ("values", "bits", "shape", "dtype", "unread")


def module_prefix(name: str) -> str:
    """The module a tensor belongs to, for grouping: up to the first layer index (``features.3.*``),
    else its parent module (``lm_head.*``)."""
    parts = name.split(".")
    for i, p in enumerate(parts[:-1]):
        if p.isdigit():
            return ".".join(parts[: i + 1]) + ".*"
    return (".".join(parts[:-1]) + ".*") if len(parts) > 1 else name


def _ties(s: Side) -> dict[str, str]:
    t = (s.manifest.get("model") or {}).get("tied") if isinstance(s.manifest.get("model"), dict) else None
    return {k: v for k, v in t.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(t, dict) else {}


def _weights_overview(a: Side, b: Side, items: list[dict[str, Any]], unchanged: int) -> dict[str, Any]:
    """Counts and bytes per kind of change, the top tensors by ||a-b||/||a||, groups by module prefix, ties."""
    wa, wb = a.weights or {}, b.weights or {}

    def nbytes(rec: Any) -> int:
        n = rec.get("nbytes") if isinstance(rec, dict) else None
        return n if isinstance(n, int) and not isinstance(n, bool) else 0

    kinds = {"changed": [0, 0], "unchanged": [unchanged, 0], "added": [0, 0], "removed": [0, 0]}
    listed = {it["name"] for it in items}
    kinds["unchanged"][1] = sum(nbytes(r) for n, r in wb.items() if n in wa and n not in listed)
    groups: dict[str, dict[str, Any]] = {}
    for it in items:
        st = it["status"]
        kind = "changed" if st in _CHANGED else st
        size = nbytes(wa.get(it["name"]) if st == "removed" else wb.get(it["name"]))
        kinds[kind][0] += 1
        kinds[kind][1] += size
        g = groups.setdefault(module_prefix(it["name"]), {"prefix": module_prefix(it["name"]), "counts": {}})
        g["counts"][kind] = g["counts"].get(kind, 0) + 1
        rel = it.get("relative")
        if isinstance(rel, (int, float)) and rel > g.get("max_relative", -1.0):
            g["max_relative"] = rel
    ranked = [it for it in items if it["status"] == "values" and isinstance(it.get("relative"), (int, float))]
    ranked.sort(key=lambda it: -it["relative"])
    ta, tb = _ties(a), _ties(b)
    tied = []
    for name in sorted(set(ta) | set(tb)):
        to_a, to_b = ta.get(name), tb.get(name)
        if to_a == to_b or to_b is not None:
            note = "" if to_a == to_b else (" in b only" if to_a is None else f" in b; in a to {to_a}")
            tied.append({"name": name, "to": to_b, "note": note, "in_a": to_a is not None, "in_b": True})
        else:
            tied.append({"name": name, "to": to_a, "note": " in a only", "in_a": True, "in_b": False})
    return {
        "counts": {k: v[0] for k, v in kinds.items()},
        "bytes": {k: v[1] for k, v in kinds.items()},
        "top": [{"name": it["name"], "relative": it["relative"]} for it in ranked[:TOP_TENSORS]],
        "grouped": len(items) > GROUP_OVER,
        "groups": list(groups.values()),
        "tied": tied,
    }


def _dict_changes(a: dict[str, Any] | None, b: dict[str, Any] | None, skip: Iterable[str] = ()) -> list[dict[str, Any]]:
    a, b = a or {}, b or {}
    out = []
    for k in sorted(set(a) | set(b)):
        if k in skip:
            continue
        if a.get(k, _MISSING) != b.get(k, _MISSING) or (k in a) != (k in b):
            out.append({"key": k, "a": a.get(k), "b": b.get(k), "in_a": k in a, "in_b": k in b})
    return out


_MISSING = object()


def _optimizer(a: Side, b: Side) -> dict[str, Any]:
    if b.entry is None:
        return {"summary": "not available for the work tree", "changed": False, "available": False}
    out: dict[str, Any] = {"optimizer": None, "scheduler": None}
    notes: list[str] = []
    oa, ob = a.optimizer, b.optimizer
    if oa or ob:
        o: dict[str, Any] = {"class_a": (oa or {}).get("class"), "class_b": (ob or {}).get("class"), "groups": []}
        if o["class_a"] != o["class_b"]:
            notes.append(f"optimizer {_short(o['class_a'])} -> {_short(o['class_b'])}")
        ga, gb = (oa or {}).get("param_groups") or [], (ob or {}).get("param_groups") or []
        for i in range(max(len(ga), len(gb))):
            x = ga[i] if i < len(ga) else None
            y = gb[i] if i < len(gb) else None
            ch = _dict_changes(x, y, skip=("params",))
            pa, pb = (x or {}).get("params") or [], (y or {}).get("params") or []
            params = None
            if pa != pb:
                params = {"added": [p for p in pb if p not in pa], "removed": [p for p in pa if p not in pb]}
            if x is None or y is None or ch or params:
                o["groups"].append(
                    {
                        "group": i,
                        "status": "added" if x is None else "removed" if y is None else "changed",
                        "changes": ch,
                        "params": params,
                    }
                )
                for c in ch[:3]:
                    notes.append(f"{c['key']} {_fmt(c['a'])} -> {_fmt(c['b'])} (group {i})")
                if x is None or y is None:
                    notes.append(f"param group {i} {'added' if x is None else 'removed'}")
                elif params:
                    notes.append(f"group {i} params changed")
        out["optimizer"] = o
    sa, sb = a.scheduler, b.scheduler
    if sa or sb:
        s = {
            "class_a": (sa or {}).get("class"),
            "class_b": (sb or {}).get("class"),
            "changes": _dict_changes(
                (sa or {}).get("state"),
                (sb or {}).get("state"),
                skip=("last_epoch", "_step_count", "_last_lr", "_get_lr_called_within_step"),
            ),
        }
        if s["class_a"] != s["class_b"]:
            notes.append(f"scheduler {_short(s['class_a'])} -> {_short(s['class_b'])}")
        for c in s["changes"][:3]:
            notes.append(f"scheduler {c['key']} {_fmt(c['a'])} -> {_fmt(c['b'])}")
        out["scheduler"] = s
    changed = bool(notes)
    out["summary"] = (
        "; ".join(notes[:4]) + ("; ..." if len(notes) > 4 else "")
        if changed
        else ("identical" if (oa or ob or sa or sb) else "no optimizer logged")
    )
    out["changed"] = changed
    return out


def _short(cls: str | None) -> str:
    return "none" if cls is None else cls.rsplit(".", 1)[-1]


def _fmt(v: Any) -> str:
    from tvault_git.textfmt import fmt_value

    return "-" if v is None else fmt_value(v)


def _compiled(m: dict[str, Any]) -> str | None:
    from tvault_git.capture.compiled import describe

    rec = (m.get("model") or {}).get("compiled") if isinstance(m.get("model"), dict) else None
    return None if rec is None else describe(rec)


def _metadata(a: Side, b: Side) -> dict[str, Any]:
    if b.entry is None:
        return {"summary": "not available for the work tree", "changed": False, "available": False}
    ma, mb = a.manifest, b.manifest
    rows: list[dict[str, Any]] = []

    def row(group: str, key: str, x: Any, y: Any, in_a: bool, in_b: bool) -> None:
        r = {"group": group, "key": key, "a": x, "b": y, "changed": x != y or in_a != in_b}
        nx, ny = _num(x), _num(y)
        if nx is not None and ny is not None:
            r["delta"] = ny - nx
        rows.append(r)

    row(
        "result",
        "result",
        ma.get("result"),
        mb.get("result"),
        ma.get("result") is not None,
        mb.get("result") is not None,
    )
    for group, field_ in (("metric", "metrics"), ("tag", "tags")):
        xa, xb = ma.get(field_) or {}, mb.get(field_) or {}
        for k in sorted(set(xa) | set(xb)):
            row(group, k, xa.get(k), xb.get(k), k in xa, k in xb)
    if ma.get("name") != mb.get("name"):
        row("name", "name", ma.get("name"), mb.get("name"), True, True)
    ca, cb = (_compiled(m) for m in (ma, mb))
    if ca or cb:
        row("model", "compiled", ca, cb, ca is not None, cb is not None)
    changed = [r for r in rows if r["changed"]]
    parts = []
    for r in changed[:4]:
        d = f" ({r['delta']:+.4g})" if "delta" in r else ""
        parts.append(f"{r['key']} {_fmt(r['a'])} -> {_fmt(r['b'])}{d}")
    summary = "; ".join(parts) + (f"; {len(changed) - 4} more" if len(changed) > 4 else "") if changed else "identical"
    return {"summary": summary, "changed": bool(changed), "rows": rows}


def _context(repo: pygit2.Repository, a: Side, b: Side) -> dict[str, Any]:
    """Commits between the training commits; stat of tracked model-code files that changed."""
    ca, cb = a.commit, b.commit
    model_files = sorted({o.get("file") for o in a.objects + b.objects if o.get("file")})
    out: dict[str, Any] = {
        "commit_a": ca,
        "commit_b": cb,
        "commits": [],
        "commits_only_in_a": [],
        "files": [],
        "other_files": 0,
    }
    if ca is None or cb is None:
        return {**out, "summary": "no training commit to compare", "changed": False}
    gone = [c for c in (ca, cb) if commit_or_none(repo, c) is None]
    if gone:  # a teammate never pushed it: every other section still compares
        return {
            **out,
            "summary": f"training commit {gone[0][:10]} is not in this clone (fetch it to compare code history)",
            "changed": False,
        }
    out["commits"] = _commits_between(repo, ca, cb)
    if ca != cb:
        out["commits_only_in_a"] = _commits_between(repo, cb, ca)
    ta = repo[ca].peel(pygit2.Commit).tree
    if b.entry is None:
        d = ta.diff_to_workdir()
    else:
        d = repo.diff(ta, repo[cb].peel(pygit2.Commit).tree)
    wanted = set(model_files)
    other = 0
    for p in d:
        path = p.delta.new_file.path
        old = p.delta.old_file.path
        if path in wanted or old in wanted:
            _, plus, minus = p.line_stats
            out["files"].append({"path": path if path == old else f"{old} => {path}", "added": plus, "removed": minus})
        else:
            other += 1
    out["other_files"] = other
    out["libraries"] = _libraries(a, b)
    n = len(out["commits"])
    parts = []
    if ca == cb:
        parts.append("same training commit" if b.entry is not None else "work tree on the training commit")
    else:
        parts.append(f"{n}{'+' if n >= MAX_COMMITS else ''} commit(s) from {ca[:7]} to {cb[:7]}")
        if out["commits_only_in_a"]:
            parts.append(f"{len(out['commits_only_in_a'])} only on {ca[:7]}'s side")
    if out["files"]:
        parts.append(f"{len(out['files'])} model code file(s) changed")
    elif ca != cb or b.entry is None:
        parts.append("no model code file changed")
    if other:
        parts.append(f"{other} other file(s) changed")
    for lib in out["libraries"]:
        parts.append(f"library {lib['package']} {lib['a']} -> {lib['b']}")
    dirty = [s.label for s in (a, b) if s.manifest.get("dirty")]
    if dirty:
        subs = {s.label: _dirty_submodules(repo, s) for s in (a, b) if s.manifest.get("dirty")}
        out["dirty_submodules"] = {k: v for k, v in subs.items() if v}
        parts.append(
            "trained with uncommitted changes: "
            + ", ".join(f"{d} (inside submodule {', '.join(subs[d])})" if subs.get(d) else d for d in dirty)
        )
    subs_of = out.get("dirty_submodules") or {}
    # code that ran from a submodule's uncommitted changes on one side only: the context differs
    changed = ca != cb or bool(out["files"]) or bool(out["libraries"]) or subs_of.get(a.label) != subs_of.get(b.label)
    return {**out, "summary": "; ".join(parts), "changed": changed}


_SUBMODULE_RE = re.compile(r"^Submodule ([^\x00-\x20\x7f]+) [0-9a-f]{40} contains modified content$", re.M)


def _dirty_submodules(repo: pygit2.Repository, side: Side) -> list[str]:
    """Submodules whose own changes the entry's patch records (capture writes a header per submodule)."""
    if side.entry is None:
        return []
    try:
        return _SUBMODULE_RE.findall(entries.read_text(repo, side.entry.tree(), PATCH))
    except TvaultError:
        return []


def _libraries(a: Side, b: Side) -> list[dict[str, Any]]:
    """Packages whose version, or sibling repositories (``pip install -e ../lib``) whose commit or
    dirty state, differ between the two sides' captured externals."""
    from tvault_git.capture.libraries import describe

    def state(s: Side) -> dict[str, str]:
        out: dict[str, str] = {}
        for x in s.external:
            pkg = x.get("package")
            if not isinstance(pkg, str):
                continue
            lib = x.get("repo")
            out[pkg] = describe(lib) if isinstance(lib, dict) else str(x.get("version"))
        return out

    if b.entry is None:
        return []
    sa, sb = state(a), state(b)
    return [
        {"package": p, "a": sa.get(p, "(not used)"), "b": sb.get(p, "(not used)")}
        for p in sorted(set(sa) & set(sb))
        if sa[p] != sb[p]
    ]


def commit_or_none(repo: pygit2.Repository, sha: Any) -> pygit2.Commit | None:
    """The commit ``sha`` names, or None: not here, not a commit, not a commit id (a pulled manifest says it)."""
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{40}", sha):
        return None
    try:
        o = repo.get(sha)
    except (ValueError, pygit2.GitError):
        return None
    return o if o is not None and o.type == pygit2.enums.ObjectType.COMMIT else None


def commit_message(c: pygit2.Commit) -> str:
    """The message, even under an encoding header Python does not know (``encoding x-nope``)."""
    try:
        return c.message
    except (LookupError, UnicodeDecodeError):
        return c.raw_message.decode("utf-8", "replace")


def _author(c: pygit2.Commit) -> str:
    try:
        return c.author.name
    except (LookupError, UnicodeDecodeError):
        return c.author.raw_name.decode("utf-8", "replace")


def _commits_between(repo: pygit2.Repository, base: str, tip: str) -> list[dict[str, Any]]:
    if base == tip:
        return []
    walker = repo.walk(pygit2.Oid(hex=tip), pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.TIME)
    walker.hide(pygit2.Oid(hex=base))
    out = []
    for c in walker:
        out.append(
            {
                "commit": str(c.id),
                "subject": commit_message(c).split("\n", 1)[0],
                "author": _author(c),
                "time": c.commit_time,
            }
        )
        if len(out) >= MAX_COMMITS:
            break
    return out


# -- entry point -------------------------------------------------------------


def diff_entries(
    repo: Any, a_ref: str, b_ref: str | None = None, sections: Iterable[str] | None = None, weights: bool = True
) -> dict[str, Any]:
    """The structured diff of entry ``a_ref`` against ``b_ref`` (or the current work tree).

    One key per section, each with a one-line ``summary`` and a ``changed``
    flag; ``changed`` at the top says whether anything differs.
    """
    r = open_repo_like(repo)
    wanted = [section_name(s) for s in sections] if sections else list(SECTIONS)
    if not weights:
        wanted = [s for s in wanted if s != "weights"]
    a = _entry_side(r, a_ref)
    b = _entry_side(r, b_ref) if b_ref is not None else _worktree_side(r, a)
    out: dict[str, Any] = {"a": a.describe(), "b": b.describe()}
    for s in SECTIONS:
        if s not in wanted:
            continue
        if s == "architecture":
            out[s] = _architecture(a, b)
        elif s == "configuration":
            out[s] = config.configuration(a.configuration, a.objects, b.configuration, b.objects, b.entry is None)
        elif s == "classes":
            out[s] = _source(a, b, ("class",), "classes")
        elif s == "functions":
            out[s] = _source(a, b, ("function", "constant"), "functions/constants")
        elif s == "weights":
            out[s] = _weights(r, a, b)
        elif s == "optimizer":
            out[s] = _optimizer(a, b)
        elif s == "metadata":
            out[s] = _metadata(a, b)
        elif s == "context":
            out[s] = _context(r, a, b)
    out["sections"] = [s for s in SECTIONS if s in out]
    out["changed"] = any(out[s]["changed"] for s in out["sections"])
    return out


def code_against_worktree(
    repo: Any, ref: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Entry ``ref``'s captured classes, functions and constants against the work tree's definitions
    of the same qualified names (``git tvault diff REF``'s classes and functions sections, one
    definition): (the entry's objects, the work tree's, the per-object items with their status)."""
    r = open_repo_like(repo)
    a = _entry_side(r, ref)
    b = _worktree_side(r, a)
    items = (
        _source(a, b, ("class",), "classes")["items"]
        + _source(a, b, ("function", "constant"), "functions/constants")["items"]
    )
    return a.objects, b.objects, items


__all__ = ["SECTIONS", "code_against_worktree", "diff_entries", "section_name"]
