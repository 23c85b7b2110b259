"""Per-epoch learning-rate schedules shared by search and final training (the optimizer itself
is built by `enas.build.build_optimizer`)."""

from __future__ import annotations

import math

import torch


def lr_factor(schedule: str, epoch: int, *, decay: float = 1.0, decay_start: int = 0,
              t0: int = 10, t_mul: int = 2, min_ratio: float = 0.0, total_epochs: int = 1) -> float:
    """Learning-rate multiplier at `epoch` (0-based).

    constant: 1. decay: `decay ** max(0, epoch - decay_start + 1)` (ENAS PTB: 0.95 from epoch 12).
    cosine: one cosine from 1 to `min_ratio` over `total_epochs`.
    cosine_restarts: SGDR with period t0, multiplied by t_mul after each restart (ENAS CIFAR).
    """
    if schedule == "constant":
        return 1.0
    if schedule == "decay":
        return decay ** max(0, epoch - decay_start + 1)
    if schedule == "cosine":
        progress = min(epoch / max(total_epochs, 1), 1.0)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "cosine_restarts":
        period, start = t0, 0
        while epoch >= start + period:
            start, period = start + period, period * t_mul
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * (epoch - start) / period))
    raise ValueError(f"unknown lr schedule {schedule!r} (constant, decay, cosine, cosine_restarts)")


def scheduled_lr(base_lr: float, schedule: str, lr_kwargs: dict | None, epoch: int, total_epochs: int) -> float:
    """The learning rate of `epoch`: `base_lr * lr_factor(...)`; `lr_kwargs` may hold `lr_min`."""
    kw = dict(lr_kwargs or {})
    lr_min = kw.pop("lr_min", 0.0)
    return base_lr * lr_factor(schedule, epoch, min_ratio=lr_min / base_lr, total_epochs=total_epochs, **kw)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
