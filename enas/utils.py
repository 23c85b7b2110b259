"""Small shared helpers: device choice, seeding, errors meant for the user."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from enas.errors import UserError  # noqa: F401  (its home before enas.errors; many modules import it here)

DEVICES = ("auto", "cpu", "cuda", "cuda:<index>")


def pick_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA when present, else the CPU.

    Also flushes denormal floats to zero on the CPU: saturated gates produce denormal
    gradients, and arithmetic on them is many times slower on x86 (a smoke PTB search ran 25x
    slower per step in its second epoch without this).
    """
    torch.set_flush_denormal(True)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not (name == "cpu" or name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit())):
        raise UserError(f"device={name}: unknown device; accepted: {', '.join(DEVICES)}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device={name}: CUDA is not available on this machine (use device=auto or cpu)")
    return torch.device(name)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity), never more than OMP_NUM_THREADS when set."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:               # not on Linux
        cores = os.cpu_count() or 1
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 0:
        cores = min(cores, int(omp))
    return max(1, cores)


def set_threads(setting: int | str | None, share: int = 1) -> int:
    """Set torch's intra-op threads: `setting` ("auto"/None: `available_cores()`), divided among
    `share` processes that run at once (standalone workers, data-parallel ranks); returns it.

    torch's default oversubscribes a shared machine: a smoke search ran at 0.3 steps/s with two
    other busy processes, and at 23.8 steps/s with one thread each.
    """
    if setting in (None, "auto"):
        threads = available_cores()
    elif isinstance(setting, int) and not isinstance(setting, bool) and setting > 0:
        threads = setting
    else:
        raise UserError(f"threads={setting}: give a positive number of threads, or auto")
    threads = max(1, threads // max(1, share))
    torch.set_num_threads(threads)
    return threads


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
