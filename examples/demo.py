"""The tvault-git demo: train, log, change the model, log again, then find and diff.

Everything happens in a temporary git repository; nothing outside it changes.
Run: bash scripts/demo.sh   (or .venv/bin/python examples/demo.py)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

MODEL_V1 = '''
import torch
import torch.nn as nn
import torch.nn.functional as F

HIDDEN = 32  # width of the hidden layers


def activation(x):
    return F.relu(x)


class MLP(nn.Module):
    """A small classifier for the synthetic two-moons-like data."""

    def __init__(self, d_in=2, n_classes=2):
        super().__init__()
        self.fc1 = nn.Linear(d_in, HIDDEN)
        self.fc2 = nn.Linear(HIDDEN, n_classes)

    def forward(self, x):
        return self.fc2(activation(self.fc1(x)))
'''

TRAIN = """
import sys
import torch
import tvault_git as tvault
from model import MLP

lr = float(sys.argv[1])
torch.manual_seed(0)
x = torch.randn(512, 2)
y = ((x[:, 0] * x[:, 1]) > 0).long()          # synthetic XOR-like labels
model = MLP()
opt = torch.optim.Adam(model.parameters(), lr=lr)
for step in range(200):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
acc = (model(x).argmax(1) == y).float().mean()

# the one line:
entry = tvault.log_all(model, tags={"lr": lr}, result=acc.item(), optimizer=opt,
                       metrics={"loss": loss.item()}, name="xor-mlp")
print(f"logged {entry.id[:10]} as {entry.ref}: acc={acc.item():.3f} loss={loss.item():.3f}")
"""


def sh(cwd: str, *cmd: str, show: bool = True) -> str:
    if show:
        print(f"\n$ {' '.join(cmd)}", flush=True)
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    out = p.stdout + p.stderr
    if show:
        print(out.rstrip(), flush=True)
    if p.returncode not in (0, 1):
        raise SystemExit(f"demo step failed: {' '.join(cmd)}")
    return out


def has_command(cwd: str, name: str) -> bool:
    return subprocess.run(["git", "tvault", name, "--help"], cwd=cwd, capture_output=True).returncode == 0


def main() -> None:
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
    os.environ.setdefault("GIT_AUTHOR_NAME", "Demo Researcher")
    os.environ.setdefault("GIT_AUTHOR_EMAIL", "demo@example.com")
    os.environ.setdefault("GIT_COMMITTER_NAME", "Demo Researcher")
    os.environ.setdefault("GIT_COMMITTER_EMAIL", "demo@example.com")
    tmp = tempfile.mkdtemp(prefix="tvault-demo-")
    repo = os.path.join(tmp, "project")
    os.makedirs(repo)
    try:
        print(f"demo repository: {repo}")
        sh(repo, "git", "init", "-q", "-b", "main", show=False)
        with open(os.path.join(repo, "model.py"), "w") as f:
            f.write(textwrap.dedent(MODEL_V1).lstrip())
        with open(os.path.join(repo, "train.py"), "w") as f:
            f.write(textwrap.dedent(TRAIN).lstrip())
        sh(repo, "git", "add", ".", show=False)
        sh(repo, "git", "commit", "-q", "-m", "MLP with ReLU", show=False)

        print("\n== train twice on the first commit (two learning rates)")
        sh(repo, sys.executable, "train.py", "0.01")
        sh(repo, sys.executable, "train.py", "0.001")

        print("\n== change the model: GELU activation and a wider hidden layer, commit, train again")
        src = open(os.path.join(repo, "model.py")).read()
        src = src.replace("return F.relu(x)", "return F.gelu(x)").replace("HIDDEN = 32", "HIDDEN = 64")
        open(os.path.join(repo, "model.py"), "w").write(src)
        sh(repo, "git", "commit", "-q", "-am", "GELU, wider hidden layer", show=False)
        sh(repo, sys.executable, "train.py", "0.01")

        sh(repo, "git", "tvault", "log")
        sh(repo, "git", "tvault", "show", "HEAD:0")
        sh(repo, "git", "log", "--notes=tvault", "--format=%h %s%n%N")
        if has_command(repo, "find"):
            sh(repo, "git", "tvault", "find", "--hash", "HEAD~1")
            sh(repo, "git", "tvault", "find", "--min", "0.9")
            sh(repo, "git", "tvault", "find", "--tag", "lr", "0.01")
        if has_command(repo, "diff"):
            sh(repo, "git", "tvault", "diff", "HEAD~1:0", "HEAD:0")
        out = os.path.join(tmp, "best.safetensors")
        sh(repo, "git", "tvault", "export", "HEAD:0", out)
        sh(repo, "git", "fsck", "--no-progress")
        print("\ndemo finished: every step above ran on a real git repository")
    finally:
        if os.environ.get("TVAULT_DEMO_KEEP"):
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
