"""Child functions with injected faults, handed to standalone evaluators in tests.

They wrap the real `enas.build.run_child`, so the library holds no test-only code. Module
level and picklable: process-pool and Ray workers import this module by name.
"""

from __future__ import annotations

import json
import os

from enas.build import run_child


def _once(marker: str | None) -> bool:
    """True the first time a marker path is seen (the file is created), False afterwards."""
    if not marker or os.path.exists(marker):
        return False
    with open(marker, "w") as f:
        f.write(str(os.getpid()))
    return True


class FaultyChild:
    """`run_child` that logs its calls and, for job `index` (None: any), dies, raises or is
    interrupted once (marker files remember that it happened), or always raises."""

    def __init__(self, call_log: str | None = None, index: int | None = None, crash_once: str | None = None,
                 raise_once: str | None = None, interrupt_once: str | None = None, always_raise: bool = False):
        self.call_log, self.index = call_log, index
        self.crash_once, self.raise_once, self.interrupt_once = crash_once, raise_once, interrupt_once
        self.always_raise = always_raise

    def __call__(self, job: dict) -> dict:
        if self.call_log:
            with open(self.call_log, "a") as f:
                f.write(json.dumps({"phase": job["phase"], "index": job["index"], "choices": job["choices"]}) + "\n")
        if self.index is None or self.index == job["index"]:
            if self.always_raise:
                raise RuntimeError("injected failure (always)")
            if _once(self.crash_once):
                os._exit(3)                          # the worker process dies without a word
            if _once(self.raise_once):
                raise RuntimeError("injected failure (raise_once)")
            if _once(self.interrupt_once):
                raise KeyboardInterrupt("injected interruption (interrupt_once)")
        return run_child(job)
