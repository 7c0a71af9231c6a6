"""Lightning: TvaultCallback in a real Trainer.fit on a tiny module (CPU), beside a real logger."""

from __future__ import annotations

import json

import pygit2
import pytest
import torch
from conftest import git, import_fresh, write
from conftest import tvault as run

import tvault_git as tvault
from tvault_git.registry import series

L = pytest.importorskip("lightning", reason="PyTorch Lightning is not installed (pip install 'tvault-git[lightning]')")

LIT_SRC = '''
import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F


class LitNet(L.LightningModule):
    """val_loss follows a given sequence, so which epochs make the top k is known in advance."""

    def __init__(self, val_losses, lr=0.05, width=8):
        super().__init__()
        self.save_hyperparameters()
        self.fc1 = nn.Linear(4, width)
        self.fc2 = nn.Linear(width, 2)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_acc", (self(x).argmax(1) == y).float().mean())
        self.log("val_loss", float(self.hparams.val_losses[self.current_epoch]))

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)}
'''


@pytest.fixture(autouse=True)
def fresh_series():
    tvault.clear_metrics()
    yield
    tvault.clear_metrics()


@pytest.fixture
def lit(repo):
    write(repo / "lit_model.py", LIT_SRC)
    git(repo, "add", "lit_model.py")
    git(repo, "commit", "-q", "-m", "lightning module")
    return import_fresh("lit_model")


def _loaders():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 4, generator=g), torch.randint(0, 2, (64,), generator=g)
    ds = torch.utils.data.TensorDataset(x, y)
    return torch.utils.data.DataLoader(ds, batch_size=16), torch.utils.data.DataLoader(ds, batch_size=32)


def _fit(repo, lit, cb, val_losses, **kw):
    from lightning.pytorch.loggers import CSVLogger

    torch.manual_seed(0)
    module = lit.LitNet(val_losses)
    trainer = L.Trainer(
        max_epochs=len(val_losses),
        accelerator="cpu",
        devices=1,
        logger=CSVLogger(str(repo / "logs")),  # the user's own logger keeps working beside the callback
        callbacks=[cb],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=2,
        **kw,
    )
    train, val = _loaders()
    trainer.fit(module, train, val)
    return module, trainer


def test_fit_logs_epochs_keeps_top_k_and_last(repo, lit):
    from tvault_git.integrations.lightning import TvaultCallback

    cb = TvaultCallback(name="litnet", monitor="val_loss", mode="min", save_top_k=2, save_last=True, tags={"run": "a"})
    module, _ = _fit(repo, lit, cb, [0.5, 0.3, 0.4, 0.2, 0.6])
    assert len(cb.entries) == 5  # save_last: every epoch is logged (epoch 4 is only 'last')
    ids = [e.id for e in cb.entries]
    assert tvault.aliases("litnet") == {"best": ids[3], "best-2": ids[1], "last": ids[4]}
    assert tvault.get("litnet@best")["id"] == ids[3] and tvault.get("litnet@last")["id"] == ids[4]
    m = tvault.get("litnet@best")
    assert (
        m["result"] == pytest.approx(0.2)
        and m["metrics"]["val_loss"] == pytest.approx(0.2)
        and "train_loss" in m["metrics"]
        and "val_acc" in m["metrics"]
    )
    assert m["tags"] == {
        "val_losses": [0.5, 0.3, 0.4, 0.2, 0.6],
        "lr": 0.05,
        "width": 8,
        "epoch": 3,
        "global_step": 16,
        "run": "a",
    }
    r = pygit2.Repository(str(repo))
    from tvault_git.registry import entries

    opt = entries.read_json(r, ids[4], "optimizer.json")
    sched = entries.read_json(r, ids[4], "scheduler.json")
    assert opt["class"] == "torch.optim.sgd.SGD" and opt["param_groups"][0]["momentum"] == 0.9
    assert sched["class"] == "torch.optim.lr_scheduler.StepLR" and sched["state"]["last_epoch"] == 5
    # the weights are the module's at that point: the last entry equals the trained module
    assert all(torch.equal(v, module.state_dict()[k]) for k, v in tvault.load("litnet@last").items())
    src = entries.read_json(r, ids[0], "source.json")
    assert any(o["qualname"] == "LitNet" for o in src["objects"])
    # learning curves: train_loss every 2 steps, val_loss at each epoch's last step
    s = series.read(r, ids[4])
    assert [st for st, v in zip(s.steps, s.columns["val_loss"]) if v is not None] == [4, 8, 12, 16, 20]
    assert [v for v in s.columns["val_loss"] if v is not None] == pytest.approx([0.5, 0.3, 0.4, 0.2, 0.6])
    assert len([v for v in s.columns["train_loss"] if v is not None]) >= 10
    assert len(series.read(r, ids[1]).steps) < len(s.steps)  # an earlier entry: the curve up to then
    assert "val_loss" in run(repo, "show", "litnet@last").stdout
    hist = run(repo, "history", "litnet").stdout
    assert "litnet@4 [best]" in hist and "litnet@2 [best-2]" in hist and "litnet@5 [last]" in hist
    assert (repo / "logs").exists()  # CSVLogger wrote its files as usual
    git(repo, "fsck", "--strict")


def test_without_last_only_top_k_epochs_are_logged_and_stale_ranks_go(repo, lit):
    from tvault_git.integrations.lightning import TvaultCallback

    first = TvaultCallback(name="ranked", save_top_k=3)
    _fit(repo, lit, first, [0.9, 0.8, 0.7])
    assert set(tvault.aliases("ranked")) == {"best", "best-2", "best-3", "last"}
    cb = TvaultCallback(name="ranked", monitor="val_loss", mode="min", save_top_k=2, save_last=False)
    _fit(repo, lit, cb, [0.5, 0.3, 0.4, 0.2, 0.6])
    results = [tvault.get(e.id)["result"] for e in cb.entries]
    assert results == pytest.approx([0.5, 0.3, 0.4, 0.2])  # epoch 4 (0.6) would not enter the top 2: not logged
    al = tvault.aliases("ranked")
    # best-3 came from the earlier run and is gone; 'last' is the earlier run's (this one does not manage it)
    assert al == {"best": cb.entries[3].id, "best-2": cb.entries[1].id, "last": first.entries[-1].id}
    assert len(json.loads(run(repo, "history", "ranked", "--json").stdout)) == 7  # nothing deleted


def test_max_mode_every_n_epochs_and_a_missing_monitor(repo, lit):
    from tvault_git.integrations.lightning import TvaultCallback

    cb = TvaultCallback(name="acc", monitor="val_acc", mode="max", every_n_epochs=2, save_top_k=1, background=False)
    _fit(repo, lit, cb, [0.5, 0.4, 0.3])
    assert [tvault.get(e.id)["tags"]["epoch"] for e in cb.entries] == [1, 2]  # epoch 2 by on_train_end (last)
    assert tvault.aliases("acc")["last"] == cb.entries[-1].id
    with pytest.raises(tvault.InvalidInput, match="save_last=True"):
        TvaultCallback(name="nothing", monitor=None, save_last=False)
    bad = TvaultCallback(name="nope", monitor="val_los")
    with pytest.raises(tvault.InvalidInput, match="'val_los', which this epoch did not log"):
        _fit(repo, lit, bad, [0.5])
    assert not bad.entries and "nope" not in run(repo, "log").stdout
