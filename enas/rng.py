"""Random-number state as plain values, for checkpoints read with `torch.load(weights_only=True)`.

Two kinds of state, kept apart by name:
- the process-wide generators (python `random`, numpy's legacy global, torch CPU and CUDA) that
  a search or a training run touches: `global_rng_state()` / `restore_global_rng_state()`;
- one `numpy.random.Generator` that a strategy owns: `generator_state()` / `restore_generator_state()`.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def global_rng_state() -> dict:
    """Every process-wide RNG state (python, numpy, torch CPU and CUDA), as plain values."""
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_global_rng_state(state: dict) -> None:
    """Restore what `global_rng_state` saved."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def generator_state(rng: np.random.Generator) -> dict:
    """One numpy Generator's state as plain Python values."""
    return plain_value(rng.bit_generator.state)


def restore_generator_state(rng: np.random.Generator, state: dict) -> None:
    """Restore a state saved by `generator_state`."""
    rng.bit_generator.state = state


def plain_value(value):
    """Recursively turn numpy scalars/arrays inside dicts and lists into Python values."""
    if isinstance(value, dict):
        return {k: plain_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
