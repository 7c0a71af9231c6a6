"""Capture overhead of ``log_all`` on a nanoGPT-sized model file set, and whole-process ``diff`` of two 6 MB entries.

Run: .venv/bin/python bench/bench_capture.py

Capture is everything ``log_all`` does besides writing weights: reading and
checking the model's source (code objects against the file), values and
configuration, the work-tree patch. It is timed on its own (best of 10,
warm, plus the first call of the process) next to the whole ``log_all`` and
``torch.save`` of the same model, in the same run. ``git tvault diff A B`` is
timed as a user runs it (a fresh process each time, bytecode compiled as in an
install), with and without the weights section, next to the interpreter's own
start (``python -c pass``) and ``import pygit2, click`` in the same run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.bench_core import git, scratch_repo, side_by_side  # noqa: E402

MODEL = '''
"""A nanoGPT-like model file: config dataclass, LayerNorm, attention, MLP, blocks, GPT."""
import math
import inspect
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F

BIAS_INIT = 0.0


def new_gelu(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class LayerNorm(nn.Module):
    def __init__(self, ndim, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, input):
        return F.layer_norm(input, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout
        self.flash = hasattr(torch.nn.functional, "scaled_dot_product_attention")

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(new_gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


@dataclass
class GPTConfig:
    block_size: int = 256
    vocab_size: int = 4096
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.constant_(module.bias, BIAS_INIT)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        logits = self.lm_head(x)
        loss = None if targets is None else F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss

    def configure_optimizers(self, weight_decay, learning_rate, betas):
        params = [p for p in self.parameters() if p.requires_grad]
        fused = "fused" in inspect.signature(torch.optim.AdamW).parameters
        return torch.optim.AdamW(params, lr=learning_rate, betas=betas, weight_decay=weight_decay, fused=fused)
'''


def main() -> None:
    import torch

    from tvault_git.api import log
    from tvault_git.capture import live

    tmp, repo = scratch_repo("tvault-bench-capture-")
    with open(os.path.join(repo, "model.py"), "w") as f:
        f.write(textwrap.dedent(MODEL))
    git(repo, "add", ".")
    git(repo, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "nanoGPT-like")
    os.chdir(repo)
    sys.path.insert(0, repo)
    import model as m
    import pygit2

    torch.manual_seed(0)
    net = m.GPT(m.GPTConfig())
    r = pygit2.Repository(repo)
    head = r.head.peel(pygit2.Commit)

    def capture() -> None:
        cap = live.capture_model(net, repo, log._committed_text(head))
        log._work_tree_state(r, head, cap)

    t = time.perf_counter()
    capture()
    first = time.perf_counter() - t
    cap = live.capture_model(net, repo, log._committed_text(head))
    env = dict(
        os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@b"
    )
    os.environ.update(env)
    import tvault_git as tvault

    path = os.path.join(tmp, "gpt.pt")
    best = side_by_side(
        {
            "capture": capture,
            "log_all": lambda: tvault.log_all(net),
            "torch.save": lambda: torch.save(net.state_dict(), path),
        },
        repeat=10,
    )
    a = tvault.log_all(net).id
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(1.01)
    b = tvault.log_all(net).id
    mb = sum(p.numel() * p.element_size() for p in net.state_dict().values()) / 2**20
    cli = [os.path.join(os.path.dirname(sys.executable), "git-tvault")]

    def diff(*extra: str):
        return lambda: subprocess.run(cli + ["diff", a, b, *extra], cwd=repo, env=env, check=True, capture_output=True)

    # a real install has bytecode: compile it here too (this environment may set PYTHONDONTWRITEBYTECODE)
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(os.path.dirname(HERE), "tvault_git")])
    small_a = b
    with torch.no_grad():
        next(p for n, p in net.named_parameters() if n.endswith("ln_f.weight")).add_(0.5)
    small_b = tvault.log_all(net).id

    def run(*argv: str):
        return lambda: subprocess.run(argv, cwd=repo, env=env, check=True, capture_output=True)

    dt = side_by_side(
        {
            "python -c pass": run(sys.executable, "-c", "pass"),
            "import pygit2, click": run(sys.executable, "-c", "import pygit2, click"),
            "diff": diff(),
            "diff (one small tensor changed)": run(*cli, "diff", small_a, small_b),
            "diff --no-weights": diff("--no-weights"),
        },
        repeat=5,
    )
    out = {
        "objects captured": len(cap.objects),
        "model MB": round(mb, 1),
        "capture ms (first call)": round(first * 1000, 1),
        "capture ms (best)": round(best["capture"] * 1000, 1),
        "log_all ms": round(best["log_all"] * 1000, 1),
        "torch.save ms": round(best["torch.save"] * 1000, 1),
        "capture / log_all": round(best["capture"] / best["log_all"], 3),
        "python -c pass s (baseline)": round(dt["python -c pass"], 3),
        "import pygit2, click s": round(dt["import pygit2, click"], 3),
        "diff s": round(dt["diff"], 3),
        "diff (one small tensor changed) s": round(dt["diff (one small tensor changed)"], 3),
        "diff --no-weights s": round(dt["diff --no-weights"], 3),
        "diff / python -c pass": round(dt["diff"] / dt["python -c pass"], 2),
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
