"""The weights section opens with a summary (counts, bytes, top relative changes, prefix groups, ties);
a ``torch.compile``d model is logged as the module it wraps, with the compile options recorded."""

from __future__ import annotations

import sys

import pytest
import torch

import tvault_git as tvault
from tests.capture_helpers import commit_all, diff_json, diff_text, show_json
from tests.helpers import import_fresh, write
from tests.helpers import tvault as tvault_cli

SRC = """
import torch.nn as nn


class LM(nn.Module):
    def __init__(self, layers=3, tie=True):
        super().__init__()
        self.wte = nn.Embedding(10, 4)
        self.h = nn.ModuleList([nn.Linear(4, 4) for _ in range(layers)])
        self.lm_head = nn.Linear(4, 10, bias=False)
        if tie:
            self.lm_head.weight = self.wte.weight

    def forward(self, x):
        h = self.wte(x)
        for layer in self.h:
            h = layer(h)
        return self.lm_head(h)
"""


def _model(repo, **kw):
    write(repo / "lm.py", SRC)
    sys.modules.pop("lm", None)
    torch.manual_seed(0)
    return import_fresh("lm").LM(**kw)


def test_weights_summary_counts_bytes_and_top_relative_changes(repo):
    net = _model(repo)
    commit_all(repo, "lm")
    a = tvault.log_all(net)
    with torch.no_grad():
        net.h[1].weight.mul_(1.5)
        net.h[2].bias.add_(0.01)
    b = tvault.log_all(net)
    ov = diff_json(repo, a.id, b.id)["weights"]["overview"]
    assert ov["counts"] == {"changed": 2, "unchanged": 6, "added": 0, "removed": 0}
    assert ov["bytes"]["changed"] == 4 * 4 * 4 + 4 * 4
    assert ov["top"][0]["name"] == "h.1.weight" and abs(ov["top"][0]["relative"] - 0.5) < 1e-5
    text = diff_text(repo, a.id, b.id)
    assert "2 changed (80 B), 6 unchanged" in text
    assert "largest relative change ||a-b||/||a||:" in text


def test_long_weight_lists_are_grouped_by_module_prefix(repo):
    net = _model(repo, layers=12)
    commit_all(repo, "lm")
    a = tvault.log_all(net)
    with torch.no_grad():
        for layer in net.h:
            layer.weight.mul_(1.1)
            layer.bias.add_(1.0)
    b = tvault.log_all(net)
    d = diff_json(repo, a.id, b.id)["weights"]
    assert d["overview"]["grouped"] and len(d["items"]) == 24  # --json keeps every tensor
    text = diff_text(repo, a.id, b.id)
    assert "~ h.3.*   2 tensors: 2 changed" in text
    assert "h.3.weight" not in text.split("largest relative change")[1].split("\n", 6)[-1]  # one line per group


def test_tied_tensors_are_marked_and_equal_bytes_are_not_a_tie(repo):
    net = _model(repo)
    commit_all(repo, "lm")
    with torch.no_grad():
        for layer in net.h:
            layer.bias.zero_()  # three equal zero biases: same blob, not tied
    a = tvault.log_all(net)
    assert show_json(repo, a.id)["manifest"]["model"]["tied"] == {"lm_head.weight": "wte.weight"}
    with torch.no_grad():
        net.wte.weight.mul_(2)
    b = tvault.log_all(net)
    d = diff_json(repo, a.id, b.id)["weights"]
    assert d["overview"]["tied"] == [
        {"name": "lm_head.weight", "to": "wte.weight", "note": "", "in_a": True, "in_b": True}
    ]
    assert next(it for it in d["items"] if it["name"] == "lm_head.weight")["tied_to"] == "wte.weight"
    text = diff_text(repo, a.id, b.id)
    assert "lm_head.weight = wte.weight (tied)" in text
    assert "(tied to wte.weight)" in text
    assert "lm_head.weight = wte.weight (tied: one tensor)" in tvault_cli(repo, "show", b.id).stdout


def test_untied_model_records_no_ties(repo):
    net = _model(repo, tie=False)
    commit_all(repo, "lm")
    e = tvault.log_all(net)
    assert "tied" not in show_json(repo, e.id)["manifest"]["model"]


def test_torch_compile_is_logged_as_the_wrapped_module_with_its_options(repo):
    net = _model(repo)
    commit_all(repo, "lm")
    plain = tvault.log_all(net)
    compiled = torch.compile(net, backend="eager", fullgraph=True, dynamic=False)
    compiled(torch.tensor([[1, 2]]))  # it ran compiled (eager backend: no inductor on CPU)
    e = tvault.log_all(compiled)
    s = show_json(repo, e.id)
    assert s["manifest"]["model"]["class"] == "lm.LM"
    assert s["manifest"]["model"]["compiled"] == {"backend": "eager", "fullgraph": True, "dynamic": False}
    assert not [n for n in s["weights"] if "_orig_mod" in n] and "h.0.weight" in s["weights"]
    assert any(o["qualname"] == "LM" for o in s["source"]["objects"])
    assert s["architecture"].startswith("LM(")
    out = tvault_cli(repo, "show", e.id).stdout
    assert "compiled torch.compile(backend='eager', fullgraph=True, dynamic=False)" in out
    d = diff_json(repo, plain.id, e.id)
    row = next(r for r in d["metadata"]["rows"] if r["key"] == "compiled")
    assert row["a"] is None and row["b"].startswith("torch.compile(backend='eager'")
    assert not d["weights"]["changed"] and not d["classes"]["changed"]
    assert "compiled - -> torch.compile(backend='eager'" in diff_text(repo, plain.id, e.id)
    assert "compiled" not in show_json(repo, plain.id)["manifest"]["model"]


def test_small_weight_diffs_import_neither_numpy_nor_torch(repo):
    from tests.helpers import modules_after

    net = _model(repo)
    commit_all(repo, "lm")
    a = tvault.log_all(net)
    with torch.no_grad():
        net.h[0].bias.add_(1)
    b = tvault.log_all(net)
    mods = modules_after(repo, ["diff", a.id, b.id])
    assert "numpy" not in mods and "torch" not in mods and "pygments" not in mods
    assert diff_json(repo, a.id, b.id)["weights"]["items"][0]["changed_values"] == 4


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.int8, torch.bool])
def test_python_numpy_and_torch_statistics_agree(dtype):
    import array

    from tvault_git.diff import compute, weights_np, weights_py

    g = torch.Generator().manual_seed(1)
    a = (torch.randn(257, generator=g) * 5).to(dtype)
    b = a.clone()
    b[3:40] = (torch.randn(37, generator=g) * 5).to(dtype)
    if dtype.is_floating_point:
        b[50] = float("inf")
    results = []
    for cls, conv in (
        (compute._Stats, lambda t: t),
        (weights_np.Stats, lambda t: t.numpy()),
        (weights_py.Stats, lambda t: memoryview(array.array(weights_py.FORMATS[str(t.dtype)[6:]], t.tolist()))),
    ):
        s = cls()
        s.add(conv(a), conv(b))
        results.append(s.result())
    t, n, p = results
    for r in (n, p):
        assert r["changed_values"] == t["changed_values"] and r["numel"] == t["numel"] == 257
        for k in ("l2", "relative", "max_abs", "cosine"):
            assert (r[k] is None) == (t[k] is None), k
            if t[k] is not None:
                assert r[k] == pytest.approx(t[k], rel=1e-5), k


@pytest.mark.parametrize(
    ("kw", "want"),
    [
        ({}, {"backend": "inductor", "mode": "default", "fullgraph": False, "dynamic": None}),
        ({"mode": "max-autotune", "dynamic": True}, {"backend": "inductor", "mode": "max-autotune", "dynamic": True}),
        ({"options": {"epilogue_fusion": True}}, {"backend": "inductor", "options": {"epilogue_fusion": True}}),
        ({"backend": "aot_eager"}, {"backend": "aot_eager", "fullgraph": False}),
    ],
)
def test_compile_options_are_read_back_without_compiling(kw, want):
    from tvault_git.capture.compiled import compile_options

    rec = compile_options(torch.compile(torch.nn.Linear(2, 2), **kw))  # lazy: nothing is compiled here
    assert rec is not None and want.items() <= rec.items(), rec
    assert compile_options(torch.nn.Linear(2, 2)) is None


def test_a_tie_made_between_versions_is_marked_on_its_side(repo):
    net = _model(repo, tie=False)
    commit_all(repo, "lm")
    a = tvault.log_all(net)
    net.lm_head.weight = net.wte.weight
    b = tvault.log_all(net)
    tied = diff_json(repo, a.id, b.id)["weights"]["overview"]["tied"]
    assert tied == [{"name": "lm_head.weight", "to": "wte.weight", "note": " in b only", "in_a": False, "in_b": True}]
    assert "lm_head.weight = wte.weight (tied in b only)" in diff_text(repo, a.id, b.id)
