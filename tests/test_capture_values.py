"""Values, not just text: constants at log time and configuration objects, recorded and diffed.

Each fixture is a minimal reproduction of a real-world layout (nanoGPT's
configurator, nanoGPT's GPTConfig, minGPT's CfgNode, pytorch-cifar's cfg dict
built in a factory, a Hugging Face config object, Lightning hparams), written
into a temp work tree; nothing is downloaded.
"""

from __future__ import annotations

import sys

import pytest
import torch
from capture_helpers import commit_all, diff_json, diff_text, run_script, show_json, source
from conftest import import_fresh, write

import tvault_git as tvault


@pytest.fixture
def fresh_modules():
    """Forget the corpus modules a test imported (each test writes its own versions)."""
    before = set(sys.modules)
    yield
    for m in set(sys.modules) - before:
        if not m.startswith(("torch", "tvault_git", "numpy")):
            sys.modules.pop(m, None)


LECTURE = """
import torch
import torch.nn as nn
import tvault_git as tvault

# hyperparameters (ng-video-lecture style: globals of the training script)
n_embd = 16
dropout = 0.2
text = "hello world, a tiny corpus"
exec(open("configurator.py").read())  # nanoGPT: --n_embd=32 overrides the global
chars = sorted(list(set(text)))
vocab_size = len(chars)

class BigramLanguageModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.token_embedding_table = nn.Embedding(vocab_size, n_embd)
        self.drop = nn.Dropout(dropout)
        self.lm_head = nn.Linear(n_embd, vocab_size)

    def forward(self, idx):
        return self.lm_head(self.drop(self.token_embedding_table(idx)))

e = tvault.log_all(BigramLanguageModel(), name="lecture")
print(e.id)
"""

CONFIGURATOR = """
import sys
from ast import literal_eval
for arg in sys.argv[1:]:
    key, val = arg[2:].split("=")
    globals()[key] = literal_eval(val)
"""


def test_constants_are_recorded_with_their_value_at_log_time(repo):
    write(repo / "gpt.py", LECTURE)
    write(repo / "configurator.py", CONFIGURATOR)
    commit_all(repo, "lecture")
    a = run_script(repo, "gpt.py", "--n_embd=32", "--dropout=0.0")
    _, objs = source(repo, a)
    assert objs["__main__.n_embd"]["text"].strip() == "n_embd = 16"  # the source says 16 ...
    assert objs["__main__.n_embd"]["value"] == 32  # ... the model trained with 32
    assert objs["__main__.dropout"]["value"] == 0.0
    chars = sorted(set("hello world, a tiny corpus"))
    assert objs["__main__.vocab_size"]["value"] == len(chars)
    assert objs["__main__.chars"]["value"] == chars  # the vocabulary needed to decode
    b = run_script(repo, "gpt.py", "--n_embd=48", "--dropout=0.0")
    d = diff_json(repo, a, b)
    cfg = d["configuration"]
    assert cfg["changed"]
    ch = {c["key"]: c for c in cfg["items"]}
    assert ch["constant __main__.n_embd"]["a"] == 32 and ch["constant __main__.n_embd"]["b"] == 48
    assert "dropout" not in " ".join(ch)  # unchanged values are not reported
    text = diff_text(repo, a, b)
    assert "Configuration: " in text and "n_embd 32 -> 48" in text
    shown = show_json(repo, a)
    assert any(o.get("value") == 32 for o in shown["source"]["objects"])


GPT_MODEL = """
from dataclasses import dataclass
import torch.nn as nn

@dataclass
class GPTConfig:
    block_size: int = 16
    vocab_size: int = 11
    n_layer: int = 2
    n_embd: int = 8
    dropout: float = 0.0
    bias: bool = True

class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config  # the same object in every block
        self.ln = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.drop = nn.Dropout(config.dropout)

class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.h = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
"""


def test_dataclass_config_is_recorded_once_and_diffed(repo, fresh_modules):
    write(repo / "gptmodel.py", GPT_MODEL)
    commit_all(repo, "nanogpt-like model")
    m = import_fresh("gptmodel")
    a = tvault.log_all(m.GPT(m.GPTConfig(dropout=0.0)), name="gpt")
    b = tvault.log_all(m.GPT(m.GPTConfig(dropout=0.1)), name="gpt")
    conf = show_json(repo, a.id)["configuration"]
    root = conf["modules"][""]
    assert root["config"]["__class__"] == "gptmodel.GPTConfig" and root["config"]["n_layer"] == 2
    assert conf["modules"]["h.0"]["config"] == {"__same_as__": "config"}  # stored once, referenced
    d = diff_json(repo, a.id, b.id)
    keys = {c["key"]: c for c in d["configuration"]["items"]}
    assert keys["config.dropout"]["a"] == 0.0 and keys["config.dropout"]["b"] == 0.1
    assert len(keys) == 1  # the shared object is reported once, not per block
    assert "dropout 0.0 -> 0.1 in config" in diff_text(repo, a.id, b.id)


CIFAR_INIT = """
from .efficientnet import *
from .vgg import *
"""

CIFAR_EFFNET = """
import torch.nn as nn

def swish(x):
    return x * x.sigmoid()

class Block(nn.Module):
    def __init__(self, c, drop_rate=0.0):
        super().__init__()
        self.drop_rate = drop_rate
        self.conv = nn.Conv2d(c, c, 1)

class EfficientNet(nn.Module):
    def __init__(self, cfg, num_classes=10):
        super().__init__()
        self.cfg = cfg
        self.layers = nn.Sequential(*[Block(c, cfg['drop_connect_rate']) for c in cfg['out_channels']])
        self.linear = nn.Linear(cfg['out_channels'][-1], num_classes)

def EfficientNetB0():
    cfg = {
        'num_blocks': [1, 2],
        'out_channels': [4, 4],
        'dropout_rate': 0.2,
        'drop_connect_rate': 0.2,
    }
    return EfficientNet(cfg)
"""

CIFAR_VGG = """
import torch.nn as nn
cfg = {'VGG11': [4, 'M', 8]}

class VGG(nn.Module):
    def __init__(self, vgg_name):
        super().__init__()
        self.features = nn.Sequential(*[nn.Identity() for x in cfg[vgg_name]])
"""


def test_factory_built_cfg_dict_change_is_a_configuration_change(repo, fresh_modules):
    write(repo / "models/__init__.py", CIFAR_INIT)
    write(repo / "models/efficientnet.py", CIFAR_EFFNET)
    write(repo / "models/vgg.py", CIFAR_VGG)
    write(repo / "main.py", "from models import *\nnet = EfficientNetB0()\n")
    commit_all(repo, "pytorch-cifar layout")
    sys.modules.pop("models", None)
    main = import_fresh("main")
    a = tvault.log_all(main.net, name="cifar")
    src = (repo / "models/efficientnet.py").read_text()
    (repo / "models/efficientnet.py").write_text(
        src.replace("'dropout_rate': 0.2", "'dropout_rate': 0.5").replace(
            "'drop_connect_rate': 0.2", "'drop_connect_rate': 0.0"
        )
    )
    commit_all(repo, "more dropout, no drop connect")
    for k in ("models", "models.efficientnet", "models.vgg"):
        sys.modules.pop(k, None)
    main = import_fresh("main")
    b = tvault.log_all(main.net, name="cifar")
    d = diff_json(repo, a.id, b.id)
    keys = {c["key"]: c for c in d["configuration"]["items"]}
    assert keys["cfg.dropout_rate"]["a"] == 0.2 and keys["cfg.dropout_rate"]["b"] == 0.5
    assert keys["cfg.drop_connect_rate"]["b"] == 0.0
    assert keys["layers.0.drop_rate"]["a"] == 0.2  # the value handed down to every block
    text = diff_text(repo, a.id, b.id, "--no-weights")
    assert "dropout_rate 0.2 -> 0.5 in cfg" in text
    assert "unchanged: architecture, configuration" not in text


MINGPT = '''
import torch.nn as nn

class CfgNode:
    """minGPT's lightweight configuration class"""
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)

class GPT(nn.Module):
    @staticmethod
    def get_default_config():
        C = CfgNode()
        C.model_type = 'gpt-nano'
        C.n_layer = None
        C.embd_pdrop = 0.1
        C.block_size = 8
        return C

    def __init__(self, config):
        super().__init__()
        self.block_size = config.block_size
        self.config = config
        self.wte = nn.Embedding(5, 4)
'''


def test_cfgnode_like_object_is_plain_data(repo, fresh_modules):
    write(repo / "mingpt_model.py", MINGPT)
    commit_all(repo, "minGPT-like")
    m = import_fresh("mingpt_model")
    cfg = m.GPT.get_default_config()
    a = tvault.log_all(m.GPT(cfg))
    cfg.embd_pdrop = 0.0
    cfg.block_size = 16
    b = tvault.log_all(m.GPT(cfg))
    conf = show_json(repo, a.id)["configuration"]["modules"][""]
    assert conf["config"] == {
        "__class__": "mingpt_model.CfgNode",
        "model_type": "gpt-nano",
        "n_layer": None,
        "embd_pdrop": 0.1,
        "block_size": 8,
    }
    assert conf["block_size"] == 8
    keys = {c["key"] for c in diff_json(repo, a.id, b.id)["configuration"]["items"]}
    assert keys == {"config.embd_pdrop", "config.block_size", "block_size"}


HF_LIKE = '''
import copy
import torch.nn as nn

class PretrainedConfig:
    """The shape of transformers.PretrainedConfig: attributes plus to_dict()."""
    model_type = ""
    def __init__(self, **kwargs):
        self._commit_hash = None
        for k, v in kwargs.items():
            setattr(self, k, v)
    def to_dict(self):
        out = {k: copy.deepcopy(v) for k, v in self.__dict__.items() if not k.startswith("_")}
        out["model_type"] = self.__class__.model_type
        return out

class GPT2Config(PretrainedConfig):
    model_type = "gpt2"
    def __init__(self, n_embd=8, scale_attn_weights=True, **kw):
        super().__init__(n_embd=n_embd, scale_attn_weights=scale_attn_weights, **kw)

class GPT2Attention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.scale_attn_weights = config.scale_attn_weights
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)

class GPT2LMHeadModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.attn = GPT2Attention(config)
'''


def test_hf_style_config_object_uses_to_dict(repo, fresh_modules):
    write(repo / "hfmodel.py", HF_LIKE)
    commit_all(repo, "hf-like")
    m = import_fresh("hfmodel")
    torch.manual_seed(0)
    a = tvault.log_all(m.GPT2LMHeadModel(m.GPT2Config()))
    torch.manual_seed(0)
    b = tvault.log_all(m.GPT2LMHeadModel(m.GPT2Config(scale_attn_weights=False)))
    conf = show_json(repo, a.id)["configuration"]["modules"][""]["config"]
    assert conf["model_type"] == "gpt2" and conf["__class__"] == "hfmodel.GPT2Config"  # to_dict() was used
    assert "_commit_hash" not in conf
    d = diff_json(repo, a.id, b.id)
    keys = {c["key"]: (c["a"], c["b"]) for c in d["configuration"]["items"]}
    assert keys["config.scale_attn_weights"] == (True, False)
    assert keys["attn.scale_attn_weights"] == (True, False)
    assert not d["weights"]["changed"]  # only the configuration tells the models apart


LIGHTNING_LIKE = '''
import torch.nn as nn

class AttributeDict(dict):
    def __getattr__(self, k):
        return self[k]

class LightningModule(nn.Module):
    """The shape of lightning.LightningModule: hparams behind a property."""
    def __init__(self):
        super().__init__()
        self._hparams = AttributeDict()
    def save_hyperparameters(self, **kw):
        self._hparams.update(kw)
    @property
    def hparams(self):
        return self._hparams

class LitClassifier(LightningModule):
    def __init__(self, lr=1e-3, hidden=4):
        super().__init__()
        self.save_hyperparameters(lr=lr, hidden=hidden)
        self.net = nn.Linear(2, hidden)
'''


def test_lightning_style_hparams_are_recorded(repo, fresh_modules):
    write(repo / "lit.py", LIGHTNING_LIKE)
    commit_all(repo, "lightning-like")
    m = import_fresh("lit")
    torch.manual_seed(0)
    a = tvault.log_all(m.LitClassifier(lr=1e-3))
    torch.manual_seed(0)
    b = tvault.log_all(m.LitClassifier(lr=3e-4))
    conf = show_json(repo, a.id)["configuration"]["modules"][""]
    assert conf["hparams"] == {"lr": 1e-3, "hidden": 4}
    keys = {c["key"]: (c["a"], c["b"]) for c in diff_json(repo, a.id, b.id)["configuration"]["items"]}
    assert keys == {"hparams.lr": (1e-3, 3e-4)}


def test_configuration_is_size_capped_with_a_truncated_mark(repo, fresh_modules):
    write(
        repo / "big.py",
        """
        import torch.nn as nn
        class Big(nn.Module):
            def __init__(self):
                super().__init__()
                self.table = {f"k{i}": "x" * 50 for i in range(5000)}
                self.fc = nn.Linear(1, 1)
        """,
    )
    commit_all(repo, "big")
    m = import_fresh("big")
    e = tvault.log_all(m.Big())
    conf = show_json(repo, e.id)["configuration"]
    table = conf["modules"][""]["table"]
    assert len(table) < 5000 and table["__truncated__"] > 0
    assert conf["truncated"] == ["table"]


def test_web_entry_and_compare_pages_show_the_configuration(repo, fresh_modules):
    from tvault_git import web

    write(repo / "gptmodel.py", GPT_MODEL)
    commit_all(repo, "nanogpt-like model")
    m = import_fresh("gptmodel")
    a = tvault.log_all(m.GPT(m.GPTConfig(dropout=0.0)))
    b = tvault.log_all(m.GPT(m.GPTConfig(dropout=0.1)))
    client = web.create_app(str(repo)).test_client()
    html = client.get(f"/entry/{a.id}").get_data(as_text=True)
    assert 'id="configuration"' in html and "config.n_layer" in html
    html = client.get(f"/compare?a={a.id}&b={b.id}").get_data(as_text=True)
    assert 'id="configuration-diff"' in html
    assert '<td class="mono">config.dropout</td><td class="mono">0.0</td><td class="mono">0.1</td>' in html


def test_find_where_searches_configuration_values(repo, fresh_modules):
    from conftest import tvault as tvault_cli

    write(repo / "gptmodel.py", GPT_MODEL)
    commit_all(repo, "nanogpt-like model")
    m = import_fresh("gptmodel")
    small = tvault.log_all(m.GPT(m.GPTConfig(n_layer=2)), name="gpt")
    big = tvault.log_all(m.GPT(m.GPTConfig(n_layer=12)), name="gpt")
    out = tvault_cli(repo, "find", "--where", "config.n_layer>=12").stdout
    assert big.id[:10] in out and small.id[:10] not in out
    out = tvault_cli(repo, "find", "--where", "config.bias==true").stdout
    assert big.id[:10] in out and small.id[:10] in out
