"""Hugging Face ``Trainer``: log registry entries when the Trainer saves.

    from tvault_git.integrations.transformers import TvaultCallback
    Trainer(model, args, ..., callbacks=[TvaultCallback(name="gpt2-small")])

On ``on_save`` (every checkpoint the Trainer writes, per ``save_strategy``) the
main process logs the model as the next version of ``name`` with the
``TrainingArguments`` (as plain data) and the model config as tags, the latest
``on_evaluate`` metrics, ``epoch``/``global_step``, the optimizer and scheduler;
``on_train_end`` logs the final weights if they were not saved. The monitored
metric (``args.metric_for_best_model``, else ``eval_loss``; direction from
``args.greater_is_better``) is the ``result``, and the run keeps ``NAME@best``
(... ``best-k`` with ``save_top_k``) and ``NAME@last`` by aliases. Every
``on_log`` record (loss, learning rate, grad norm, eval metrics) goes into the
step series (``tvault.log_metrics``).
"""

from __future__ import annotations

from typing import Any

import tvault_git as tvault
from tvault_git.integrations.policy import TopK, jsonable, numbers_of

try:
    from transformers import TrainerCallback
except ImportError:
    raise ImportError(
        "tvault_git.integrations.transformers needs transformers: pip install 'tvault-git[transformers]'"
    ) from None


class TvaultCallback(TrainerCallback):
    """Registry entries from ``Trainer`` checkpoints, kept to a best-plus-last policy by aliases."""

    def __init__(
        self,
        name: str,
        monitor: str | None = None,
        mode: str | None = None,
        save_top_k: int = 1,
        save_last: bool = True,
        *,
        tags: dict[str, Any] | None = None,
        save_optimizer_state: bool = False,
        step_metrics: bool = True,
        message: str | None = None,
        repo: Any = None,
    ) -> None:
        self.name = name
        self.monitor = monitor
        self.mode = mode
        self.save_top_k = save_top_k
        self.save_last = save_last
        self.tags = dict(tags or {})
        self.save_optimizer_state = save_optimizer_state
        self.step_metrics = step_metrics
        self.message = message
        self.repo = repo
        self.policy: TopK | None = None
        self.entries: list[Any] = []
        self.eval_metrics: dict[str, float] = {}
        self._logged_step: int | None = None

    def _monitor(self, args: Any) -> tuple[str, str]:
        key = self.monitor or getattr(args, "metric_for_best_model", None) or "eval_loss"
        if not key.startswith("eval_"):
            key = "eval_" + key  # the Trainer's own convention for metric_for_best_model
        mode = self.mode
        if mode is None:
            gib = getattr(args, "greater_is_better", None)
            mode = "max" if gib or (gib is None and not key.endswith("loss")) else "min"
        return key, mode

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        key, mode = self._monitor(args)
        self.policy = TopK(self.name, mode, self.save_top_k, self.repo)
        self._key = key
        if state.is_world_process_zero:
            tvault.clear_metrics()

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if self.step_metrics and state.is_world_process_zero:
            values = {k: v for k, v in numbers_of(logs).items() if k != "epoch"}
            if values:
                tvault.log_metrics(step=int(state.global_step), **values)

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> None:
        self.eval_metrics = numbers_of(metrics)

    def _save(self, args: Any, state: Any, kwargs: dict[str, Any]) -> None:
        if not state.is_world_process_zero or self._logged_step == state.global_step:
            return
        model = kwargs.get("model")
        if model is None:
            raise tvault.InvalidInput("TvaultCallback got no model from the Trainer")
        assert self.policy is not None
        value = self.eval_metrics.get(self._key)
        if not self.save_last and not self.policy.would_keep(value):
            return
        config = getattr(model, "config", None)
        tags = {
            "epoch": jsonable(state.epoch),
            "global_step": int(state.global_step),
            "training_args": jsonable(args.to_dict() if hasattr(args, "to_dict") else vars(args)),
            **({"model_config": jsonable(config.to_dict())} if hasattr(config, "to_dict") else {}),
            **self.tags,
        }
        last_train = next((h for h in reversed(state.log_history) if "loss" in h), {})
        metrics = {**{f"train_{k}": v for k, v in numbers_of(last_train).items() if k in ("loss", "grad_norm")}}
        metrics.update(self.eval_metrics)
        opt = kwargs.get("optimizer")
        opt = getattr(opt, "optimizer", opt)  # accelerate's wrappers hold the torch objects
        sched = kwargs.get("lr_scheduler")
        sched = getattr(sched, "scheduler", sched)
        e = tvault.log_all(
            model,
            tags=tags,
            result=value,
            optimizer=opt,
            metrics=metrics,
            scheduler=sched,
            name=self.name,
            message=self.message,
            repo=self.repo,
            save_optimizer_state=self.save_optimizer_state and opt is not None,
        )
        self.entries.append(e)
        self._logged_step = state.global_step
        self.policy.add(e.id, value, last=self.save_last)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._save(args, state, kwargs)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.save_last:
            self._save(args, state, kwargs)
