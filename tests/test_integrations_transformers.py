"""Hugging Face Trainer: TvaultCallback on a tiny GPT-2 built from a config (no downloads), on CPU."""

from __future__ import annotations

import pygit2
import pytest
import torch
from conftest import git
from conftest import tvault as run

import tvault_git as tvault
from tvault_git.registry import entries, series

transformers = pytest.importorskip(
    "transformers", reason="transformers is not installed (pip install 'tvault-git[transformers]')"
)
pytest.importorskip("accelerate", reason="the Trainer needs accelerate (pip install 'tvault-git[transformers]')")


@pytest.fixture(autouse=True)
def fresh_series():
    tvault.clear_metrics()
    yield
    tvault.clear_metrics()


class Tokens(torch.utils.data.Dataset):
    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randint(0, 64, (n, 12), generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.x[i], "labels": self.x[i]}


def test_trainer_logs_checkpoints_with_args_and_config(repo, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

    from tvault_git.integrations.transformers import TvaultCallback

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=64, n_positions=16, n_embd=16, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(config)
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=6,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        learning_rate=1e-2,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="steps",
        save_steps=2,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        seed=0,
        dataloader_num_workers=0,
    )
    cb = TvaultCallback(name="tiny-gpt2")
    trainer = Trainer(model=model, args=args, train_dataset=Tokens(32, 1), eval_dataset=Tokens(16, 2), callbacks=[cb])
    trainer.train()

    assert [tvault.get(e.id)["tags"]["global_step"] for e in cb.entries] == [
        2,
        4,
        6,
    ]  # on_save; train end: already saved
    ids = [e.id for e in cb.entries]
    losses = [tvault.get(i)["metrics"]["eval_loss"] for i in ids]
    best = ids[min(range(3), key=lambda i: (losses[i], -i))]
    assert tvault.aliases("tiny-gpt2") == {"best": best, "last": ids[-1]}
    m = tvault.get("tiny-gpt2@last")
    assert m["result"] == pytest.approx(losses[-1]) and "train_loss" in m["metrics"]
    ta = m["tags"]["training_args"]
    assert ta["learning_rate"] == 0.01 and ta["max_steps"] == 6 and ta["eval_strategy"] == "steps"
    mc = m["tags"]["model_config"]
    assert mc["n_layer"] == 1 and mc["n_embd"] == 16 and mc["model_type"] == "gpt2"
    r = pygit2.Repository(str(repo))
    assert entries.read_json(r, ids[-1], "optimizer.json")["class"] == "torch.optim.adamw.AdamW"
    assert entries.read_json(r, ids[-1], "scheduler.json")["class"] == "torch.optim.lr_scheduler.LambdaLR"
    sd = tvault.load("tiny-gpt2@last")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in sd.items())
    s = series.read(r, ids[-1])
    assert s.steps == [1, 2, 3, 4, 5, 6]
    assert all(v is not None for v in s.columns["loss"]) and "learning_rate" in s.columns
    assert [st for st, v in zip(s.steps, s.columns["eval_loss"]) if v is not None] == [2, 4, 6]
    out = run(repo, "show", "tiny-gpt2@last").stdout
    assert "Step metrics (6 steps, 1..6)" in out and "eval_loss" in out
    git(repo, "fsck", "--strict")
