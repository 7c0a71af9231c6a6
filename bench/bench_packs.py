"""Many entries, many packs: object lookups with small packs merged (packs.py) and without.

Run: .venv/bin/python bench/bench_packs.py [--entries 2000]

Logs a small model (three Linear layers, new values each time) again and
again into two scratch repos, one with merging as shipped and one with it
switched off, and at a few registry sizes times, in each: one more
``log_all``, ``load`` of the first entry, and ``git cat-file -p`` of it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.bench_core import scratch_repo  # noqa: E402


def run(entries: int, merge: bool) -> list[tuple[int, int, float, float, float]]:
    import torch

    import tvault_git as tvault
    from tvault_git.storage import packmerge as packs

    packs.MERGE_AT = 32 if merge else 10**9
    tmp, repo = scratch_repo("tvault-bench-packs-")
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Linear(64, 64), torch.nn.Linear(64, 8))
    marks = {10, 100, 500, 1000, 2000, 5000, 10000}
    first = None
    rows = []
    for i in range(1, entries + 1):
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.01)
        e = tvault.log_all(m, repo=repo, result=float(i))
        first = first or e
        if i in marks or i == entries:
            t = time.perf_counter()
            tvault.log_all(m, repo=repo, result=0.0)
            t_log = time.perf_counter() - t
            t = time.perf_counter()
            tvault.load(first.id, repo=repo)
            t_load = time.perf_counter() - t
            t = time.perf_counter()
            subprocess.run(["git", "-C", repo, "cat-file", "-p", first.id], check=True, capture_output=True)
            t_cat = time.perf_counter() - t
            n = len([p for p in os.listdir(os.path.join(repo, ".git", "objects", "pack")) if p.endswith(".pack")])
            rows.append((i, n, t_log, t_load, t_cat))
    subprocess.run(["rm", "-rf", tmp])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=2000)
    args = ap.parse_args()
    merged, unmerged = run(args.entries, True), run(args.entries, False)
    print(
        f"{'entries':>8} | {'packs':>5} {'log_all':>8} {'load':>7} {'cat-file':>8} | unmerged: {'packs':>5} {'log_all':>8} {'load':>7} {'cat-file':>8}"
    )
    for a, b in zip(merged, unmerged):
        print(
            f"{a[0]:>8} | {a[1]:>5} {a[2] * 1000:>6.0f}ms {a[3] * 1000:>5.0f}ms {a[4] * 1000:>6.0f}ms |           "
            f"{b[1]:>5} {b[2] * 1000:>6.0f}ms {b[3] * 1000:>5.0f}ms {b[4] * 1000:>6.0f}ms"
        )


if __name__ == "__main__":
    main()
