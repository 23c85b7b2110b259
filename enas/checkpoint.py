"""Checkpoints: one self-describing dict of plain tensors and Python values.

Written atomically (temp file + rename, so a crash never leaves half a checkpoint) and read
with `torch.load(weights_only=True)`, so a shared checkpoint cannot run code.
"""

from __future__ import annotations

import os
import pickle
import tempfile

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


def load_checkpoint(path: str, map_location="cpu", kind: str | None = None) -> dict:
    """Read a checkpoint safely; errors name the file. `kind` ("search" | "train"): refuse others."""
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
    if kind is not None and state.get("kind") != kind:
        what = {"search": "a search run", "train": "a training run"}.get(kind, kind)
        raise UserError(f"{path}: a {state.get('kind')!r} checkpoint, not {what}")
    return state


def check_compatible(path: str, saved: dict, expected: dict) -> None:
    """Refuse a checkpoint whose space or sizes differ from the current run's; name the field."""
    for key, value in expected.items():
        if key in saved and saved[key] != value:
            if isinstance(value, dict) and isinstance(saved[key], dict):
                differ = sorted(k for k in set(value) | set(saved[key]) if value.get(k) != saved[key].get(k))
                what = ", ".join(f"{key}.{k}: checkpoint {saved[key].get(k)!r}, this run {value.get(k)!r}"
                                 for k in differ)
                raise UserError(f"{path}: the checkpoint was written with other {key} ({what})")
            raise UserError(f"{path}: checkpoint has {key}={saved[key]!r}, this run has {value!r}")
