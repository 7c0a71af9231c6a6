"""``git tvault import`` of a folder of checkpoints where most tensors do not change.

Run: .venv/bin/python bench/bench_import.py [--mb 100] [--checkpoints 20] [--changed 2] [--batch 4]

A stack of 1024x1024 Linear layers of about ``--mb`` MB; each checkpoint changes only the last
``--changed`` layers (fine-tuning a head, or an EMA of a few layers), saved with ``torch.save`` as a
state_dict. Checkpoints are written and imported ``--batch`` at a time and deleted after, so the
disk holds the scratch repository plus one batch (about 0.8 GB with the defaults), never the whole
run. Baselines measured in the same run: ``torch.save`` of the same checkpoints (what the training
script paid) and ``torch.load(weights_only=True)`` of them (what import must at least read).
Prints: import time per checkpoint and its ratio to save and load, the dedup ratio (tensor bytes of
the checkpoints / bytes written into the repository) and the repository's growth on disk against
the checkpoint files' total size.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.bench_core import scratch_repo  # noqa: E402


def _du(path: str) -> int:
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(d, f))
            except OSError:
                pass
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--checkpoints", type=int, default=20)
    ap.add_argument("--changed", type=int, default=2, help="layers that change between checkpoints")
    ap.add_argument("--batch", type=int, default=4, help="checkpoint files on disk at a time")
    args = ap.parse_args()

    import pygit2
    import torch

    from tvault_git.api import ckptimport

    layers = max(args.changed + 1, round(args.mb * 1024 * 1024 / (1024 * 1024 * 4 + 4096)))
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(1024, 1024) for _ in range(layers)])
    tmp, repo_path = scratch_repo("tvault-bench-import-")
    repo = pygit2.Repository(repo_path)
    git_dir = os.path.join(repo_path, ".git")
    before = _du(git_dir)
    files_total = logical = written = 0
    t_save = t_load = t_import = 0.0
    done = 0
    try:
        while done < args.checkpoints:
            batch = tempfile.mkdtemp(prefix="ckpts-", dir=tmp)
            for _ in range(min(args.batch, args.checkpoints - done)):
                done += 1
                with torch.no_grad():
                    for layer in list(model)[-args.changed :]:
                        layer.weight.add_(0.001)
                path = os.path.join(batch, f"epoch_{done}.pt")
                t = time.perf_counter()
                torch.save(model.state_dict(), path)
                t_save += time.perf_counter() - t
                files_total += os.path.getsize(path)
                t = time.perf_counter()
                torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                sd = torch.load(path, map_location="cpu", weights_only=True)
                del sd
                t_load += time.perf_counter() - t
            t = time.perf_counter()
            rep = ckptimport.import_checkpoints(repo, [batch], name="bench")
            t_import += time.perf_counter() - t
            logical += rep.logical_bytes
            written += rep.new_bytes
            shutil.rmtree(batch)
        growth = _du(git_dir) - before
        n = args.checkpoints
        mib = 1024 * 1024
        print(
            f"{n} checkpoints of {files_total / n / mib:.0f} MiB ({layers} Linear(1024,1024) layers, "
            f"{args.changed} changed per checkpoint)"
        )
        print(f"import:            {t_import:7.2f} s  ({t_import / n * 1000:.0f} ms per checkpoint)")
        print(f"torch.save (base): {t_save:7.2f} s  -> import/save {t_import / t_save:.2f}x")
        print(f"torch.load (base): {t_load:7.2f} s  -> import/load {t_import / t_load:.2f}x")
        print(
            f"dedup:             {logical / mib:7.0f} MiB of tensors, {written / mib:.0f} MiB written -> "
            f"{logical / max(written, 1):.1f}x"
        )
        print(
            f"disk:              checkpoint files {files_total / mib:.0f} MiB, repository grew {growth / mib:.0f} MiB -> "
            f"{files_total / max(growth, 1):.1f}x smaller"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
