#!/usr/bin/env python3
"""How much ``git tvault pull`` / ``fetch REMOTE REF`` transfer from a registry of 1,000 entries.

The remote registry is written with ``git fast-import`` (entries with real,
unique weight blobs — two float32 tensors each — notes and refs exactly as
log_all writes them), so setting it up takes seconds. Bytes are measured on
the receiving side: the client keeps every fetched pack as-is
(``transfer.unpackLimit=1``), so the new packs' size is what came over the
wire (a thin pack's bases, if any, are appended by index-pack and counted too:
an upper bound). The "changed layers" case uses the real ``log_all`` on a
4-layer MLP.

    .venv/bin/python bench/bench_share.py [--entries 1000] [--new 10] [--dir bench/out/share]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import pygit2

from tvault_git import remotes

ENV = dict(
    os.environ,
    GIT_AUTHOR_NAME="Bench",
    GIT_AUTHOR_EMAIL="bench@example.com",
    GIT_COMMITTER_NAME="Bench",
    GIT_COMMITTER_EMAIL="bench@example.com",
)
os.environ.update({k: v for k, v in ENV.items() if k.startswith("GIT_")})


def run(cwd: str, *args: str, input: bytes | None = None) -> str:
    p = subprocess.run(list(args), cwd=cwd, input=input, capture_output=True, env=ENV)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {p.stderr.decode()[-2000:]}")
    return p.stdout.decode()


def _data(b: bytes) -> bytes:
    return b"data %d\n" % len(b) + b + b"\n"


def _blob_id(b: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(b) + b).hexdigest()


def build(repo: str, n: int, start: int, n_commits: int = 10) -> list[str]:
    """``n`` entries (names model0..model49, unique 16.6 KB of weights each) on new training commits."""
    rnd = random.Random(start)
    stream: list[bytes] = []
    mark = 1
    arch_m = mark
    stream.append(
        b"blob\nmark :%d\n" % mark + _data(b"Net(\n  (fc): Linear(in_features=64, out_features=64, bias=True)\n)\n")
    )
    mark += 1
    src_m = mark
    stream.append(b"blob\nmark :%d\n" % mark + _data(b'{\n "external": [],\n "missing": [],\n "objects": []\n}\n'))
    mark += 1
    have_main = (
        subprocess.run(
            ["git", "rev-parse", "-q", "--verify", "refs/heads/main"], cwd=repo, capture_output=True
        ).returncode
        == 0
    )
    commits = []
    t0 = 1_700_000_000 + start * 60
    for c in range(n_commits):
        f = mark
        stream.append(b"blob\nmark :%d\n" % mark + _data(b"step %d\n" % (start + c)))
        mark += 1
        cm = mark
        mark += 1
        stream.append(
            b"commit refs/heads/main\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\n" % (cm, t0 + c)
            + _data(b"train %d" % (start + c))
            + (b"from refs/heads/main^0\n" if c == 0 and have_main else b"")
            + b"M 100644 :%d train.txt\n\n" % f
        )
        commits.append(cm)
    entries = []  # (entry mark, commit mark, name, created, result)
    for i in range(n):
        k = start + i
        w = rnd.randbytes(64 * 64 * 4)
        b = rnd.randbytes(64 * 4)
        wid, bid = _blob_id(w), _blob_id(b)
        table = {
            "chunk_bytes": 33554432,
            "tensors": {
                "fc.weight": {"dtype": "float32", "shape": [64, 64], "nbytes": len(w), "chunks": [wid]},
                "fc.bias": {"dtype": "float32", "shape": [64], "nbytes": len(b), "chunks": [bid]},
            },
        }
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 + i)) + f".{k % 1000000:06d}+00:00"
        name, result = f"model{k % 50}", round(rnd.random(), 6)
        man = {
            "format": "1.0",
            "kind": "tvault-entry",
            "created": created,
            "author": {"name": "Bench", "email": "bench@example.com"},
            "commit": None,
            "branch": "main",
            "dirty": False,
            "untracked": [],
            "name": name,
            "message": None,
            "tags": {"run": k},
            "result": result,
            "metrics": {"acc": result},
            "model": {"class": "model.Net", "parameters": 4160, "tensors": 2, "bytes": len(w) + len(b)},
            "versions": {},
        }
        ms = []
        for data in (json.dumps(man, indent=1, sort_keys=True).encode(), json.dumps(table, indent=1).encode(), w, b):
            stream.append(b"blob\nmark :%d\n" % mark + _data(data))
            ms.append(mark)
            mark += 1
        em = mark
        mark += 1
        stream.append(
            b"reset refs/tvault/build\ncommit refs/tvault/build\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\n"
            % (em, t0 + i)
            + _data(b"tvault: %s result=%s" % (name.encode(), str(result).encode()))
            + b"M 100644 :%d tvault.json\nM 100644 :%d architecture.txt\nM 100644 :%d weights.json\nM 100644 :%d source.json\n"
            % (ms[0], arch_m, ms[1], src_m)
            + b"M 100644 :%d tvault-blobs/%s\nM 100644 :%d tvault-blobs/%s\n\n"
            % (ms[2], wid.encode(), ms[3], bid.encode())
        )
        entries.append((em, commits[i * n_commits // n], name, created, result))
    marks = os.path.join(repo, ".git", "bench-marks")
    run(repo, "git", "fast-import", "--quiet", f"--export-marks={marks}", input=b"".join(stream))
    sha = {int(m[1:]): s for m, s in (line.split() for line in open(marks))}
    run(repo, "git", "update-ref", "-d", "refs/tvault/build")
    ids = [sha[em] for em, *_ in entries]
    run(
        repo,
        "git",
        "update-ref",
        "--stdin",
        input="".join(f"create refs/tvault/entries/{e} {e}\n" for e in ids).encode(),
    )
    # the index: one notes commit per entry, as log_all writes it (so its history has a realistic size)
    per: dict[str, list[str]] = {}
    have_notes = (
        subprocess.run(
            ["git", "rev-parse", "-q", "--verify", "refs/notes/tvault"], cwd=repo, capture_output=True
        ).returncode
        == 0
    )
    st = []
    for j, ((_em, cm, name, created, result), eid) in enumerate(zip(entries, ids)):
        lines = per.setdefault(sha[cm], [])
        if not lines and have_notes:
            old = subprocess.run(
                ["git", "notes", "--ref=tvault", "show", sha[cm]], cwd=repo, capture_output=True, text=True
            )
            lines += old.stdout.splitlines(keepends=True) if old.returncode == 0 else []
        lines.append(f"model {len(lines)} {eid} {name} result={result} created={created}\n")
        st.append(
            b"commit refs/notes/tvault\ncommitter Bench <bench@example.com> %d +0000\n" % (t0 + j)
            + _data(b"tvault: model on %s" % sha[cm][:12].encode())
            + (b"from refs/notes/tvault^0\n" if j == 0 and have_notes else b"")
            + b"N inline %s\n" % sha[cm].encode()
            + _data("".join(lines).encode())
            + b"\n"
        )
    run(repo, "git", "fast-import", "--quiet", input=b"".join(st))
    return ids


def _gd(repo: str) -> str:
    return os.path.join(repo, ".git") if os.path.isdir(os.path.join(repo, ".git")) else repo


def packs(repo: str) -> dict[str, int]:
    d = os.path.join(_gd(repo), "objects", "pack")
    return {f: os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".pack")}


def measured(repo: str, fn) -> tuple[int, int, float, object]:
    """(bytes in new packs, objects in them, seconds, result of fn())."""
    before = packs(repo)
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    new = [f for f in packs(repo) if f not in before]
    size = sum(os.path.getsize(os.path.join(_gd(repo), "objects", "pack", f)) for f in new)
    objs = 0
    for f in new:
        idx = os.path.join(_gd(repo), "objects", "pack", f[:-5] + ".idx")
        objs += int(run(repo, "git", "show-index", input=open(idx, "rb").read()).count("\n"))
    return size, objs, dt, out


def kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


MLP_SRC = """
import torch.nn as nn


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(256, 256)
        self.l2 = nn.Linear(256, 256)
        self.l3 = nn.Linear(256, 256)
        self.l4 = nn.Linear(256, 10)

    def forward(self, x):
        return self.l4(self.l3(self.l2(self.l1(x).relu()).relu()).relu())
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1000)
    ap.add_argument("--new", type=int, default=10)
    ap.add_argument("--dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "share"))
    a = ap.parse_args()
    shutil.rmtree(a.dir, ignore_errors=True)
    origin, mate = os.path.join(a.dir, "origin"), os.path.join(a.dir, "mate")
    os.makedirs(origin)
    run(origin, "git", "init", "-q", "-b", "main")
    os.makedirs(os.path.join(origin, ".git", "info"), exist_ok=True)
    with open(os.path.join(origin, ".git", "info", "attributes"), "w") as f:
        f.write("tvault-blobs/** -delta -diff\n")
    t = time.perf_counter()
    build(origin, a.entries, 0)
    run(origin, "git", "repack", "-adq")
    print(
        f"(built {a.entries:,} entries in {time.perf_counter() - t:.1f} s; remote packs: {kib(sum(packs(origin).values()))})",
        file=sys.stderr,
    )
    run(a.dir, "git", "clone", "-q", "--no-local", f"file://{origin}", mate)
    run(mate, "git", "config", "transfer.unpackLimit", "1")
    m = pygit2.Repository(mate)
    rows = []

    size, objs, dt, t_ = measured(mate, lambda: remotes.pull(m, "origin", progress=False))
    rows.append((f"first `pull` of the whole registry ({a.entries:,} entries)", size, objs, dt, len(t_.new_entries)))
    size, objs, dt, t_ = measured(mate, lambda: remotes.pull(m, "origin", progress=False))
    rows.append(("`pull` again, nothing new", size, objs, dt, len(t_.new_entries)))
    build(origin, a.new, a.entries, n_commits=1)
    size, objs, dt, t_ = measured(mate, lambda: remotes.pull(m, "origin", progress=False))
    rows.append(
        (
            f"`pull` of {a.new} new entries (each 16.6 KB of weights + ~1.5 KB metadata)",
            size,
            objs,
            dt,
            len(t_.new_entries),
        )
    )

    # one entry from the big registry into a clone that has none
    solo = os.path.join(a.dir, "solo")
    run(a.dir, "git", "clone", "-q", "--no-local", f"file://{origin}", solo)
    run(solo, "git", "config", "transfer.unpackLimit", "1")
    size, objs, dt, _e = measured(
        solo, lambda: remotes.fetch_one(pygit2.Repository(solo), "origin", "model7@latest", progress=False)
    )
    # fetch_one reads the remote's index from its notes tip (--depth=1, in a scratch repository it then
    # deletes); replay that fetch to count its bytes too
    tip = os.path.join(a.dir, "index-tip")
    run(a.dir, "git", "init", "-q", "--bare", tip)
    run(tip, "git", "config", "transfer.unpackLimit", "1")
    isize, iobjs, _, _ = measured(
        tip, lambda: run(tip, "git", "fetch", "-q", "--depth=1", f"file://{origin}", "+refs/notes/tvault:refs/n")
    )
    rows.append(("`fetch origin model7@latest`: the one entry", size, objs, dt, 1))
    rows.append(("... plus the remote index's tip it resolved the name with (notes, depth 1)", isize, iobjs, 0.0, 0))

    # a second version that changed one layer of four: only that tensor travels
    with open(os.path.join(origin, "mlp.py"), "w") as f:
        f.write(MLP_SRC)
    run(origin, "git", "add", "mlp.py")
    run(origin, "git", "commit", "-qm", "mlp")
    sys.path.insert(0, origin)
    import torch
    from mlp import MLP

    import tvault_git as tv

    torch.manual_seed(0)
    net = MLP()
    tv.log_all(net, result=0.5, name="mlp", repo=origin)
    remotes.pull(m, "origin", progress=False)
    with torch.no_grad():
        net.l4.weight.add_(0.01)
        net.l4.bias.add_(0.01)
    tv.log_all(net, result=0.6, name="mlp", repo=origin)
    total = sum(p.numel() * 4 for p in net.parameters())
    changed = (net.l4.weight.numel() + net.l4.bias.numel()) * 4
    size, objs, dt, t_ = measured(mate, lambda: remotes.pull(m, "origin", progress=False))
    rows.append(
        (
            f"`pull` of mlp v2: 1 of 4 layers changed ({kib(changed)} of {kib(total)})",
            size,
            objs,
            dt,
            len(t_.new_entries),
        )
    )
    assert tv.load("mlp@2", repo=mate)["l4.bias"].equal(net.l4.bias)

    # push direction: the teammate logs v3 (one layer changed again) and pushes it
    run(origin, "git", "config", "receive.unpackLimit", "1")
    run(origin, "git", "config", "receive.denyCurrentBranch", "updateInstead")
    with torch.no_grad():
        net.l2.bias.add_(0.01)
    tv.log_all(net, result=0.7, name="mlp", repo=mate)
    size, objs, dt, t_ = measured(origin, lambda: remotes.push(m, "origin", progress=False))
    rows.append(("`push` of mlp v3 from the teammate: 1 layer changed (1.0 KiB of weights)", size, objs, dt, 1))

    print("| operation | bytes received | objects | time | new entries |")  # time: wall, 2-core machine
    print("|---|---|---|---|---|")
    for label, size, objs, dt, n in rows:
        print(f"| {label} | {kib(size)} | {objs:,} | {dt:.2f} s | {n} |")
    for r in (origin, mate, solo):
        out = subprocess.run(["git", "fsck", "--no-dangling"], cwd=r, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr


if __name__ == "__main__":
    main()
