"""Small shared helpers: device choice, seeding, errors meant for the user."""

from __future__ import annotations

import random

import numpy as np
import torch

from enas.errors import UserError  # noqa: F401  (its home before enas.errors; many modules import it here)


def pick_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA when present, else the CPU.

    Also flushes denormal floats to zero on the CPU: saturated gates produce denormal
    gradients, and arithmetic on them is many times slower on x86 (a smoke PTB search ran 25x
    slower per step in its second epoch without this).
    """
    torch.set_flush_denormal(True)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device={name}: CUDA is not available on this machine (use device=auto or cpu)")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def detach_state(state):
    """Detach a recurrent state (a tensor, or a tuple/list of tensors) from the graph."""
    if state is None:
        return None
    if torch.is_tensor(state):
        return state.detach()
    return type(state)(detach_state(s) for s in state)


def state_is_finite(state) -> bool:
    if state is None:
        return True
    if torch.is_tensor(state):
        return bool(torch.isfinite(state).all())
    return all(state_is_finite(s) for s in state)
