"""Weights diff speed and memory: ``git tvault diff`` of two models against ``torch.load`` of both.

Run: .venv/bin/python bench/bench_diff.py [--mb 1024 --mb 100]

Model B is model A after a "fine-tuning" step that touched every tensor, the
worst case: every tensor must be read from both entries and compared. The
baseline is what a researcher would do without tvault: ``torch.load`` both
checkpoint files (``weights_only=True``), in the same run on the same disk.
Peak memory is measured in a fresh subprocess: RSS growth during the diff,
which must stay at a few tensors, not two models.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.bench_core import make_model, scratch_repo, side_by_side  # noqa: E402

PEAK = r"""
import json, sys
sys.path.insert(0, {root!r})
from bench.bench_core import PEAK_HELPERS
exec(PEAK_HELPERS)
import torch  # imported before the baseline: its own RSS is not the diff's
from tvault_git.diff import compute as diff
base = status("VmRSS"); reset_peak()
d = diff.diff_entries({repo!r}, {a!r}, {b!r}, sections=["weights"])
assert d["weights"]["counts"].get("values"), d["weights"]["summary"]
print(json.dumps(status("VmHWM") - base))
"""


def run_size(mb: int, repeat: int) -> dict:
    import torch

    import tvault_git as tvault
    from tvault_git.diff import compute as diff

    tmp, repo = scratch_repo("tvault-bench-diff-")
    m = make_model(mb)
    a = tvault.log_all(m, repo=repo)
    fa = os.path.join(tmp, "a.pt")
    torch.save(m.state_dict(), fa)
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(1.001).add_(1e-4)
    b = tvault.log_all(m, repo=repo)
    fb = os.path.join(tmp, "b.pt")
    torch.save(m.state_dict(), fb)
    size = sum(t.numel() * t.element_size() for t in m.state_dict().values())
    del m

    def load_both() -> None:
        x = torch.load(fa, weights_only=True)
        y = torch.load(fb, weights_only=True)
        del x, y

    def run_diff() -> None:
        d = diff.diff_entries(repo, a.id, b.id, sections=["weights"])
        assert d["weights"]["counts"].get("values"), d["weights"]["summary"]

    t = side_by_side({"load": load_both, "diff": run_diff}, repeat)
    t_load, t_diff = t["load"], t["diff"]
    code = PEAK.format(root=os.path.dirname(HERE), repo=repo, a=a.id, b=b.id)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    peak = json.loads(p.stdout.strip().splitlines()[-1])
    subprocess.run(["rm", "-rf", tmp])
    return {
        "mb": mb,
        "torch_load_both_s": t_load,
        "diff_s": t_diff,
        "ratio": t_diff / t_load,
        "peak_diff_mb": peak,
        "model_mb": size / 2**20,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, action="append", help="state_dict size in MiB (repeatable)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"{'size':>6} {'load both s':>11} {'diff s':>7} {'diff/load':>9} {'peak RSS growth':>16}")
    for mb in args.mb or [100, 1024]:
        r = run_size(mb, args.repeat)
        print(
            f"{r['mb']:>4}MB {r['torch_load_both_s']:>11.2f} {r['diff_s']:>7.2f} {r['ratio']:>9.2f} "
            f"{r['peak_diff_mb']:>13.0f}MB  (one model: {r['model_mb']:.0f}MB)",
            flush=True,
        )
    print("diff/load < 1 means the weights diff is faster than torch.load of the two checkpoints")


if __name__ == "__main__":
    main()
