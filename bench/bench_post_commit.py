"""post-commit pass with N dirty-tree entries (distinct patches) on the parent commit, timed.

Why: each such entry used to cost three git processes per commit (issue 14, D18); a patch that
cannot give HEAD's tree is now skipped without running git. Baseline side by side: run it once
with the tree under test and once with ``PYTHONPATH=<old checkout>`` from another directory.

    python bench/bench_post_commit.py 60
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
import time


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    d = tempfile.mkdtemp()

    def run(*a: str) -> None:
        subprocess.run(a, cwd=d, check=True, capture_output=True)

    run("git", "init", "-q")
    run("git", "config", "user.email", "a@b")
    run("git", "config", "user.name", "a")
    with open(os.path.join(d, "model.py"), "w") as f:
        f.write("import torch\nclass Net(torch.nn.Linear):\n    def __init__(self):\n        super().__init__(2, 2)\n")
    run("git", "add", ".")
    run("git", "commit", "-qm", "m")
    sys.path.insert(0, d)
    os.chdir(d)
    import pygit2

    import tvault_git as tvault
    from tvault_git import hooks

    net = importlib.import_module("model").Net
    for i in range(n):
        with open(os.path.join(d, "notes.py"), "w") as f:
            f.write(f"x = {i}\n")
        if i == 0:
            run("git", "add", "-N", "notes.py")
        tvault.log_all(net(), result=0.1)
    with open(os.path.join(d, "notes.py"), "w") as f:
        f.write("x = -1\n")
    run("git", "add", "notes.py")
    run("git", "commit", "-qm", "c")
    t = time.perf_counter()
    hooks.post_commit(pygit2.Repository(d))
    print(f"post-commit with {n} dirty entries on the parent: {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
