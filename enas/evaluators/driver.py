"""Running child jobs on an engine of `enas.parallel`: in-flight limit, retries, dead workers.

The driver knows nothing of architectures or rewards: it submits `work.job` to `child_fn`
on the engine, retries failures up to `retries` times (a dead worker process is replaced once
per broken pool, however many jobs it lost), and settles every piece of work exactly once with
either the child's output or the error that ended it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from enas.arch import Architecture

log = logging.getLogger(__name__)


@dataclass
class Work:
    """One architecture to evaluate, and its tries so far."""

    arch: Architecture
    index: int                      # position within the theta phase (journal key)
    slot: int | None = None         # position within a sync batch
    label: str = ""                 # how log lines name it
    failures: int = 0
    generation: int = 0             # engine generation it was last submitted to
    job: dict = field(default_factory=dict)
    metrics: dict | None = None     # the child's validation metrics, once it has finished


class EngineDriver:
    """Keeps up to `max_in_flight` children running on an engine (started on first use)."""

    def __init__(self, child_fn: Callable[[dict], dict], engine: str = "process", workers: int = 1,
                 retries: int = 1):
        from enas.parallel import ENGINES
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")
        if workers < 1 or retries < 0:
            raise ValueError(f"needs workers >= 1 and retries >= 0 (got {workers}, {retries})")
        self.child_fn = child_fn
        self.engine_name, self.workers, self.retries = engine, workers, retries
        self._engine = None

    @property
    def engine(self):
        """The engine, started on first use (a Ray or process pool costs seconds to start)."""
        if self._engine is None:
            from enas.parallel import build_engine
            self._engine = build_engine(self.engine_name, self.workers)
        return self._engine

    def close(self) -> None:
        """Stop the worker processes."""
        if self._engine is not None:
            self._engine.shutdown()
            self._engine = None

    def drive(self, source: Callable[[], Work | None], settle: Callable[[Work, dict | None, str | None], None],
              max_in_flight: int) -> None:
        """Run work from `source` until it returns None; `settle(work, output, error)` once per work."""
        pending: dict = {}
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < max_in_flight:
                    work = source()
                    if work is None:
                        exhausted = True
                        break
                    self._submit(work, pending)
                if not pending:
                    return
                for handle in self.engine.wait_any(list(pending)):
                    work = pending.pop(handle)
                    try:
                        out = self.engine.result(handle)
                    except Exception as e:
                        error = self._failed(work, e)
                        if work.failures <= self.retries:
                            self._submit(work, pending)
                        else:
                            settle(work, None, error)
                        continue
                    settle(work, out, None)
        except BaseException:
            if pending and self._engine is not None:
                self._engine.restart()          # drop the unfinished jobs; the caller's journal has the rest
            raise

    def _submit(self, work: Work, pending: dict) -> None:
        try:
            handle = self.engine.submit(self.child_fn, work.job)
        except Exception as e:                 # the pool broke before we noticed: replace it once
            if not self.engine.is_crash(e):
                raise
            self.engine.restart()
            handle = self.engine.submit(self.child_fn, work.job)
        work.generation = self.engine.generation
        pending[handle] = work

    def _failed(self, work: Work, error: Exception) -> str:
        """Count a failure, replace a broken pool, log it; the error in words."""
        work.failures += 1
        crash = self.engine.is_crash(error)
        first = (str(error).strip().splitlines() or [""])[0][:200]
        what = f"worker process died ({type(error).__name__})" if crash else f"{type(error).__name__}: {first}"
        if crash and work.generation == self.engine.generation:
            self.engine.restart()              # one restart per broken pool, however many jobs it lost
        if work.failures <= self.retries:
            log.warning("evaluation %s failed (%s); retry %d/%d", work.label, what, work.failures,
                        self.retries)
        return what
