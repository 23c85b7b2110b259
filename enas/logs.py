"""Logging for enas: library modules log through `logging.getLogger(__name__)` (under "enas").

The command lines (Hydra) print these records to the console as plain lines; every run also
keeps them in a log file inside its run directory (`run_log`), also when it is started from
Python or from `enas-compare`, so the progress lines outlive the terminal.
"""

from __future__ import annotations

import contextlib
import logging
import os

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
