"""Build the conformance vectors (``*.fi``) from scratch with git plumbing, as a second writer would.

Not run by the tests: the streams are checked in, and tests/spec/test_spec_vectors.py imports them
with ``git fast-import`` and reads them back. Rerun (``python tests/spec/vectors/make_vectors.py``)
only to change a vector; every blob is printable text (tensor values are chosen so their
little-endian bytes are ASCII), so a stream diffs and reviews as text.

Nothing here imports tvault_git: a vector written by the code under test would prove little.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Vector Writer",
    "GIT_AUTHOR_EMAIL": "vectors@example.com",
    "GIT_COMMITTER_NAME": "Vector Writer",
    "GIT_COMMITTER_EMAIL": "vectors@example.com",
    "GIT_AUTHOR_DATE": "1767225600 +0000",
    "GIT_COMMITTER_DATE": "1767225600 +0000",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}

# Tensor bytes that are text: float32 from 4 ASCII bytes is always finite (top byte < 0x7f).
W_BYTES = b"tvaultgitspec!!!"  # float32 [2, 2]
B_BYTES = b"hello"  # uint8 [5]
LONG = (b"chunked tensor bytes; " * 69)[:1500]  # float32 [375]: two 1 KiB chunks (1024 + 476)
MOM = (b"momentum buffer text " * 72)[:1500]  # float32 [375]


class Git:
    def __init__(self, path: Path) -> None:
        self.path = path
        subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env=ENV)

    def run(self, *args: str, data: bytes | None = None) -> str:
        p = subprocess.run(["git", *args], cwd=self.path, input=data, capture_output=True, env=ENV, check=True)
        return p.stdout.decode().strip()

    def blob(self, data: bytes | str) -> str:
        return self.run("hash-object", "-w", "--stdin", data=data.encode() if isinstance(data, str) else data)

    def tree(self, entries: dict[str, str | dict]) -> str:
        """name -> blob id, or name -> nested dict (a subtree)."""
        lines = []
        for name, v in entries.items():
            if isinstance(v, dict):
                lines.append(f"040000 tree {self.tree(v)}\t{name}")
            else:
                kind = "tree" if v.startswith("tree:") else "blob"
                lines.append(f"{'040000' if kind == 'tree' else '100644'} {kind} {v.removeprefix('tree:')}\t{name}")
        return self.run("mktree", data=("\n".join(lines) + "\n").encode())

    def commit(self, tree: str, message: str, parents: tuple[str, ...] = ()) -> str:
        args = ["commit-tree", tree, "-m", message]
        for p in parents:
            args += ["-p", p]
        return self.run(*args)

    def ref(self, name: str, oid: str) -> None:
        self.run("update-ref", name, oid)


def js(doc: object, ordered: bool = False) -> str:
    return json.dumps(doc, indent=1, sort_keys=not ordered, ensure_ascii=False) + "\n"


def manifest(commit: str, created: str, **kw: object) -> str:
    m = {
        "format": "1.0",
        "kind": "tvault-entry",
        "created": created,
        "author": {"name": "Vector Writer", "email": "vectors@example.com"},
        "commit": commit,
        "branch": "main",
        "dirty": False,
        "untracked": [],
        "name": None,
        "message": None,
        "tags": {},
        "result": None,
        "metrics": {},
        "model": {"class": "model.Tiny", "parameters": 0, "tensors": 0, "bytes": 0},
        "versions": {"python": "3.11.7", "torch": "2.13.0", "tvault_git": "0.1.0", "pygit2": "1.21.0"},
    }
    m.update(kw)
    return js(m)


def entry(
    g: Git,
    files: dict[str, str],
    tensors: dict[str, tuple[str, list[int], bytes]],
    chunk: int,
    title: str,
    commit: str,
    extra_blobs: tuple[str, ...] | list[str] = (),
) -> tuple[str, dict]:
    """An entry commit: ``files`` (path -> text) plus weights.json of ``tensors`` cut at ``chunk``."""
    itemsize = {"float32": 4, "uint8": 1, "int64": 8}
    recs, blobs = {}, set(extra_blobs)
    for name, (dtype, shape, data) in tensors.items():
        n = 1
        for d in shape:
            n *= d
        assert len(data) == n * itemsize[dtype], name
        cut = [data[i : i + chunk] for i in range(0, len(data), chunk)] or [b""]
        ids = [g.blob(c) for c in cut]
        blobs |= set(ids)
        recs[name] = {"dtype": dtype, "shape": shape, "nbytes": len(data), "chunks": ids}
    tree: dict[str, str | dict] = {p: g.blob(t) for p, t in files.items() if "/" not in p}
    src: dict[str, dict] = {}
    for p, t in files.items():
        if p.startswith("source/"):
            _, mod, fname = p.split("/")
            src.setdefault(mod, {})[fname] = g.blob(t)
    if src:
        tree["source"] = src
    if "weights.json" not in files:
        tree["weights.json"] = g.blob(js({"chunk_bytes": chunk, "tensors": recs}, ordered=True))
    tree["tvault-blobs"] = {b: b for b in sorted(blobs)}
    oid = g.commit(g.tree(tree), f"tvault: {title}\n\ntrained on {commit}")
    g.ref(f"refs/tvault/entries/{oid}", oid)
    return oid, recs


def notes_commit(g: Git, notes: dict[str, str | dict]) -> str:
    return g.commit(g.tree(notes), "vectors: notes")


def export(g: Git, out: Path) -> None:
    stream = g.run("fast-export", "--all")
    out.write_text(stream + "\n")
    print(f"{out.name}: {len(stream)} bytes", file=sys.stderr)


SOURCE = "class Tiny:\n    pass\n"
SOURCE_JSON = js(
    {
        "objects": [
            {
                "kind": "class",
                "role": "module",
                "module": "model",
                "qualname": "Tiny",
                "file": "model.py",
                "line": 1,
                "path": "source/model/Tiny.py",
            }
        ],
        "external": [],
        "missing": [],
    }
)


def good(root: Path) -> dict[str, str]:
    g = Git(root / "good")
    t1 = g.commit(g.tree({"model.py": g.blob(SOURCE)}), "model code")
    t2 = g.commit(g.tree({"model.py": g.blob(SOURCE + "# v2\n")}), "more model code", (t1,))
    g.ref("refs/heads/main", t2)
    c1 = "2026-01-01T00:00:00.000000+00:00"
    c2 = "2026-01-01T03:00:00.000000+02:00"  # an hour after c1 as an instant, earlier as text
    c3 = "2026-01-02T00:00:00.000000+00:00"
    e1, _ = entry(
        g,
        {
            "tvault.json": manifest(
                t1,
                c1,
                name="tiny",
                result=0.5,
                tags={"lr": 0.001, "size": "0.5x"},
                metrics={"loss": 0.25},
                model={"class": "model.Tiny", "parameters": 4, "tensors": 3, "bytes": 21},
            ),
            "architecture.txt": "Tiny()\n",
            "source.json": SOURCE_JSON,
            "source/model/Tiny.py": SOURCE,
        },
        {"w": ("float32", [2, 2], W_BYTES), "b": ("uint8", [5], B_BYTES), "e": ("float32", [0], b"")},
        1 << 25,
        "tiny result=0.5",
        t1,
    )
    opt = js(
        {
            "class": "torch.optim.sgd.SGD",
            "defaults": {"lr": 0.1, "momentum": 0.9},
            "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": ["w"]}],
        }
    )
    state = js(
        {
            "chunk_bytes": 1024,
            "tensors": {
                "w.momentum_buffer": {
                    "dtype": "float32",
                    "shape": [375],
                    "nbytes": 1500,
                    "chunks": [g.blob(MOM[:1024]), g.blob(MOM[1024:])],
                }
            },
            "values": {"w": {"step": 3}},
        },
        ordered=True,
    )
    e2, _ = entry(
        g,
        {
            "tvault.json": manifest(
                t1,
                c2,
                name="tiny",
                result=0.75,
                model={"class": "model.Tiny", "parameters": 375, "tensors": 1, "bytes": 1500},
            ),
            "architecture.txt": "Tiny()\n",
            "source.json": SOURCE_JSON,
            "source/model/Tiny.py": SOURCE,
            "optimizer.json": opt,
            "optimizer-state.json": state,
            "scheduler.json": js(
                {"class": "torch.optim.lr_scheduler.StepLR", "state": {"last_epoch": 1, "step_size": 2}}
            ),
        },
        {"w": ("float32", [375], LONG)},
        1024,
        "tiny result=0.75",
        t1,
        extra_blobs=[g.blob(MOM[:1024]), g.blob(MOM[1024:])],
    )
    e3, _ = entry(
        g,
        {
            "tvault.json": manifest(
                t2, c3, result=3, model={"class": "model.Tiny", "parameters": 0, "tensors": 1, "bytes": 8}
            ),
            "architecture.txt": "Tiny()\n",
            "source.json": SOURCE_JSON,
            "source/model/Tiny.py": SOURCE,
        },
        {"steps": ("int64", [], b"12345678")},
        1 << 25,
        "Tiny result=3",
        t2,
    )
    note1 = (
        f"model 0 {e1} tiny result=0.5 created={c1}\n"
        f"model 1 {e2} tiny result=0.75\n"  # an older writer: no created=, the manifest says when
        f"model 0 {e1} tiny result=0.5\n"  # a duplicate line (after a merge): counts once
        "comment lines and unknown kinds are ignored\n"
    )
    note2 = f"model 0 {e3} - result=3 created={c3} future-word=1\n"
    junk = g.blob("model 0 " + "f" * 40 + " ghost result=-\n")
    notes = {
        t1[:2]: {t1[2:]: g.blob(note1)},  # fanout ab/<38>
        t2: g.blob(note2),  # flat fanout
        "zz": {"z" * 38: junk},  # bad fanout: not hex
        "abc": {"f" * 37: junk},  # bad fanout: a 3-character directory
        "f" * 40: "tree:" + g.tree({"x": junk}),  # bad fanout: a tree where a note blob belongs
    }
    g.ref("refs/notes/tvault", notes_commit(g, notes))
    aliases = (
        f"alias tiny production {e1} 2026-01-03T00:00:00.000000Z ada@example.com\n"
        f"alias tiny staging - 2026-01-03T00:00:00.000000Z ada@example.com\n"
        f"alias tiny staging {e2} 2026-01-04T00:00:00.000000Z bob@example.com\n"
    )
    g.ref("refs/tvault/aliases", g.commit(g.tree({"aliases": g.blob(aliases)}), "vectors: aliases"))
    export(g, HERE / "good.fi")
    return {"t1": t1, "t2": t2, "e1": e1, "e2": e2, "e3": e3}


def bad(root: Path) -> dict[str, str]:
    g = Git(root / "bad")
    t1 = g.commit(g.tree({"model.py": g.blob(SOURCE)}), "model code")
    g.ref("refs/heads/main", t1)
    c = "2026-01-01T00:00:00.000000+00:00"
    base = {"architecture.txt": "Tiny()\n", "source.json": SOURCE_JSON, "source/model/Tiny.py": SOURCE}
    newer, _ = entry(
        g,
        {**base, "tvault.json": manifest(t1, c, format="2.0")},
        {"w": ("float32", [2, 2], W_BYTES)},
        1 << 25,
        "newer major",
        t1,
    )
    ch = g.blob(W_BYTES)
    odd_chunk, _ = entry(
        g,
        {
            **base,
            "tvault.json": manifest(t1, c),
            "weights.json": js(
                {
                    "chunk_bytes": 1000,
                    "tensors": {"w": {"dtype": "float32", "shape": [2, 2], "nbytes": 16, "chunks": [ch]}},
                },
                ordered=True,
            ),
        },
        {},
        1 << 25,
        "chunk_bytes 1000",
        t1,
        extra_blobs=[ch],
    )
    bad_size, _ = entry(
        g,
        {
            **base,
            "tvault.json": manifest(t1, c),
            "weights.json": js(
                {
                    "chunk_bytes": 1024,
                    "tensors": {"w": {"dtype": "float32", "shape": [2, 2], "nbytes": 15, "chunks": [ch]}},
                },
                ordered=True,
            ),
        },
        {},
        1 << 25,
        "nbytes 15",
        t1,
        extra_blobs=[ch],
    )
    short = g.blob(W_BYTES[:12])
    short_chunk, _ = entry(
        g,
        {
            **base,
            "tvault.json": manifest(t1, c),
            "weights.json": js(
                {
                    "chunk_bytes": 1024,
                    "tensors": {"w": {"dtype": "float32", "shape": [2, 2], "nbytes": 16, "chunks": [short]}},
                },
                ordered=True,
            ),
        },
        {},
        1 << 25,
        "a 12-byte chunk for 16 bytes",
        t1,
        extra_blobs=[short],
    )
    note = "".join(
        f"model {i} {e} - result=- created={c}\n" for i, e in enumerate((newer, odd_chunk, bad_size, short_chunk))
    )
    g.ref("refs/notes/tvault", notes_commit(g, {t1[:2]: {t1[2:]: g.blob(note)}}))
    export(g, HERE / "bad.fi")
    return {"t1": t1, "newer": newer, "odd_chunk": odd_chunk, "bad_size": bad_size, "short_chunk": short_chunk}


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        ids = {"good": good(Path(d)), "bad": bad(Path(d))}
    (HERE / "ids.json").write_text(json.dumps(ids, indent=1, sort_keys=True) + "\n")
