"""Does ``log_all`` slow down as one commit's note grows? First-100 vs last-100 median.

Run: .venv/bin/python bench/bench_log_growth.py [--entries 2000]

Logs a small model (new values each time, so every entry has new weights) again and again on
one training commit, and prints the median time of the first 100 and the last 100 calls and
their ratio (the target: last-100 <= 1.3x first-100). Both figures come from the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.bench_core import scratch_repo  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=2000)
    a = ap.parse_args()
    import torch

    import tvault_git as tvault

    tmp, repo = scratch_repo("tvault-bench-growth-")
    try:
        torch.manual_seed(0)
        m = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.Linear(16, 4))
        times = []
        for i in range(a.entries):
            with torch.no_grad():
                for p in m.parameters():
                    p.add_(0.01)
            t = time.perf_counter()
            tvault.log_all(m, result=i / a.entries, name="grow", repo=repo)
            times.append(time.perf_counter() - t)
        first, last = statistics.median(times[:100]), statistics.median(times[-100:])
        print("| entries on one commit | first-100 median | last-100 median | last / first |")
        print("|---|---|---|---|")
        print(f"| {a.entries:,} | {first * 1e3:.1f} ms | {last * 1e3:.1f} ms | {last / first:.2f}x |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
