#!/usr/bin/env python3
"""Benchmark ``git tvault find`` on a small and a 100,000-entry registry.

The big registry is written directly as git objects with ``git fast-import``
(entries, training commits, notes, packed refs) in well under a minute, so the
benchmark measures find, not log_all. Every timing is the wall time of the
real ``git tvault`` CLI in a subprocess (median of several runs), printed next
to ``git log -1`` in the same repo as the porcelain baseline.

    .venv/bin/python bench/bench_find.py [--entries 100000] [--commits 1000] [--dir bench/out/find]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

ENV = dict(
    os.environ,
    NO_COLOR="1",
    GIT_AUTHOR_NAME="Bench",
    GIT_AUTHOR_EMAIL="bench@example.com",
    GIT_COMMITTER_NAME="Bench",
    GIT_COMMITTER_EMAIL="bench@example.com",
)
ENV["PATH"] = os.path.dirname(sys.executable) + os.pathsep + ENV["PATH"]


def run(repo: str, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    p = subprocess.run(list(args), cwd=repo, input=input, capture_output=True, env=ENV)
    if p.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args)} failed: {p.stderr.decode()[-2000:]}")
    return p


def timed(repo: str, args: list[str], n: int = 5) -> tuple[float, bytes]:
    times, out = [], b""
    for _ in range(n):
        t = time.perf_counter()
        out = run(repo, *args).stdout
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def _data(b: bytes) -> bytes:
    return b"data %d\n" % len(b) + b + b"\n"


def build(repo: str, n_entries: int, n_commits: int, start: int = 0, seed: int = 0) -> list[str]:
    """Write ``n_entries`` entries spread over ``n_commits`` new training commits; returns entry ids."""
    rnd = random.Random(seed)
    stream: list[bytes] = []
    mark = 1
    # shared small parts of every entry
    arch = mark
    stream.append(
        b"blob\nmark :%d\n" % mark + _data(b"Net(\n  (fc): Linear(in_features=4, out_features=2, bias=True)\n)\n")
    )
    mark += 1
    weights = mark
    stream.append(b"blob\nmark :%d\n" % mark + _data(b'{"chunk_bytes": 33554432, "tensors": {}}\n'))
    mark += 1
    source = mark
    stream.append(b"blob\nmark :%d\n" % mark + _data(b'{"external": [], "missing": [], "objects": []}\n'))
    mark += 1
    commit_marks = []
    ts0 = 1_700_000_000 + start * 60
    have_main = run(repo, "git", "rev-parse", "-q", "--verify", "refs/heads/main").returncode == 0
    for c in range(n_commits):
        f = mark
        stream.append(b"blob\nmark :%d\n" % mark + _data(b"step %d\n" % (start + c)))
        mark += 1
        cm = mark
        mark += 1
        stream.append(
            b"commit refs/heads/main\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\n" % (cm, ts0 + c)
            + _data(b"train step %d" % (start + c))
            + (b"from refs/heads/main^0\n" if c == 0 and have_main else b"")
            + b"M 100644 :%d train.txt\n\n" % f
        )
        commit_marks.append(cm)
    entry_marks = []  # (entry mark, commit mark)
    note_meta = []  # (name, result, created) for each entry's note line, as log_all writes it
    lrs, sizes = [0.1, 0.01, 0.001, 0.0001], ["0.5x", "1x", "2x", "4x"]
    for i in range(n_entries):
        k = start + i
        cm = commit_marks[i * n_commits // n_entries]
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts0 + i)) + f".{k % 1000000:06d}+00:00"
        man = {
            "format": "1.0",
            "kind": "tvault-entry",
            "created": created,
            "author": {"name": f"user{k % 7}", "email": f"user{k % 7}@example.com"},
            "commit": None,
            "branch": "main",
            "dirty": False,
            "name": f"model{k % 50}",
            "message": None,
            "tags": {"lr": lrs[k % 4], "size": sizes[(k // 4) % 4], "run": k % 1000},
            "result": round(rnd.random(), 6),
            "metrics": {"acc": round(rnd.random(), 6), "loss": round(rnd.random() * 3, 6)},
            "model": {"class": "model.Net", "parameters": 10, "tensors": 0, "bytes": 0},
            "versions": {},
        }
        mb = mark
        mark += 1
        stream.append(b"blob\nmark :%d\n" % mb + _data(json.dumps(man, indent=1, sort_keys=True).encode()))
        em = mark
        mark += 1
        stream.append(
            b"reset refs/tvault/build\ncommit refs/tvault/build\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\n"
            % (em, ts0 + i)
            + _data(b"tvault: entry %d" % k)
            + b"M 100644 :%d tvault.json\nM 100644 :%d architecture.txt\nM 100644 :%d weights.json\nM 100644 :%d source.json\n\n"
            % (mb, arch, weights, source)
        )
        entry_marks.append((em, cm))
        note_meta.append((man["name"], man["result"], created))
    marks_file = os.path.join(repo, ".git", "bench-marks")
    run(repo, "git", "fast-import", "--quiet", f"--export-marks={marks_file}", input=b"".join(stream))
    sha = {}
    for line in open(marks_file):
        m, s = line.split()
        sha[int(m[1:])] = s
    run(repo, "git", "update-ref", "-d", "refs/tvault/build")
    # refs: append to packed-refs (100k loose ref files would be slow to write and to list)
    ids = [sha[em] for em, _ in entry_marks]
    run(repo, "git", "pack-refs", "--all")
    with open(os.path.join(repo, ".git", "packed-refs"), "a") as f:
        for eid in ids:
            f.write(f"{eid} refs/tvault/entries/{eid}\n")
    # notes: one line per entry on its training commit, as notes.add writes them
    per_commit: dict[str, list[str]] = {}
    for (_em, cm), eid, (nm, res, created) in zip(entry_marks, ids, note_meta):
        per_commit.setdefault(sha[cm], []).append(f"{eid} {nm} result={res} created={created}")
    have_notes = run(repo, "git", "rev-parse", "-q", "--verify", "refs/notes/tvault").returncode == 0
    notes = [
        b"commit refs/notes/tvault\ncommitter Bench <bench@example.com> %d +0000\n" % (ts0 + n_entries)
        + _data(b"tvault: bench notes")
    ]
    if have_notes:
        notes.append(b"from refs/notes/tvault^0\n")
    for commit, es in per_commit.items():
        body = "".join(f"model {j} {e}\n" for j, e in enumerate(es)).encode()
        notes.append(b"N inline %s\n" % commit.encode() + _data(body))
    run(repo, "git", "fast-import", "--quiet", input=b"".join(notes) + b"\n")
    return ids


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--commits", type=int, default=1000)
    ap.add_argument("--dir", default=os.path.join(os.path.dirname(__file__), "out", "find"))
    a = ap.parse_args()
    shutil.rmtree(a.dir, ignore_errors=True)
    small, big = os.path.join(a.dir, "small"), os.path.join(a.dir, "big")
    for d in (small, big):
        os.makedirs(d)
        run(d, "git", "init", "-q", "-b", "main")

    print("| case | wall time | baseline `git log -1` | ratio |")
    print("|---|---|---|---|")

    def row(label: str, repo: str, args: list[str], n: int = 5) -> bytes:
        base, _ = timed(repo, ["git", "log", "-1", "--oneline"], n)
        t, out = timed(repo, args, n)
        print(f"| {label} | {t * 1000:.0f} ms | {base * 1000:.0f} ms | {t / base:.1f}x |", flush=True)
        return out

    build(small, 20, 4)
    run(small, "git", "tvault", "find")  # build the cache once
    row("small registry (20): `find --min 0.5`", small, ["git", "tvault", "find", "--min", "0.5"])
    row("small registry (20): `find --tag lr 0.01`", small, ["git", "tvault", "find", "--tag", "lr", "0.01"])

    t = time.perf_counter()
    build(big, a.entries, a.commits)
    print(
        f"\n(built {a.entries:,} entries on {a.commits:,} commits in {time.perf_counter() - t:.1f} s)\n",
        file=sys.stderr,
    )
    t = time.perf_counter()
    run(big, "git", "tvault", "find", "--min", "0.9999")
    print(f"| {a.entries:,} entries: first find (builds the cache) | {(time.perf_counter() - t):.2f} s | | |")
    row(
        f"{a.entries:,}: `find --min 0.999 --max 1` (result)",
        big,
        ["git", "tvault", "find", "--min", "0.999", "--max", "1"],
    )
    row(f"{a.entries:,}: `find --tag run 7` (tag, int)", big, ["git", "tvault", "find", "--tag", "run", "7"])
    row(
        f"{a.entries:,}: `find --tag lr 0.01 --tag size 2x -n 20`",
        big,
        ["git", "tvault", "find", "--tag", "lr", "0.01", "--tag", "size", "2x", "-n", "20"],
    )
    row(f"{a.entries:,}: `find --where 'acc>=0.999'` (metric)", big, ["git", "tvault", "find", "--where", "acc>=0.999"])
    row(
        f"{a.entries:,}: `find --where 'loss<0.01' --where 'acc>0.5'`",
        big,
        ["git", "tvault", "find", "--where", "loss<0.01", "--where", "acc>0.5"],
    )
    row(f"{a.entries:,}: `find --best acc`", big, ["git", "tvault", "find", "--best", "acc"])
    row(
        f"{a.entries:,}: `find --hash main~{a.commits // 2}`",
        big,
        ["git", "tvault", "find", "--hash", f"main~{a.commits // 2}"],
    )
    row(f"{a.entries:,}: `log -n 20`", big, ["git", "tvault", "log", "-n", "20"])
    row(
        f"{a.entries:,}: `find --tag lr 0.01 --json` (25,000 rows)",
        big,
        ["git", "tvault", "find", "--tag", "lr", "0.01", "--json"],
        n=3,
    )

    # New entries arrive (as from a fetch or a local log): the first find must see them.
    new = build(big, 100, 2, start=a.entries, seed=1)
    t = time.perf_counter()
    rows = json.loads(
        run(
            big, "git", "tvault", "find", "--tag", "run", str(a.entries % 1000), "--since", "2000-01-01", "--json"
        ).stdout
    )
    dt = time.perf_counter() - t
    got = {r["id"] for r in rows}
    ok = new[0] in got
    print(f"| {a.entries:,} + 100 new entries: first find after they arrive | {dt * 1000:.0f} ms | | correct: {ok} |")
    total = len(json.loads(run(big, "git", "tvault", "find", "--json").stdout))
    print(f"\n(total entries seen after the update: {total:,}, expected {a.entries + 100:,})", file=sys.stderr)
    if not ok or total != a.entries + 100:
        raise SystemExit("cache missed new entries")


if __name__ == "__main__":
    main()
