#!/usr/bin/env python3
"""How much ``git tvault pull`` / ``push`` / ``fetch REMOTE REF`` transfer with a registry of 2,000 entries.

The remote registry is written with ``git fast-import`` (entries with real,
unique weight blobs — two float32 tensors each — notes and refs exactly as
log_all writes them), so setting it up takes seconds. It is served by ``git
daemon`` on 127.0.0.1 behind a byte-counting TCP proxy: "received" and "sent"
are the bytes on the wire, everything included (ref advertisement,
negotiation, pack). Each row is printed beside the unique bytes of what it
had to bring (objects of the new entries that no older entry has), measured in
the same run, and the issue 13 targets are checked: a no-op pull under 20 KiB,
10 new entries at most 1.2x their unique bytes + 40 KiB. The "changed layers"
case uses the real ``log_all`` on a 4-layer MLP.

    .venv/bin/python bench/bench_share.py [--entries 2000] [--new 10] [--dir bench/out/share]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import pygit2

from tvault_git.share import sync as remotes

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


class Counter:
    """A TCP proxy that counts the bytes each way (received: server to client)."""

    def __init__(self, port: int) -> None:
        self.port, self.received, self.sent = port, 0, 0
        self._lock = threading.Lock()
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.listen = self.srv.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self._lock:
            self.received = self.sent = 0

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            s = socket.create_connection(("127.0.0.1", self.port))
            threading.Thread(target=self._pipe, args=(c, s, "sent"), daemon=True).start()
            threading.Thread(target=self._pipe, args=(s, c, "received"), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, what: str) -> None:
        try:
            while b := src.recv(65536):
                with self._lock:
                    setattr(self, what, getattr(self, what) + len(b))
                dst.sendall(b)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def daemon(base: str) -> tuple[subprocess.Popen, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
            f"--base-path={base}",
            "--listen=127.0.0.1",
            f"--port={port}",
            base,
        ],
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return p, port
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise SystemExit("git daemon did not start")


def unique_bytes(repo: pygit2.Repository, new: list[str], old: list[str]) -> int:
    """Bytes (uncompressed) of the objects the entries ``new`` need that no entry of ``old`` has."""
    seen: set[pygit2.Oid] = set()
    for e in old:
        remotes._add_objects(repo, repo[e].tree_id, seen)
    return sum(remotes._add_objects(repo, repo[e].tree_id, seen) + len(repo[e].read_raw()) for e in new)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=2000)
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
    old_ids = build(origin, a.entries, 0)
    run(origin, "git", "repack", "-adq")
    print(
        f"(built {a.entries:,} entries in {time.perf_counter() - t:.1f} s; remote packs: {kib(sum(packs(origin).values()))})",
        file=sys.stderr,
    )
    proc, port = daemon(a.dir)
    try:
        wire = Counter(port)
        url = f"git://127.0.0.1:{wire.listen}/origin"
        run(a.dir, "git", "clone", "-q", url, mate)
        run(mate, "git", "config", "transfer.unpackLimit", "1")
        m = pygit2.Repository(mate)
        rows: list[tuple[str, int, int, int, str]] = []  # label, received, sent, unique, target

        def op(label: str, fn, unique: int = 0, target: str = "") -> object:
            wire.reset()
            out = fn()
            rows.append((label, wire.received, wire.sent, unique, target))
            return out

        op(
            "a full ref advertisement (`git ls-remote`: the old pull received two)",
            lambda: run(mate, "git", "ls-remote", "origin"),
        )
        tr = op(
            f"first `pull` of the whole registry ({a.entries:,} entries)",
            lambda: remotes.pull(m, "origin", progress=False),
        )
        assert len(tr.new_entries) == a.entries
        tr = op("`pull` again, nothing new", lambda: remotes.pull(m, "origin", progress=False), 0, "< 20 KiB")
        assert not tr.new_entries
        noop = rows[-1][1]
        new_ids = build(origin, a.new, a.entries, n_commits=1)
        uniq = unique_bytes(pygit2.Repository(origin), new_ids, old_ids)
        tr = op(
            f"`pull` of {a.new} new entries",
            lambda: remotes.pull(m, "origin", progress=False),
            uniq,
            "<= 1.2x unique + 40 KiB",
        )
        assert sorted(tr.new_entries) == sorted(new_ids)
        small = rows[-1][1]

        # one entry from the big registry into a clone that has none
        solo = os.path.join(a.dir, "solo")
        run(a.dir, "git", "clone", "-q", url, solo)
        op(
            "`fetch origin model7@latest` into a fresh clone (one entry, index tip)",
            lambda: remotes.fetch_one(pygit2.Repository(solo), "origin", "model7@latest", progress=False),
        )

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
        v1 = tv.log_all(net, result=0.5, name="mlp", repo=origin).id
        remotes.pull(m, "origin", progress=False)
        with torch.no_grad():
            net.l4.weight.add_(0.01)
            net.l4.bias.add_(0.01)
        v2 = tv.log_all(net, result=0.6, name="mlp", repo=origin).id
        o = pygit2.Repository(origin)
        op(
            "`pull` of mlp v2: 1 of 4 layers changed",
            lambda: remotes.pull(m, "origin", progress=False),
            unique_bytes(o, [v2], [v1]),
        )
        assert tv.load("mlp@2", repo=mate)["l4.bias"].equal(net.l4.bias)

        # push direction: the teammate logs v3 (one layer changed again) and pushes it
        run(origin, "git", "config", "receive.denyCurrentBranch", "updateInstead")
        with torch.no_grad():
            net.l2.bias.add_(0.01)
        v3 = tv.log_all(net, result=0.7, name="mlp", repo=mate).id
        op(
            "`push` of mlp v3 from the teammate: 1 layer changed",
            lambda: remotes.push(m, "origin", progress=False),
            unique_bytes(m, [v3], [v2]),
        )
    finally:
        proc.terminate()
        proc.wait()

    print("| operation | received | sent | unique bytes it needed | target |")  # on the wire, all included
    print("|---|---|---|---|---|")
    for label, rec, sent, uq, target in rows:
        ok = ""
        if target.startswith("<"):
            ok = f"{target}: {'met' if (rec < 20 * 1024 if target.startswith('< 20') else rec <= 1.2 * uq + 40 * 1024) else 'MISSED'}"
            if uq:
                ok += f" ({rec / uq:.2f}x unique)"
        print(f"| {label} | {kib(rec)} | {kib(sent)} | {kib(uq) if uq else '-'} | {ok} |")
    print(
        f"\nno-op pull: {kib(noop)} (target < 20 KiB); {a.new} new entries: {kib(small)} for {kib(uniq)} unique "
        f"= {small / uniq:.2f}x (target <= 1.2x + 40 KiB = {kib(int(1.2 * uniq + 40 * 1024))})"
    )
    for r in (origin, mate, solo):
        out = subprocess.run(["git", "fsck", "--no-dangling"], cwd=r, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr


if __name__ == "__main__":
    main()
