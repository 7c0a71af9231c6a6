"""Capture on the real Hugging Face and Lightning model classes: a changed config value or hparam
is named in the diff's Configuration section, and log_all warns only about real gaps."""

from __future__ import annotations

import sys

import pytest
import torch

import tvault_git as tvault
from tests.capture_helpers import capture_warnings, commit_all, diff_json, diff_text
from tests.helpers import import_fresh, write


def _gpt2(**kw):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(
        vocab_size=64, n_positions=16, n_embd=16, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=0, **kw
    )
    return transformers.GPT2LMHeadModel(cfg)


def _config_keys(d):
    return {it["key"] for it in d["configuration"]["items"]}


def test_gpt2_config_change_is_named_in_the_configuration_section(repo):
    a, warned_a = capture_warnings(tvault.log_all, _gpt2())
    b, warned_b = capture_warnings(tvault.log_all, _gpt2(scale_attn_weights=False, resid_pdrop=0.3))
    assert warned_a == [] and warned_b == []  # installed classes: recorded by name and version, nothing missing
    d = diff_json(repo, a.id, b.id)
    assert d["configuration"]["changed"]
    keys = _config_keys(d)
    assert any(k.endswith("scale_attn_weights") for k in keys), keys
    assert any(k.endswith("resid_pdrop") for k in keys), keys
    text = diff_text(repo, a.id, b.id)
    assert "scale_attn_weights" in text.split("Configuration:")[1].split("\n\n")[0]
    item = next(it for it in d["configuration"]["items"] if it["key"].endswith("scale_attn_weights"))
    assert (item["a"], item["b"]) == (True, False)


def test_gpt2_tied_head_is_marked(repo):
    a = tvault.log_all(_gpt2())
    m = _gpt2()
    with torch.no_grad():
        m.transformer.wte.weight.mul_(2)
    b = tvault.log_all(m)
    d = diff_json(repo, a.id, b.id)
    assert {"name": "lm_head.weight", "to": "transformer.wte.weight"}.items() <= d["weights"]["overview"]["tied"][
        0
    ].items()
    assert "lm_head.weight = transformer.wte.weight (tied)" in diff_text(repo, a.id, b.id)


LIT = """
import torch
import torch.nn as nn
import lightning as L

LABEL_SMOOTHING = 0.1


class Encoder(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(4, width)

    def forward(self, x):
        return self.fc(x).relu()


class LitClassifier(L.LightningModule):
    def __init__(self, width=8, lr=1e-3, dropout=0.1):
        super().__init__()
        self.save_hyperparameters()
        self.encoder = Encoder(width)
        self.head = nn.Linear(width, 2)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        return self.head(self.drop(self.encoder(x)))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y, label_smoothing=LABEL_SMOOTHING)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
"""


def _lit(repo, **hp):
    pytest.importorskip("lightning")
    write(repo / "lit.py", LIT)
    sys.modules.pop("lit", None)
    torch.manual_seed(0)
    return import_fresh("lit").LitClassifier(**hp)


def test_lightning_hparam_change_is_named_and_capture_is_complete(repo):
    m = _lit(repo)
    commit_all(repo, "lit")
    a, warned_a = capture_warnings(tvault.log_all, m)
    b, warned_b = capture_warnings(tvault.log_all, _lit(repo, lr=0.05))
    assert warned_a == [] and warned_b == []
    d = diff_json(repo, a.id, b.id)
    keys = _config_keys(d)
    assert any(k.endswith("lr") and "hparams" in k for k in keys), keys
    item = next(it for it in d["configuration"]["items"] if it["key"].endswith("lr"))
    assert (item["a"], item["b"]) == (0.001, 0.05)
    assert "lr" in diff_text(repo, a.id, b.id).split("Configuration:")[1].split("\n\n")[0]
    assert not d["classes"]["changed"] and not d["weights"]["changed"]
