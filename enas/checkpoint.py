"""Checkpoints: one self-describing dict of plain tensors and Python values.

Written through `enas.fileio.atomic_write` (temp file, fsync, rename, fsync of the folder: a
crash never leaves half a checkpoint, a power loss never an empty one) and read with
`torch.load(weights_only=True)`, so a shared checkpoint cannot run code.

The last `keep` checkpoints stay on disk, newest first:

    checkpoint.pt  checkpoint.prev.pt  checkpoint.prev2.pt ...   (keep=2: the first two)
    checkpoint.index.json                                          step and epoch of each file

`load_latest_checkpoint` falls back to the next file when the newest cannot be read (a disk
error, a copy cut short), and says which file it used and how many steps were lost.
"""

from __future__ import annotations

import errno
import glob
import io
import json
import os
import logging
import pickle
import re
from typing import Callable

import torch

from enas.fileio import TEMP_PREFIX, atomic_write
from enas.utils import UserError

FORMAT = "enas-checkpoint"
VERSION = 1
DEFAULT_KEEP = 2
log = logging.getLogger(__name__)


# --- file names ------------------------------------------------------------------------------------
def previous_path(path: str, age: int) -> str:
    """The name of the checkpoint `age` saves older than `path` (0: `path` itself)."""
    if age == 0:
        return path
    stem, ext = os.path.splitext(path)
    return f"{stem}.prev{'' if age == 1 else age}{ext}"


def index_path(path: str) -> str:
    """The small JSON file that records the step of each kept checkpoint."""
    return os.path.splitext(path)[0] + ".index.json"


def existing_checkpoints(path: str) -> list[str]:
    """The checkpoint files of `path` that exist, newest first (gaps allowed)."""
    stem, ext = os.path.splitext(path)
    pattern = re.compile(re.escape(os.path.basename(stem)) + r"\.prev(\d*)" + re.escape(ext) + "$")
    ages = {0: path} if os.path.exists(path) else {}
    for name in glob.glob(glob.escape(stem) + ".prev*" + ext):
        m = pattern.match(os.path.basename(name))
        if m:
            ages[int(m.group(1) or 1)] = name
    return [ages[a] for a in sorted(ages)]


def checkpoint_exists(path: str) -> bool:
    """True when `path` or one of its previous checkpoints exists."""
    return bool(existing_checkpoints(path))


# --- writing ---------------------------------------------------------------------------------------
def save_checkpoint(path: str, state: dict, keep: int = DEFAULT_KEEP) -> None:
    """Atomically and durably write `state` (plus format tags) to `path`, keeping `keep` files.

    The previous checkpoint becomes `checkpoint.prev.pt` only once the new one is on disk.
    """
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise UserError(f"keep_checkpoints={keep!r}: must be an integer >= 1")
    # Serialise in memory first: torch's own file writer turns a full disk into an opaque
    # "unexpected pos" RuntimeError; a plain write of the bytes raises OSError(ENOSPC).
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **state}, buffer)
    index = _read_index(path)
    moves: dict[str, str] = {}          # new name -> old name of the files the rotation shifted
    atomic_write(path, lambda f: f.write(buffer.getbuffer()), make_parents=True,
                 before_replace=lambda: moves.update(_rotate(path, keep)), intact=lambda: _intact_note(path, index))
    _prune(path, keep)
    _write_index(path, index, moves, progress(state))


def _rotate(path: str, keep: int) -> dict[str, str]:
    """Shift the kept checkpoints one age older; `path` itself stays until it is replaced.

    Returns {new name: old name} of what moved.
    """
    moves = {}
    for age in range(keep - 2, 0, -1):
        older = previous_path(path, age)
        if os.path.exists(older):
            os.replace(older, previous_path(path, age + 1))
            moves[previous_path(path, age + 1)] = older
    if keep > 1 and os.path.exists(path):
        _link_or_copy(path, previous_path(path, 1))
        moves[previous_path(path, 1)] = path
    return moves


def _write_index(path: str, old_index: dict, moves: dict[str, str], newest: dict) -> None:
    """Record the step of every kept checkpoint in `checkpoint.index.json`."""
    entries = {}
    for name in existing_checkpoints(path)[1:]:
        entry = old_index.get(os.path.basename(moves.get(name, name)))
        if entry:
            entries[os.path.basename(name)] = entry
    entries[os.path.basename(path)] = newest
    written = _describe_progress(newest)
    atomic_write(index_path(path), lambda f: json.dump(entries, f, indent=1), binary=False,
                 intact=f"the checkpoint {path}{f' ({written})' if written else ''} itself was written")


def _link_or_copy(source: str, target: str) -> None:
    """Make `target` hold `source`'s content atomically, `source` staying in place.

    A hard link costs nothing; where the filesystem has none, the file is copied durably.
    """
    tmp = os.path.join(os.path.dirname(os.path.abspath(target)), f"{TEMP_PREFIX}{os.getpid()}-link")
    if os.path.lexists(tmp):
        os.remove(tmp)
    try:
        os.link(source, tmp)
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
            raise
        with open(source, "rb") as f:
            data = f.read()
        atomic_write(target, lambda out: out.write(data))
        return
    os.replace(tmp, target)


def _prune(path: str, keep: int) -> None:
    """Remove checkpoints older than `keep` (left by a run that kept more)."""
    for name in existing_checkpoints(path)[keep:]:
        try:
            os.remove(name)
        except OSError:
            pass


def progress(state: dict) -> dict:
    """The step and epoch a checkpoint holds (search: `position`; training: top level)."""
    position = state.get("position") if isinstance(state.get("position"), dict) else state
    return {k: position[k] for k in ("global_step", "epoch") if isinstance(position.get(k), int)}


def _read_index(path: str) -> dict:
    """{file name: progress} of the kept checkpoints; empty when the index is missing or bad."""
    try:
        with open(index_path(path)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _steps(n: int) -> str:
    return "1 step" if n == 1 else f"{n} steps"


def _describe_progress(entry: dict | None) -> str:
    return f"step {entry['global_step']}" if entry and "global_step" in entry else ""


def _intact_note(path: str, index: dict) -> str:
    """What a failed checkpoint write leaves: the previous checkpoint, named."""
    for name in existing_checkpoints(path):
        where = _describe_progress(index.get(os.path.basename(name)))
        return (f"the previous checkpoint {name}{f' ({where})' if where else ''} is intact "
                f"(make room, then continue with resume=true)")
    return "no checkpoint had been written yet"


# --- reading ---------------------------------------------------------------------------------------
def load_checkpoint(path: str, map_location="cpu", kind: str | None = None) -> dict:
    """Read a checkpoint safely; errors name the file. `kind` ("search" | "train"): refuse others."""
    if not os.path.exists(path):
        raise UserError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as e:  # OSError: a disk error
        if isinstance(e, pickle.UnpicklingError):    # weights_only refused a global (code, a class)
            why = "it holds objects other than tensors and plain values; refused without running them"
        else:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            why = f"truncated or corrupt: {first}"
        raise UserError(f"{path}: not a readable enas checkpoint ({why})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path}: not an enas checkpoint")
    if state.get("version") != VERSION:
        raise UserError(f"{path}: checkpoint version {state.get('version')}, this enas reads {VERSION}")
    _check_kind(path, state, kind)
    return state


def _check_kind(path: str, state: dict, kind: str | None) -> None:
    """Refuse a checkpoint of another kind than `kind` ("search" | "train"; None: any)."""
    if kind is not None and state.get("kind") != kind:
        what = {"search": "a search run", "train": "a training run"}.get(kind, kind)
        raise UserError(f"{path}: a {state.get('kind')!r} checkpoint, not {what}")


def load_latest_checkpoint(path: str, map_location="cpu", warn: Callable[[str], None] | None = None,
                           set_aside: bool = False, kind: str | None = None) -> dict:
    """The newest readable checkpoint of `path`: `path` itself, else the previous ones in turn.

    Falling back prints a warning naming the file used and the steps lost; when no file can be
    read the error lists every file and why; a readable file of another `kind` is refused.
    `warn` defaults to this module's logger. set_aside (a resuming writer, holding the run
    directory's lock): rename the unreadable newer files to `<name>.corrupt`, so that the next
    save does not rotate them into the place of the previous checkpoint.
    """
    files = existing_checkpoints(path)
    if not files:
        raise UserError(f"{path}: no such checkpoint")
    problems = [] if files[0] == path else [f"{path} is missing"]
    unreadable = []
    for name in files:
        try:
            state = load_checkpoint(name, map_location=map_location)
        except UserError as e:
            problems.append(str(e))
            unreadable.append(name)
            continue
        if problems:
            if set_aside:
                for bad in unreadable:
                    os.replace(bad, bad + ".corrupt")
                problems.append(f"kept as {', '.join(os.path.basename(b) + '.corrupt' for b in unreadable)}")
            (warn or log.warning)(_fallback_warning(path, name, problems, progress(state)))
        _check_kind(name, state, kind)
        return state
    raise UserError(f"no readable checkpoint in {os.path.dirname(os.path.abspath(path))}: " + "; ".join(problems))


def _fallback_warning(path: str, used: str, problems: list[str], used_progress: dict) -> str:
    """One line: why the newest file was skipped, which file is used, and what is lost."""
    newest = (_read_index(path).get(os.path.basename(path)) or {}).get("global_step")
    step = used_progress.get("global_step")
    if step is None:
        lost = ""
    elif isinstance(newest, int) and newest > step:
        lost = f"; the work from step {step} to step {newest} ({_steps(newest - step)}) is lost"
    elif newest == step:
        lost = f"; no steps are lost (both are at step {step}), only the work saved after that step"
    else:
        lost = f"; the work after step {step} is lost"
    where = _describe_progress(used_progress)
    return (f"{'; '.join(problems)}; using the previous checkpoint {used}"
            f"{f' ({where})' if where else ''}{lost}")


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
