"""One writer per run directory: an OS file lock on `<run_dir>/.lock`.

    @locks_run_dir(lambda cfg, run_dir: run_dir)      # on an entry point's run_* function
    def run_search(cfg, run_dir): ...

    with run_dir_lock(run_dir): ...                  # the same, as a context manager

The lock is `fcntl.flock` on `.lock`, so the kernel releases it when the holder dies, however
it dies (SIGKILL included): a killed run never blocks its own resume. The file holds the
holder's pid and command line, which a refused second writer prints. The lock is re-entrant
within one process (enas-compare searches, derives and trains one directory in turn).
Holding the lock makes it safe to delete temporary files a killed writer left behind.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from enas.fileio import remove_stale_temps
from enas.errors import UserError

try:
    import fcntl
except ImportError:                 # not POSIX (Windows): runs go unlocked
    fcntl = None

LOCK_NAME = ".lock"

#: run directory (real path) -> [file descriptor, depth] of the locks this process holds
_HELD: dict[str, list] = {}


@contextmanager
def run_dir_lock(run_dir: str, create: bool = True) -> Iterator[str]:
    """Hold the lock of `run_dir` for the block; a second writer gets a one-line `UserError`.

    create: make `run_dir` if missing (a new run); otherwise a missing directory is an error.
    """
    key = acquire(run_dir, create)
    try:
        yield run_dir
    finally:
        release(key)


def locks_run_dir(run_dir_of: Callable[..., str], create: bool = True):
    """Decorator: hold the lock of `run_dir_of(*args, **kwargs)` while the function runs."""
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with run_dir_lock(run_dir_of(*args, **kwargs), create=create):
                return fn(*args, **kwargs)
        return wrapper
    return decorate


def acquire(run_dir: str, create: bool = True) -> str:
    """Take the lock of `run_dir` (see `run_dir_lock`); returns the key for `release`."""
    if create:
        _make_dir(run_dir)
    elif not os.path.isdir(run_dir):
        raise UserError(f"run_dir={run_dir}: no such directory")
    key = os.path.realpath(run_dir)
    if key in _HELD:
        _HELD[key][1] += 1
        return key
    fd = _open_lock_file(run_dir)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise UserError(_busy_message(run_dir, holder)) from None
    _write_holder(fd)
    _HELD[key] = [fd, 1]
    remove_stale_temps(run_dir)        # nobody else writes here now: leftovers are a killed run's
    return key


def release(key: str) -> None:
    """Give back a lock taken by `acquire` (the kernel does it anyway when the process ends)."""
    held = _HELD.get(key)
    if held is None:
        return
    held[1] -= 1
    if held[1] == 0:
        del _HELD[key]
        os.close(held[0])               # closing the descriptor drops the flock


def _make_dir(run_dir: str) -> None:
    try:
        os.makedirs(run_dir, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create run directory {run_dir}: {e.strerror or e}") from None


def _open_lock_file(run_dir: str) -> int:
    path = os.path.join(run_dir, LOCK_NAME)
    try:
        # os.open's descriptors are not inherited by child processes, so a worker that outlives
        # a killed run cannot keep its lock.
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise UserError(f"cannot lock run directory {run_dir}: cannot open {path} ({e.strerror or e}); "
                        f"is it read-only?") from None


def _write_holder(fd: int) -> None:
    """Record who holds the lock: pid, command line, start time."""
    holder = {"pid": os.getpid(), "command": shlex.join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
              "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
    except OSError:
        pass                            # the lock holds without the note (e.g. a full disk)


def _read_holder(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _busy_message(run_dir: str, holder: dict) -> str:
    pid = holder.get("pid", "unknown")
    command = holder.get("command", "unknown command")
    since = f", since {holder['started']}" if holder.get("started") else ""
    return (f"{run_dir} is in use by another enas process (pid {pid}: {command}{since}); "
            f"wait for it to finish or stop it, or choose another run directory")
