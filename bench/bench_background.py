"""Background logging: how long ``log_all(background=True)`` blocks training, and what a log costs.

Run: .venv/bin/python bench/bench_background.py [--mb 1024] [--repeat 3]

Side by side in one run, on the same state_dict and disk (best of ``--repeat``
interleaved rounds, see bench_core.side_by_side):
- blocking time of a background ``log_all`` (steady state: the per-model
  snapshot buffer already exists; the first call, which allocates it, is
  reported apart) against ``safetensors.torch.save_file``, with the copy and
  with ``snapshot="view"`` (the caller promises not to change the weights);
- total time until the background entry is published, against a foreground
  ``log_all`` of the same weights;
- the foreground ``log_all`` against ``torch.save``, ``safetensors`` and the
  two-pass SHA-1 floor (object id + pack trailer: every byte hashed twice),
  measured here on one core and spread over the writer's lanes.
Every log stores new weights (each tensor perturbed first) into a fresh repo.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.bench_core import changed, make_model, scratch_repo, side_by_side  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=1024, help="state_dict size in MiB (float32)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import torch
    from safetensors.torch import save_file

    import tvault_git as tvault
    from tvault_git.storage import packwrite

    model = make_model(args.mb)
    sd = model.state_dict()
    size = sum(t.numel() * t.element_size() for t in sd.values())
    views = [memoryview(t.reshape(-1).view(torch.uint8).numpy()) for t in sd.values()]
    lanes = max(1, min(packwrite._cpus(), packwrite._MAX_LANES))
    tmp = scratch_repo("tvault-bench-bg-")[0]  # save_file / torch.save targets
    dirs: list[str] = []

    def fresh_repo() -> str:
        d, repo = scratch_repo("tvault-bench-bg-")
        dirs.append(d)
        return repo

    def cleanup() -> None:
        while dirs:
            shutil.rmtree(dirs.pop(), ignore_errors=True)

    def sha1_pass(vs: list[memoryview]) -> None:
        for v in vs:
            hashlib.sha1(v).digest()

    def sha1_two_pass_serial() -> None:
        sha1_pass(views)
        sha1_pass(views)

    def sha1_two_pass_lanes() -> None:
        shares: list[list[memoryview]] = [[] for _ in range(lanes)]
        for i, v in enumerate(views):
            shares[i % lanes].append(v)
        with ThreadPoolExecutor(lanes) as pool:
            list(pool.map(lambda vs: (sha1_pass(vs), sha1_pass(vs)), shares))

    counter = iter(range(10**6))

    def st_save() -> None:
        path = os.path.join(tmp, f"m{next(counter)}.safetensors")
        save_file(sd, path)
        os.unlink(path)  # unlink cost is in the timing, a few ms

    def pt_save() -> None:
        path = os.path.join(tmp, f"m{next(counter)}.pt")
        torch.save(sd, path)
        os.unlink(path)

    # Every log: new weights (perturbed untimed before it), a fresh repository made untimed.
    pending: dict = {}

    def timed_log(background: bool, mode: str = "copy") -> float:
        changed(model)
        repo = fresh_repo()
        os.sync()
        t0 = time.perf_counter()
        if background:
            h = tvault.log_all(model, repo=repo, result=1.0, background=True, snapshot=mode)
            pending["block"] = time.perf_counter() - t0
            h.result()
        else:
            tvault.log_all(model, repo=repo, result=1.0)
        return time.perf_counter() - t0

    tvault.log_all(torch.nn.Linear(2, 2), repo=fresh_repo())  # imports and first-call setup, untimed
    changed(model)
    t0 = time.perf_counter()
    h = tvault.log_all(model, repo=fresh_repo(), result=1.0, background=True)
    first_block = time.perf_counter() - t0
    h.result()
    cleanup()

    rounds: dict[str, list[float]] = {k: [] for k in ("fg", "bg_total", "bg_block", "view_total", "view_block")}

    def fg() -> None:
        rounds["fg"].append(timed_log(False))
        cleanup()

    def bg() -> None:
        rounds["bg_total"].append(timed_log(True))
        rounds["bg_block"].append(pending["block"])
        cleanup()

    def bg_view() -> None:
        rounds["view_total"].append(timed_log(True, "view"))
        rounds["view_block"].append(pending["block"])
        cleanup()

    base = side_by_side(
        {
            "safetensors": st_save,
            "torch_save": pt_save,
            "sha1_serial": sha1_two_pass_serial,
            "sha1_lanes": sha1_two_pass_lanes,
            "fg": fg,
            "bg": bg,
            "bg_view": bg_view,
        },
        args.repeat,
    )
    fg_s, bg_total, bg_block = min(rounds["fg"]), min(rounds["bg_total"]), min(rounds["bg_block"])
    st, ts = base["safetensors"], base["torch_save"]
    mib = size / 2**20
    print(
        f"state_dict: {mib:.0f} MiB float32, {len(sd)} tensors; best of {args.repeat} interleaved rounds; writer lanes: {lanes}"
    )
    print(f"  safetensors.save_file          {st:7.3f} s")
    print(f"  torch.save                     {ts:7.3f} s")
    print(
        f"  SHA-1 two passes, 1 core       {base['sha1_serial']:7.3f} s   ({2 * mib / base['sha1_serial']:.0f} MiB/s hashed)"
    )
    print(f"  SHA-1 two passes, {lanes} lanes      {base['sha1_lanes']:7.3f} s")
    print(
        f"  log_all (foreground)           {fg_s:7.3f} s   {fg_s / ts:.2f}x torch.save, {fg_s / st:.2f}x safetensors, "
        f"{fg_s / base['sha1_lanes']:.2f}x the SHA-1 floor ({fg_s / base['sha1_serial']:.2f}x its 1-core time)"
    )
    print(f"  log_all(background) blocks     {bg_block:7.3f} s   {bg_block / st:.2f}x safetensors (target <= 0.25x)")
    print(f"    first call (buffer allocated) {first_block:6.3f} s   {first_block / st:.2f}x safetensors")
    print(f"  log_all(background) published  {bg_total:7.3f} s   {bg_total / fg_s:.2f}x foreground (target <= 1.15x)")
    vb, vt = min(rounds["view_block"]), min(rounds["view_total"])
    print(
        f"  snapshot='view' (no copy)      {vb:7.3f} s   {vb / st:.2f}x safetensors; published {vt:.3f} s, {vt / fg_s:.2f}x foreground"
    )
    pairs = ", ".join(f"{b / f:.2f}x" for f, b in zip(rounds["fg"], rounds["bg_total"]))
    print(
        f"    per round: foreground {' '.join(f'{x:.2f}' for x in rounds['fg'])} s; background {' '.join(f'{x:.2f}' for x in rounds['bg_total'])} s ({pairs})"
    )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
