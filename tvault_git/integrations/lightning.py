"""PyTorch Lightning: log registry entries from ``Trainer.fit``.

    from tvault_git.integrations.lightning import TvaultCallback
    trainer = L.Trainer(callbacks=[TvaultCallback(name="mnist", monitor="val_loss", mode="min")])

At the end of every ``every_n_epochs``-th training epoch (after that epoch's
validation) rank 0 logs the module as the next version of ``name``: its
``hparams`` and ``epoch``/``global_step`` as tags, that epoch's logged metrics,
the monitored one as ``result``, the first optimizer and its scheduler. The
run keeps to the policy with aliases: ``NAME@best``, ``NAME@best-2`` ...
``NAME@best-k`` (``save_top_k``) and ``NAME@last``; an entry that falls out of
the top k loses its alias and stays a version (nothing is deleted). Without
``save_last``, epochs that would not enter the top k are not logged at all.
With ``background=True`` the epoch waits only for the weights' copy (aliases follow when
the entry is written). Step metrics the module logs are recorded every ``log_every_n_steps`` steps
(``tvault.log_metrics``), so entries carry their learning curves. It needs no
Lightning logger and works beside any.
"""

from __future__ import annotations

from typing import Any

import tvault_git as tvault
from tvault_git.integrations.policy import TopK, jsonable, numbers_of

try:
    from lightning.pytorch import Callback
except ImportError:  # the standalone package
    try:
        from pytorch_lightning import Callback  # type: ignore[no-redef]
    except ImportError:
        raise ImportError(
            "tvault_git.integrations.lightning needs PyTorch Lightning: pip install 'tvault-git[lightning]'"
        ) from None


class TvaultCallback(Callback):
    """Registry entries from Lightning training, kept to a top-k-plus-last policy by aliases."""

    def __init__(
        self,
        name: str,
        monitor: str | None = "val_loss",
        mode: str = "min",
        every_n_epochs: int = 1,
        save_top_k: int = 3,
        save_last: bool = True,
        background: bool = True,
        *,
        tags: dict[str, Any] | None = None,
        save_optimizer_state: bool = False,
        step_metrics: bool = True,
        message: str | None = None,
        repo: Any = None,
    ) -> None:
        super().__init__()
        if not isinstance(every_n_epochs, int) or every_n_epochs < 1:
            raise tvault.InvalidInput(f"every_n_epochs must be a positive number, got {every_n_epochs!r}")
        if monitor is None and not save_last:
            raise tvault.InvalidInput("TvaultCallback with monitor=None keeps only the last entry: use save_last=True")
        self.name = name
        self.monitor = monitor
        self.every_n_epochs = every_n_epochs
        self.save_last = save_last
        # log_all(background=True): the epoch waits only for the weights' copy; hashing and writing run
        # in a thread, and the aliases of an entry are set once it is written (at the next save or the end).
        self.background = background
        self.tags = dict(tags or {})
        self.save_optimizer_state = save_optimizer_state
        self.step_metrics = step_metrics
        self.message = message
        self.repo = repo
        self.policy = TopK(name, mode, save_top_k if monitor is not None else 0, repo)
        self.entries: list[Any] = []  # this run's entries, in order (rank 0)
        self._logged_step: int | None = None
        self._pending: list[tuple[Any, float | None]] = []  # background entries whose aliases are not set yet

    # -- step metrics -------------------------------------------------------------------------

    def _record(self, trainer: Any, values: dict[str, float]) -> None:
        if values:
            tvault.log_metrics(step=int(trainer.global_step), **values)

    @staticmethod
    def _step_values(trainer: Any) -> dict[str, float]:
        """What the training step itself logged (callback_metrics also holds the last validation's
        values, which would repeat at every step). Lightning keeps these in the active loop's result
        collection, a private attribute stable since 1.5; without it only epoch ends are recorded."""
        results = getattr(trainer, "_results", None)
        try:
            return numbers_of(results.metrics(True)["callback"]) if results is not None else {}
        except (AttributeError, KeyError, TypeError):
            return {}

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if trainer.is_global_zero:
            tvault.clear_metrics()  # a new run: its own curve

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        every = max(1, int(getattr(trainer, "log_every_n_steps", 50) or 1))
        if self.step_metrics and trainer.is_global_zero and trainer.global_step % every == 0:
            self._record(trainer, self._step_values(trainer))

    # -- entries ------------------------------------------------------------------------------

    def _optimizer_and_scheduler(self, trainer: Any) -> tuple[Any, Any]:
        opts = list(getattr(trainer, "optimizers", None) or [])
        opt = opts[0] if opts else None
        sched = None
        for cfg in getattr(trainer, "lr_scheduler_configs", None) or []:
            s = getattr(cfg, "scheduler", None)
            if s is not None and getattr(s, "optimizer", None) is opt:
                sched = s
                break
        return getattr(opt, "optimizer", opt), sched  # unwrap LightningOptimizer

    def _settle(self) -> None:
        """Wait for background entries (errors surface here) and move the aliases to them, in order."""
        pending, self._pending = self._pending, []
        for handle, value in pending:
            e = handle.result() if self.background else handle
            self.entries.append(e)
            self.policy.add(e.id, value, last=self.save_last)

    def _save(self, trainer: Any, pl_module: Any, epoch: int) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or self._logged_step == trainer.global_step:
            return
        metrics = numbers_of(trainer.callback_metrics)
        value = None
        if self.monitor is not None:
            if self.monitor not in metrics:
                raise tvault.InvalidInput(
                    f"TvaultCallback monitors {self.monitor!r}, which this epoch did not log "
                    f"(logged: {', '.join(sorted(metrics)) or 'nothing'}); self.log({self.monitor!r}, ...) or pass monitor=None"
                )
            value = metrics[self.monitor]
        self._settle()  # the ranking must know every earlier entry
        if not self.save_last and not self.policy.would_keep(value):
            return
        if self.step_metrics:
            self._record(trainer, metrics)  # this epoch's values (validation included) at its last step
        hparams = jsonable(dict(getattr(pl_module, "hparams", {}) or {}))
        tags = {**hparams, "epoch": epoch, "global_step": int(trainer.global_step), **self.tags}
        opt, sched = self._optimizer_and_scheduler(trainer)
        e = tvault.log_all(
            pl_module,
            tags=tags,
            result=value,
            optimizer=opt,
            metrics=metrics,
            scheduler=sched,
            name=self.name,
            message=self.message,
            repo=self.repo,
            save_optimizer_state=self.save_optimizer_state and opt is not None,
            background=self.background,
            collective=False,  # rank 0 alone (replicated DDP weights); sharded FSDP weights are refused, not hung on
        )
        self._pending.append((e, value))
        self._logged_step = trainer.global_step
        if not self.background:
            self._settle()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._save(trainer, pl_module, int(trainer.current_epoch))

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.save_last and self._logged_step != trainer.global_step:
            # the final weights, when the run stopped between saves (the epoch counter is past the last one now)
            self._save(trainer, pl_module, max(0, int(trainer.current_epoch) - 1))
        if trainer.is_global_zero:
            self._settle()  # every entry written and its aliases set when fit() returns

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if trainer.is_global_zero and self._pending:
            self._settle()  # what was snapshotted is still published
