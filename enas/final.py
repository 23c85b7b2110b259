"""Training a standalone network from scratch (final training, and low-fidelity evaluation).

`Trainer` runs epochs of SGD on a `Task`, with a per-epoch learning-rate schedule, gradient
clipping, an auxiliary-loss weight and a drop-path ramp (CNN final training), validation each
epoch, TensorBoard (`final/...`) and checkpoints that resume exactly.

Several processes (`dist`, enas.distributed): every rank trains on its shard of each minibatch
(the task keeps only its rows), the training step averages the gradients, BatchNorm running
statistics are averaged before each validation, every rank validates the same whole split (so
all hold the same history) and rank 0 alone writes the checkpoint, which holds every rank's RNG
state (exact resume with the same number of processes).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from enas.checkpoint import save_checkpoint
from enas.distributed import SINGLE, Dist
from enas.optim import scheduled_lr, set_lr
from enas.logs import Eta
from enas.rng import global_rng_state, restore_global_rng_state
from enas.tasks import format_metric
from enas.tb import log_scalars
from enas import training
from enas.training import DivergenceWatch, StepRunner, eval_mode

log = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    """Numbers of a training run (the entry point fills them from the `trainer` config)."""

    epochs: int = 1
    steps_per_epoch: int | None = None     # None: one pass over the training data
    lr: float = 20.0
    lr_schedule: str = "constant"
    lr_kwargs: dict | None = None
    grad_clip: float = 0.25
    aux_weight: float = 0.0
    drop_path: float = 0.0                 # final drop-path probability, ramped linearly over epochs
    valid_batches: int | None = None
    log_every: int = 100
    checkpoint_every_epoch: bool = True
    max_nonfinite: int = 10
    keep_checkpoints: int = 2              # checkpoint.pt, checkpoint.prev.pt, ...
    recalibrate_bn: int = 0                # > 0: BN statistics re-estimated on this many batches before validation


class Trainer:
    """Trains `model` on `task` from scratch; `state_dict()` is the checkpoint's content."""

    def __init__(self, task, model, optimizer, settings: TrainSettings, run_dir: str | None = None,
                 writer=None, metadata: dict | None = None, prefix: str = "final", dist: Dist = SINGLE):
        self.task, self.model, self.optimizer, self.s = task, model, optimizer, settings
        self.dist = dist
        self.run_dir, self.writer, self.metadata = run_dir, writer, metadata or {}
        self.prefix = prefix
        self.epoch = 0
        self.global_step = 0
        self.history: list[dict] = []
        self.best_valid: dict | None = None
        self._eta = Eta(settings.epochs)
        self.divergence = DivergenceWatch(task.uniform_loss(), "trainer.optim.lr")
        self.stepper = StepRunner(optimizer, model.parameters(), settings.grad_clip, settings.max_nonfinite,
                                  self.checkpoint_path, dist=dist)
        dist.broadcast_module(model)      # the same starting weights on every rank

    @property
    def checkpoint_path(self) -> str | None:
        return os.path.join(self.run_dir, "checkpoint.pt") if self.run_dir else None

    def run(self) -> dict:
        """Train the remaining epochs; returns the last epoch's summary."""
        self._eta = Eta(self.s.epochs, self.epoch)
        while self.epoch < self.s.epochs:
            summary = self.train_epoch()
            self.history.append(summary)
            self.epoch += 1
            if self.run_dir and self.s.checkpoint_every_epoch:
                self.save()
        return self.history[-1] if self.history else {}

    def train_epoch(self) -> dict:
        lr = scheduled_lr(self.s.lr, self.s.lr_schedule, self.s.lr_kwargs, self.epoch, self.s.epochs)
        set_lr(self.optimizer, lr)
        if hasattr(self.model, "drop_path_prob"):
            self.model.drop_path_prob = self.s.drop_path * self.epoch / max(self.s.epochs, 1)
        self.model.train()
        state = self.task.init_state(self.model, "train")
        steps = min(self.s.steps_per_epoch or self.task.num_train_batches, self.task.num_train_batches)
        total, count, t0 = 0.0, 0, time.time()
        window, window_count = 0.0, 0
        for i, batch in enumerate(self.task.train_batches(self.epoch, epoch_steps=steps)):
            if i >= steps:
                break
            loss, new_state = self.task.loss(self.model, batch, state, None, aux_weight=self.s.aux_weight)
            value = self.stepper.step(loss, new_state, where=f"at step {self.global_step}")
            if value is None:             # skipped: restart the recurrent state
                log_scalars(self.writer, self.prefix, {"nonfinite_steps": self.stepper.nonfinite_total},
                            self.global_step)
                state = self.task.init_state(self.model, "train")
                continue
            state = new_state
            self.global_step += 1
            total, count = total + value, count + 1
            window, window_count = window + value, window_count + 1
            if self.s.log_every and self.global_step % self.s.log_every == 0:
                self._log_window(window / window_count, lr, i + 1, steps, (i + 1) / (time.time() - t0))
                window, window_count = 0.0, 0
        summary = {"epoch": self.epoch + 1, "train_loss": total / max(count, 1), "lr": lr,
                   "seconds": time.time() - t0}
        self.dist.average_buffers(self.model)   # BatchNorm running statistics of every shard
        if self.s.recalibrate_bn:                # a short training's running statistics lag its weights
            training.recalibrate_bn(self.model, self.task, None, self.s.recalibrate_bn)
        valid = self.evaluate("valid", self.s.valid_batches)
        summary.update({f"valid_{k}": v for k, v in valid.items()})
        log_scalars(self.writer, self.prefix, {k: v for k, v in summary.items() if k != "epoch"}, self.global_step)
        if self.best_valid is None or self._better(valid, self.best_valid):
            self.best_valid = valid
        metric = self.task.metric
        self._eta.update(self.epoch + 1)
        log.info(f"[{self.prefix}] epoch {self.epoch + 1}/{self.s.epochs} train loss "
                 f"{summary['train_loss']:.3f} valid {format_metric(metric, valid[metric])} "
                 f"({summary['seconds']:.0f}s) | {self._eta.text()}")
        return summary

    def _log_window(self, loss: float, lr: float, step: int, steps: int, rate: float) -> None:
        """One progress line (the mean loss of the last log window) and the divergence check."""
        log_scalars(self.writer, self.prefix, {"train_loss": loss, "lr": lr}, self.global_step)
        log.info(f"[{self.prefix}] epoch {self.epoch + 1}/{self.s.epochs} step {step}/{steps} "
                 f"loss {loss:.3f} | {rate:.1f} steps/s")
        if self.divergence.check(loss, f"at step {self.global_step}"):
            log_scalars(self.writer, self.prefix, {"divergence_warnings": self.divergence.warnings},
                        self.global_step)

    def _better(self, a: dict, b: dict) -> bool:
        m = self.task.metric
        return a[m] > b[m] if self.task.higher_is_better else a[m] < b[m]

    def evaluate(self, split: str, max_batches: int | None = None) -> dict:
        """Metrics of the network on `split` in eval mode (no dropout, BatchNorm's running statistics)."""
        with eval_mode(self.model):
            return self.task.evaluate(self.model, split, None, max_batches)

    def test(self) -> dict:
        """Metrics on the test split (only final training reports these)."""
        metrics = self.evaluate("test")
        log_scalars(self.writer, self.prefix, {f"test_{k}": v for k, v in metrics.items()}, self.global_step)
        return metrics

    def state_dict(self) -> dict:
        return {"kind": "train", **self.metadata, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "epoch": self.epoch,
                "global_step": self.global_step, "history": self.history,
                "best_valid": self.best_valid, "nonfinite_total": self.stepper.nonfinite_total,
                "rng": global_rng_state()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.global_step = state["epoch"], state["global_step"]
        self.history, self.best_valid = state["history"], state["best_valid"]
        self.stepper.nonfinite_total = state.get("nonfinite_total", 0)
        if self.dist.active:
            self.dist.restore_rng(state, seed=self.global_step)
        else:
            restore_global_rng_state(state["rng"])

    def save(self) -> None:
        """Write the checkpoint (rank 0; with several processes every rank calls it: RNG states)."""
        state = self.state_dict()
        if self.dist.active:
            state["rng_ranks"] = self.dist.rng_states()
        if self.dist.is_main:
            save_checkpoint(self.checkpoint_path, state, keep=self.s.keep_checkpoints)


def perplexity_or_accuracy(task, metrics: dict) -> str:
    """A readable form of a metric dict."""
    return format_metric(task.metric, metrics[task.metric])

