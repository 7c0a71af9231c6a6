"""Hostile registries written by hand as raw git objects, and a victim that pulls them.

An attacker's bare repository (a mirror of the team remote) gets entries,
notes and refs built with pygit2's raw object writer and the git CLI, never
with tvault-git's writers, so nothing tvault-git validates on write protects
the victim. The victim is an ordinary clone that logged an entry of its own
and runs ``git tvault`` as a user would, optionally under an address-space
limit and always with a timeout.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2

from tests.helpers import GIT_ENV, git, import_fresh, init_repo

BLOB = pygit2.enums.FileMode.BLOB
TREE = pygit2.enums.FileMode.TREE
GITLINK = pygit2.enums.FileMode.COMMIT


def log_in(clone: Path, result: float, name: str | None = "mnist", **kw: Any) -> str:
    """log_all in ``clone`` as its owner would."""
    import tvault_git as tvault

    sys.path.insert(0, str(clone))
    try:
        for m in ("model", "helpers"):
            sys.modules.pop(m, None)
        Net = import_fresh("model").Net
        return tvault.log_all(Net(), result=result, name=name, repo=str(clone), **kw).id
    finally:
        sys.path.remove(str(clone))
        for m in ("model", "helpers"):
            sys.modules.pop(m, None)


def cli(
    repo: Path, *args: str, limit_mb: int | None = None, timeout: float = 120, env: dict | None = None
) -> subprocess.CompletedProcess:
    """``git tvault ARGS`` in ``repo``, with a timeout and (``limit_mb``) an address-space limit."""
    e = dict(os.environ)
    e.update(GIT_ENV)
    e["PATH"] = os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", "")
    e["NO_COLOR"] = "1"
    e.update(env or {})

    def cap() -> None:
        if limit_mb:
            resource.setrlimit(resource.RLIMIT_AS, (limit_mb << 20, limit_mb << 20))

    return subprocess.run(
        ["git", "tvault", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env=e,
        timeout=timeout,
        preexec_fn=cap,
        errors="surrogateescape",
    )


def no_traceback(p: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    assert len([ln for ln in p.stderr.splitlines() if ln.startswith("tvault: error")]) <= 1, p.stderr


@dataclass
class World:
    """origin (the team remote), victim (a clone with its own entry), evil (the attacker's mirror)."""

    tmp: Path
    origin: Path
    victim: Path
    evil: Path
    victim_entry: str
    commit: str  # the victim's training commit (HEAD)

    @property
    def er(self) -> pygit2.Repository:
        return pygit2.Repository(str(self.evil))

    def pull(self, *, limit_mb: int | None = None, remote: str | None = None) -> subprocess.CompletedProcess:
        return cli(self.victim, "pull", remote or str(self.evil), limit_mb=limit_mb)


def world(tmp: Path) -> World:
    origin = tmp / "origin.git"
    git(tmp, "init", "-q", "--bare", "-b", "main", str(origin))
    victim = init_repo(tmp / "victim")
    git(victim, "remote", "add", "origin", str(origin))
    git(victim, "push", "-q", "origin", "main")
    eid = log_in(victim, 0.1)
    git(victim, "push", "-q", "origin", "main", "refs/tvault/*:refs/tvault/*", "refs/notes/tvault:refs/notes/tvault")
    evil = tmp / "evil.git"
    git(tmp, "clone", "-q", "--mirror", "--no-hardlinks", str(origin), str(evil))
    commit = git(victim, "rev-parse", "HEAD").stdout.strip()
    return World(tmp, origin, victim, evil, eid, commit)


# --- raw objects ---------------------------------------------------------------


def blob(r: pygit2.Repository, data: bytes) -> str:
    return str(r.odb.write(pygit2.enums.ObjectType.BLOB, data))


def tree(r: pygit2.Repository, files: dict[str, Any]) -> str:
    """A tree from ``{path: bytes | (mode, oid)}``; nested paths make subtrees."""
    direct: dict[str, Any] = {}
    sub: dict[str, dict[str, Any]] = {}
    for path, v in files.items():
        head, _, rest = path.partition("/")
        if rest:
            sub.setdefault(head, {})[rest] = v
        else:
            direct[head] = v
    tb = r.TreeBuilder()
    for name, v in direct.items():
        if isinstance(v, (bytes, bytearray)):
            tb.insert(name, pygit2.Oid(hex=blob(r, bytes(v))), BLOB)
        else:
            tb.insert(name, pygit2.Oid(hex=v[1]), v[0])
    for name, files_ in sub.items():
        tb.insert(name, pygit2.Oid(hex=tree(r, files_)), TREE)
    return str(tb.write())


def raw_commit(
    r: pygit2.Repository,
    tree_id: str,
    message: str = "tvault: evil\n",
    parents: list[str] = (),
    extra_headers: str = "",
) -> str:
    body = f"tree {tree_id}\n" + "".join(f"parent {p}\n" for p in parents)
    body += "author Eve <eve@evil.example> 1700000000 +0000\ncommitter Eve <eve@evil.example> 1700000000 +0000\n"
    body += extra_headers + "\n" + message
    return str(r.odb.write(pygit2.enums.ObjectType.COMMIT, body.encode()))


def manifest(training: str, **over: Any) -> dict[str, Any]:
    m = {
        "format": "1.0",
        "kind": "tvault-entry",
        "created": "2026-11-22T13:40:41.233817+00:00",
        "author": {"name": "Eve", "email": "eve@evil.example"},
        "commit": training,
        "branch": "main",
        "dirty": False,
        "untracked": [],
        "name": "mnist",
        "message": None,
        "tags": {},
        "result": 0.05,
        "metrics": {},
        "model": {"class": "model.Net", "parameters": 4, "tensors": 1, "bytes": 16},
        "versions": {"python": "3.11.7", "torch": "2.13.0", "tvault_git": "0.1.0", "pygit2": "1.21.0"},
    }
    m.update(over)
    return {k: v for k, v in m.items() if v is not _DROP}


_DROP = object()


def weights(
    r: pygit2.Repository,
    data: bytes = b"\x00" * 16,
    shape: list[int] = (4,),
    dtype: str = "float32",
    name: str = "w",
    **rec_over: Any,
) -> tuple[bytes, dict[str, bytes]]:
    """A weights.json and the chunk files it references."""
    cid = blob(r, data)
    rec = {"dtype": dtype, "shape": list(shape), "nbytes": len(data), "chunks": [cid]}
    rec.update(rec_over)
    return json.dumps({"chunk_bytes": 33554432, "tensors": {name: rec}}).encode(), {f"tvault-blobs/{cid}": data}


def entry(
    w: World,
    man: Any = None,
    files: dict[str, Any] | None = None,
    *,
    note: str | None = "auto",
    name: str = "mnist",
    seq: int = 1,
    on: str | None = None,
    result: str = "0.05",
    created: str | None = None,
) -> str:
    """An entry commit in evil with its ref and (``note``) a note line on ``on`` (default: the victim's commit).

    ``man``: a dict (JSON-encoded), bytes (written as is), or a (mode, oid) tuple (a gitlink, say).
    """
    r = w.er
    on = on or w.commit
    if man is None:
        man = manifest(on)
    fs: dict[str, Any] = {}
    if not (files and "weights.json" in files):
        wj, chunks = weights(r)
        fs["weights.json"] = wj
        fs.update(chunks)
    fs.update({"architecture.txt": b"Net()\n", "source.json": b'{"objects": [], "external": [], "missing": []}'})
    fs.update(files or {})
    fs["tvault.json"] = man if isinstance(man, (bytes, tuple)) else json.dumps(man).encode()
    eid = raw_commit(r, tree(r, fs), f"tvault: evil\n\n{on}\n")
    r.references.create(f"refs/tvault/entries/{eid}", pygit2.Oid(hex=eid), force=True)
    if note == "auto":
        note = f"model {seq} {eid} {name} result={result}" + (f" created={created}" if created else "")
    if note is not None:
        add_note(w, on, note)
    return eid


def add_note(w: World, commit: str, line: str | bytes) -> None:
    """Append raw text to the note of ``commit`` in evil's refs/notes/tvault (with git notes)."""
    old = subprocess.run(
        ["git", "--git-dir", str(w.evil), "notes", "--ref=tvault", "show", commit], capture_output=True
    ).stdout
    data = line if isinstance(line, bytes) else line.encode()
    body = old + (b"" if not old or old.endswith(b"\n") else b"\n") + data + b"\n"
    f = w.tmp / "note.txt"
    f.write_bytes(body)
    git(w.tmp, "--git-dir", str(w.evil), "notes", "--ref=tvault", "add", "-f", "-F", str(f), commit)


def set_ref(w: World, ref: str, oid: str) -> None:
    git(w.tmp, "--git-dir", str(w.evil), "update-ref", ref, oid)


def alias_commit(w: World, text: str) -> str:
    r = w.er
    tip = r.references.get("refs/tvault/aliases")
    parents = [str(tip.target)] if tip is not None else []
    c = raw_commit(r, tree(r, {"aliases": text.encode()}), "tvault: alias\n", parents)
    set_ref(w, "refs/tvault/aliases", c)
    return c
