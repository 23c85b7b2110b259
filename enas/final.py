"""Training a standalone network from scratch (final training, and low-fidelity evaluation).

`Trainer` runs epochs of SGD on a `Task`, with a per-epoch learning-rate schedule, gradient
clipping, an auxiliary-loss weight and a drop-path ramp (CNN final training), validation each
epoch, TensorBoard (`final/...`) and checkpoints that resume exactly.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch

from enas.checkpoint import rng_state, save_checkpoint, set_rng_state
from enas.optim import scheduled_lr, set_lr
from enas.tb import log_scalars
from enas.utils import state_is_finite


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


class Trainer:
    """Trains `model` on `task` from scratch; `state_dict()` is the checkpoint's content."""

    def __init__(self, task, model, optimizer, settings: TrainSettings, run_dir: str | None = None,
                 writer=None, metadata: dict | None = None, printer=print, prefix: str = "final"):
        self.task, self.model, self.optimizer, self.s = task, model, optimizer, settings
        self.run_dir, self.writer, self.metadata = run_dir, writer, metadata or {}
        self.print, self.prefix = printer, prefix
        self.epoch = 0
        self.global_step = 0
        self.history: list[dict] = []
        self.best_valid: dict | None = None
        self._nonfinite = 0

    @property
    def checkpoint_path(self) -> str:
        return os.path.join(self.run_dir, "checkpoint.pt")

    def run(self) -> dict:
        """Train the remaining epochs; returns the last epoch's summary."""
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
        for i, batch in enumerate(self.task.train_batches(self.epoch, epoch_steps=steps)):
            if i >= steps:
                break
            loss, new_state = self.task.loss(self.model, batch, state, None, aux_weight=self.s.aux_weight)
            if not torch.isfinite(loss) or not state_is_finite(new_state):
                state = self._skip_nonfinite(loss)
                continue
            self._nonfinite = 0
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.s.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.s.grad_clip)
            self.optimizer.step()
            state = new_state
            self.global_step += 1
            total, count = total + loss.item(), count + 1
            if self.s.log_every and self.global_step % self.s.log_every == 0:
                log_scalars(self.writer, self.prefix, {"train_loss": total / count, "lr": lr}, self.global_step)
                self.print(f"[{self.prefix}] epoch {self.epoch + 1}/{self.s.epochs} step {i + 1}/{steps} "
                           f"loss {total / count:.3f} | {(i + 1) / (time.time() - t0):.1f} steps/s")
        summary = {"epoch": self.epoch + 1, "train_loss": total / max(count, 1), "lr": lr,
                   "seconds": time.time() - t0}
        valid = self.task.evaluate(self.model, "valid", None, self.s.valid_batches)
        summary.update({f"valid_{k}": v for k, v in valid.items()})
        log_scalars(self.writer, self.prefix, {k: v for k, v in summary.items() if k != "epoch"}, self.global_step)
        if self.best_valid is None or self._better(valid, self.best_valid):
            self.best_valid = valid
        metric = self.task.metric
        self.print(f"[{self.prefix}] epoch {self.epoch + 1}/{self.s.epochs} train loss "
                   f"{summary['train_loss']:.3f} valid {metric} {valid[metric]:.4g} "
                   f"({summary['seconds']:.0f}s)")
        return summary

    def _better(self, a: dict, b: dict) -> bool:
        m = self.task.metric
        return a[m] > b[m] if self.task.higher_is_better else a[m] < b[m]

    def _skip_nonfinite(self, loss):
        self._nonfinite += 1
        self.optimizer.zero_grad(set_to_none=True)
        log_scalars(self.writer, self.prefix, {"nonfinite_steps": self._nonfinite}, self.global_step)
        if self._nonfinite >= self.s.max_nonfinite:
            where = f"; the last good checkpoint is {self.checkpoint_path}" if self.run_dir else ""
            raise FloatingPointError(f"{self._nonfinite} non-finite losses in a row at step "
                                     f"{self.global_step}: stopping{where}")
        self.print(f"warning: non-finite loss ({loss.item()}) at step {self.global_step}; step skipped")
        return self.task.init_state(self.model, "train")

    def test(self) -> dict:
        """Metrics on the test split (only final training reports these)."""
        metrics = self.task.evaluate(self.model, "test", None, None)
        log_scalars(self.writer, self.prefix, {f"test_{k}": v for k, v in metrics.items()}, self.global_step)
        return metrics

    def state_dict(self) -> dict:
        return {"kind": "train", **self.metadata, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "epoch": self.epoch,
                "global_step": self.global_step, "history": self.history,
                "best_valid": self.best_valid, "rng": rng_state()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.global_step = state["epoch"], state["global_step"]
        self.history, self.best_valid = state["history"], state["best_valid"]
        set_rng_state(state["rng"])

    def save(self) -> None:
        save_checkpoint(self.checkpoint_path, self.state_dict(), keep=self.s.keep_checkpoints)


def perplexity_or_accuracy(task, metrics: dict) -> str:
    """A readable form of a metric dict."""
    m = task.metric
    return f"{m} {metrics[m]:.2f}" if m == "ppl" else f"{m} {metrics[m] * 100:.2f}%"

