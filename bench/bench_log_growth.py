"""Does ``log_all`` slow down as one commit's note grows? First-100 vs last-100 median.

Run: .venv/bin/python bench/bench_log_growth.py [--entries 2000] [--dir /dev/shm]

Logs a small model (new values each time, so every entry has new weights) again and again on
one training commit, and prints the median time of the first 100 and the last 100 calls and
their ratio (the target: last-100 <= 1.3x first-100). All figures come from the same run.

The baseline side by side: the last 100 calls alternate with 100 calls on a second, new commit of
the same repository (a ``git checkout`` between calls, not timed). Those are "the first 100 on a
commit" again, measured under the same repository and file-system state as the last 100 on the
big one, so ``last / new commit`` is what the entries on one commit cost, with everything else
that grew (loose objects, packs, the disk's write-back) held equal. The file system of the temp
directory is printed: on some (this VM's ext4) every small file write slows down as a run writes
more, on any commit; on tmpfs nothing does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.bench_core import scratch_repo  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=2000)
    ap.add_argument("--dir", default=None, help="where the temp repository goes (default: the temp dir)")
    a = ap.parse_args()
    if a.dir:
        tempfile.tempdir = a.dir
    import torch

    import tvault_git as tvault

    tmp, repo = scratch_repo("tvault-bench-growth-")
    os.sync()  # what earlier processes left to write back (a big rm -rf, say) must not slow the first 100
    try:
        torch.manual_seed(0)
        m = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.Linear(16, 4))
        times, fresh = [], []

        def one(i: int, into: list[float]) -> None:
            with torch.no_grad():
                for p in m.parameters():
                    p.add_(0.01)
            t = time.perf_counter()
            tvault.log_all(m, result=i / a.entries, name="grow", repo=repo)
            into.append(time.perf_counter() - t)

        for i in range(a.entries - 100):
            one(i, times)
        big = _git(repo, "rev-parse", "HEAD")
        _git(repo, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "--allow-empty", "-m", "new")
        new = _git(repo, "rev-parse", "HEAD")
        for i in range(a.entries - 100, a.entries):
            _git(repo, "checkout", "-q", big)
            one(i, times)
            _git(repo, "checkout", "-q", new)
            one(i, fresh)
        first, last, base = (statistics.median(x) for x in (times[:100], times[-100:], fresh))
        print(f"file system of the temp directory: {_fs_of(tmp)}")
        print(
            "| entries on one commit | first-100 median | last-100 median | last / first "
            "| new commit, same time | last / new commit |"
        )
        print("|---|---|---|---|---|---|")
        print(
            f"| {a.entries:,} | {first * 1e3:.1f} ms | {last * 1e3:.1f} ms | {last / first:.2f}x "
            f"| {base * 1e3:.1f} ms | {last / base:.2f}x |"
        )
        _note_writes(repo, big)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _note_writes(repo: str, commit: str) -> None:
    """The note blob's write alone, at its final size: ours (gitutil/loose.py) beside libgit2's
    ``create_blob`` and the SHA-1 floor of the same bytes, each a new line appended (alternating)."""
    import hashlib

    import pygit2

    from tvault_git.gitutil import loose

    r = pygit2.Repository(repo)
    text = _git(repo, "notes", "--ref=tvault", "show", commit).encode() + b"\n"
    ours, theirs, floor = [], [], []
    for i in range(30):
        text += b"model %d %040x grow result=0.5\n" % (10**6 + i, i)
        t = time.perf_counter()
        loose.write_blob(r, text)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        r.create_blob(text + b"\n")
        theirs.append(time.perf_counter() - t)
        t = time.perf_counter()
        hashlib.sha1(text).digest()
        floor.append(time.perf_counter() - t)
    med = [statistics.median(x) * 1e3 for x in (ours, theirs, floor)]
    print(f"\nwriting the note blob at {len(text) / 1e3:.0f} KB (medians of 30 appends):")
    print("| gitutil/loose.py | libgit2 create_blob | SHA-1 of the bytes | ours / libgit2 | ours / SHA-1 |")
    print("|---|---|---|---|---|")
    print(f"| {med[0]:.2f} ms | {med[1]:.2f} ms | {med[2]:.2f} ms | {med[0] / med[1]:.2f}x | {med[0] / med[2]:.2f}x |")


def _git(repo: str, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", repo, "-c", "gc.auto=0", *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def _fs_of(path: str) -> str:
    """The file system type holding ``path`` (the longest mount point above it), from /proc/mounts."""
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 2 and os.path.realpath(path).startswith(parts[1]) and len(parts[1]) > len(best):
                    best, kind = parts[1], parts[2]
    except OSError:
        pass
    return f"{kind} ({best or '?'})"


if __name__ == "__main__":
    main()
