"""Logging for enas: library modules log through `logging.getLogger(__name__)` (under "enas").

The command lines (Hydra) print these records to the console as plain lines; every run also
keeps them in a log file inside its run directory (`run_log`), also when it is started from
Python or from `enas-compare`, so the progress lines outlive the terminal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time

FILE_FORMAT = "[%(asctime)s] %(levelname)s %(message)s"


@contextlib.contextmanager
def run_log(path: str):
    """Append every enas log record (INFO and above) to `path` while the block runs."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    logger = logging.getLogger("enas")
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter(FILE_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    handler.setLevel(logging.INFO)
    previous_level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(previous_level)


class ConsoleFormatter(logging.Formatter):
    """Progress lines as they are; warnings and errors prefixed so they stand out."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno >= logging.ERROR:
            return f"error: {message}"
        if record.levelno >= logging.WARNING:
            return f"warning: {message}"
        return message


def format_duration(seconds: float) -> str:
    """12s, 3m05s, 1h02m: short enough for a progress line."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Eta:
    """Elapsed time and an estimate of the time left, from the pace of the units done so far."""

    def __init__(self, total: int, done: int = 0):
        self.total, self.start_done, self.done = total, done, done
        self.start = time.time()

    def update(self, done: int) -> None:
        """`done` units of `total` are finished."""
        self.done = done

    @property
    def elapsed(self) -> float:
        return time.time() - self.start

    def text(self) -> str:
        """"elapsed 3m05s, ETA 12m40s" (no ETA before the first unit of this session)."""
        finished = self.done - self.start_done
        if finished <= 0 or self.done >= self.total:
            return f"elapsed {format_duration(self.elapsed)}"
        left = self.elapsed / finished * (self.total - self.done)
        return f"elapsed {format_duration(self.elapsed)}, ETA {format_duration(left)}"
