"""Checkpoints: one self-describing dict of plain tensors and Python values.

Written atomically (temp file + rename, so a crash never leaves half a checkpoint) and read
with `torch.load(weights_only=True)`, so a shared checkpoint cannot run code.
"""

from __future__ import annotations

import os
import pickle
import random
import tempfile

import numpy as np
import torch

from enas.utils import UserError

FORMAT = "enas-checkpoint"
VERSION = 1


def save_checkpoint(path: str, state: dict) -> None:
    """Atomically write `state` (plus format tags) to `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".pt")
    os.close(fd)
    try:
        torch.save({"format": FORMAT, "version": VERSION, **state}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(path: str, map_location="cpu") -> dict:
    """Read a checkpoint safely; errors name the file."""
    if not os.path.exists(path):
        raise UserError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: not a readable enas checkpoint ({first})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path}: not an enas checkpoint")
    if state.get("version") != VERSION:
        raise UserError(f"{path}: checkpoint version {state.get('version')}, this enas reads {VERSION}")
    return state


def rng_state() -> dict:
    """Every RNG state a run touches (python, numpy, torch CPU and CUDA), as plain values."""
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


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state` saved."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def check_compatible(path: str, saved: dict, expected: dict) -> None:
    """Refuse a checkpoint whose space or sizes differ from the current run's; name the field."""
    for key, value in expected.items():
        if key in saved and saved[key] != value:
            raise UserError(f"{path}: checkpoint has {key}={saved[key]!r}, this run has {value!r}")
