"""Every construct real model code uses is captured, resolved by object and by scope, and diffed.

The ``misc`` corpus reproduces the constructs that were silently dropped on
real research code: from-imported constants, functools.partial bindings,
module-level modules and tensors used in forward, @torch.jit.script helpers,
callables stored on self, closure values of class factories, functions from
installed packages; then whole TorchScript models and notebook cells, and
names that only look like script globals.
"""

from __future__ import annotations

import linecache
import sys
import types

import pytest
import torch
from capture_helpers import capture_warnings, commit_all, diff_json, diff_text, run_script, source
from conftest import import_fresh, write

import tvault_git as tvault


@pytest.fixture
def fresh_modules():
    before = set(sys.modules)
    yield
    for m in set(sys.modules) - before:
        if not m.startswith(("torch", "tvault_git", "numpy")):
            sys.modules.pop(m, None)


CONFIG = """
HIDDEN_MULT = 2
K_GATE = 3
"""

MISC = """
import functools
import torch
import torch.nn as nn
from torch.nn.init import trunc_normal_
from config import HIDDEN_MULT, K_GATE

class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.w = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.w

Norm = functools.partial(RMSNorm, eps=1e-5)
_GELU = nn.GELU(approximate="tanh")
LOGIT_SCALE = torch.tensor(0.5)

@torch.jit.script
def fused_gelu(x):
    return torch.nn.functional.gelu(x) * 1.0

def make_gate(k):
    class Gate(nn.Module):
        def forward(self, x):
            return x[..., :k]
    return Gate

Gate = make_gate(K_GATE)

class Net(nn.Module):
    def __init__(self, d=4, pool=lambda h: h.mean(1)):
        super().__init__()
        self.norm = Norm(d)
        self.up = nn.Linear(d, d * HIDDEN_MULT)
        self.gate = Gate()
        self.pool = pool
        trunc_normal_(self.up.weight, std=0.02)

    def forward(self, x):
        h = fused_gelu(_GELU(self.up(self.norm(x))))
        return self.pool(self.gate(h)) * LOGIT_SCALE
"""

TRAIN = """
import torch
import tvault_git as tvault
from misc import Net
torch.manual_seed(0)
net = Net(pool=lambda h: h.amax(1))
net(torch.randn(2, 3, 4))
print(tvault.log_all(net, name="misc").id)
"""


def _misc(repo):
    write(repo / "config.py", CONFIG)
    write(repo / "misc.py", MISC)
    write(repo / "train.py", TRAIN)
    commit_all(repo, "misc constructs")


def test_dropped_constructs_are_captured_with_values(repo):
    _misc(repo)
    e = run_script(repo, "train.py")
    idx, objs = source(repo, e)
    # from config import HIDDEN_MULT: the constant is found where it is defined
    assert (
        objs["config.HIDDEN_MULT"]["text"].strip() == "HIDDEN_MULT = 2"
        and objs["config.HIDDEN_MULT"]["file"] == "config.py"
    )
    assert objs["config.K_GATE"]["value"] == 3
    # functools.partial: the binding and its keywords
    norm = objs["misc.Norm"]
    assert "functools.partial(RMSNorm, eps=1e-5)" in norm["text"]
    assert norm["value"]["keywords"] == {"eps": 1e-05} and norm["value"]["func"] == "misc.RMSNorm"
    assert "misc.RMSNorm" in objs
    # module-level objects that are not submodules
    assert objs["misc._GELU"]["value"] == "GELU(approximate='tanh')"
    scale = objs["misc.LOGIT_SCALE"]["value"]
    assert scale["__class__"] == "torch.Tensor" and scale["shape"] == [] and scale["values"] == [0.5]
    # @torch.jit.script helper: a ScriptFunction, captured as the function it compiles
    assert objs["misc.fused_gelu"]["kind"] == "function" and "gelu(x) * 1.0" in objs["misc.fused_gelu"]["text"]
    # the closure value of a class factory
    assert objs["misc.make_gate.<locals>.Gate"]["closure"] == {"k": 3}
    # installed-package function: listed as external with its version
    ext = {x["qualname"]: x for x in idx["external"]}
    assert ext["torch.nn.init.trunc_normal_"]["version"] == torch.__version__
    # the callable actually stored on self, not the default in the signature
    conf = tvault.get(e, repo=str(repo))
    shown = __import__("capture_helpers").show_json(repo, e)["configuration"]["modules"][""]
    assert shown["pool"] == {"__callable__": "__main__.<lambda>", "source": "lambda h: h.amax(1)"}
    assert conf["missing"] == []


def test_each_construct_change_is_named_in_a_model_section(repo):
    _misc(repo)
    a = run_script(repo, "train.py")
    src = (repo / "misc.py").read_text()
    for old, new in [
        ("eps=1e-5)", "eps=1e-6)"),
        ('approximate="tanh"', 'approximate="none"'),
        ("torch.tensor(0.5)", "torch.tensor(2.0)"),
        ("gelu(x) * 1.0", "silu(x) * 1.0"),
    ]:
        assert old in src
        src = src.replace(old, new)
    (repo / "misc.py").write_text(src)
    (repo / "config.py").write_text(CONFIG.replace("K_GATE = 3", "K_GATE = 2"))
    (repo / "train.py").write_text(TRAIN.replace("h.amax(1)", "h.sum(1)"))
    commit_all(repo, "five behaviour changes")
    b = run_script(repo, "train.py")
    d = diff_json(repo, a, b)
    conf = {c["key"]: c for c in d["configuration"]["items"]}
    assert conf["constant misc.Norm"]["b"]["keywords"] == {"eps": 1e-06}
    assert conf["constant misc._GELU"]["b"] == "GELU(approximate='none')"
    assert conf["constant misc.LOGIT_SCALE"]["b"]["values"] == [2.0]
    assert conf["constant config.K_GATE"]["b"] == 2
    assert conf["closure misc.make_gate.<locals>.Gate.k"]["b"] == 2
    assert conf["pool"]["b"]["source"] == "lambda h: h.sum(1)"
    funcs = {it["name"]: it["status"] for it in d["functions"]["items"]}
    assert funcs["misc.fused_gelu"] == "modified"
    text = diff_text(repo, a, b, "--no-weights")
    assert "Functions and other code: modified" in text and "+    return torch.nn.functional.silu(x) * 1.0" in text
    assert "Configuration: " in text


SCOPE_TRAIN = """
import torch.nn as nn
import tvault_git as tvault

config = {"wandb_project": "secret-project", "data_dir": "/data/private", "lr": 1e-3}
batch_size = 8
width = 4

class Probe(nn.Module):
    def __init__(self, base, config):
        super().__init__()
        batch_size = config["hidden"]
        self.base = base
        self.fc = nn.Linear(width, batch_size)

    def forward(self, x, config=None):
        return [self.fc(x) for batch_size in range(2)]

print(tvault.log_all(Probe(None, {"hidden": 3})).id)
"""


def test_names_are_resolved_by_scope_not_spelling(repo):
    write(repo / "probe.py", SCOPE_TRAIN)
    commit_all(repo, "probe")
    e = run_script(repo, "probe.py")
    _idx, objs = source(repo, e)
    assert "__main__.width" in objs  # a real global reference
    assert "__main__.config" not in objs and "__main__.batch_size" not in objs  # a parameter and locals


def test_torchscript_model_records_its_classes(repo, fresh_modules):
    write(
        repo / "jitmodel.py",
        """
        import torch
        import torch.nn as nn
        def double(x):
            return x * 2.0
        class Sub(nn.Module):
            def forward(self, x):
                return double(x)
        class TinyJit(nn.Module):
            def __init__(self):
                super().__init__()
                self.l = nn.Linear(2, 2)
                self.s = Sub()
            def forward(self, x):
                return self.s(self.l(x))
        """,
    )
    commit_all(repo, "jit model")
    m = import_fresh("jitmodel")
    scripted = torch.jit.script(m.TinyJit())
    e, warned = capture_warnings(tvault.log_all, scripted)
    _idx, objs = source(repo, e.id)
    assert {"jitmodel.TinyJit", "jitmodel.Sub", "jitmodel.double"} <= set(objs)
    assert warned == []
    assert tvault.get(e.id)["model"]["class"] == "jitmodel.TinyJit"


def test_notebook_cell_class_is_read_from_linecache(repo, monkeypatch):
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    ns: dict = {"__name__": "__main__"}
    cell = (
        "import torch.nn as nn\n"
        "HID = 3\n"
        "class NbNet(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.l = nn.Linear(1, HID)\n"
    )
    fname = "/tmp/ipykernel_4242/1234567.py"  # how IPython names cells; the source lives in linecache
    linecache.cache[fname] = (len(cell), None, cell.splitlines(True), fname)
    try:
        exec(compile(cell, fname, "exec"), ns)
        sys.modules["__main__"].__dict__.update(ns)
        e, warned = capture_warnings(tvault.log_all, ns["NbNet"]())
    finally:
        linecache.cache.pop(fname, None)
    idx, objs = source(repo, e.id)
    assert "class NbNet(nn.Module):" in objs["__main__.NbNet"]["text"]
    assert objs["__main__.NbNet"]["file"] == "<notebook cell 1234567.py>"
    assert objs["__main__.HID"]["value"] == 3
    assert idx["missing"] == [] and warned == []
