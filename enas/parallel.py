"""Execution engines for parallel child evaluation, behind one small interface.

    engine = build_engine("process", workers=2)
    handle = engine.submit(fn, job)          # fn: a module-level function, job: a picklable dict
    done = engine.wait_any(handles)          # the handles that finished (at least one)
    value = engine.result(handle)            # the return value, or raises the job's error
    engine.is_crash(error)                   # did a worker die (the job was lost, not failed)?
    engine.restart()                         # after a crash of the process pool
    engine.shutdown()

Engines (existing schedulers only; nothing here schedules work itself):
- "process": `concurrent.futures.ProcessPoolExecutor` with the "spawn" start method (forking a
  process that already runs torch threads is unsafe); each worker limits torch to
  cpu_count // workers threads, and exits as soon as the process that started it is gone (a
  killed search would otherwise leave its workers training children for nobody). A worker
  that dies breaks the whole pool (every pending future raises BrokenProcessPool): `restart()`
  makes a new pool, `generation` counts the pools.
- "ray": `ray.remote` tasks on a local Ray (optional extra `enas[ray]`); a dead worker raises
  WorkerCrashedError for its own task only. Ray's own retries are off: the caller counts them.
- "inline": runs each job in this process when it is waited for (debugging, tiny tests).
  Exceptions are stored in the handle; a BaseException that is not an Exception
  (KeyboardInterrupt) propagates.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Sequence

ENGINES = ("process", "ray", "inline")


def _start_worker(threads: int, parent_pid: int) -> None:
    """Process-pool initializer: cap torch's intra-op threads so workers do not oversubscribe,
    and follow the parent: a worker whose parent died (SIGKILL, a crash) exits within a second
    or two instead of finishing its job and idling as an orphan."""
    import torch
    torch.set_num_threads(threads)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True,
                     name="enas-parent-watch").start()


def _exit_with_parent(parent_pid: int, interval: float = 1.0) -> None:
    while os.getppid() == parent_pid:
        time.sleep(interval)
    os._exit(1)


def threads_per_worker(workers: int) -> int:
    """CPU threads each of `workers` parallel workers may use: the cores this process may use
    (enas.utils.available_cores, capped by OMP_NUM_THREADS) split among them, at least one."""
    from enas.utils import available_cores
    return max(1, available_cores() // max(1, workers))


class _Deferred:
    """An inline job: it runs when the engine waits for it (so results are handled one by one)."""

    def __init__(self, fn: Callable, job):
        self.fn, self.job = fn, job
        self.future = cf.Future()

    def run(self) -> None:
        if self.future.done():
            return
        try:
            self.future.set_result(self.fn(self.job))
        except Exception as e:          # BaseException (KeyboardInterrupt) goes up: an interruption
            self.future.set_exception(e)


class InlineEngine:
    """Runs each job in the calling process, when it is waited for (in submission order)."""

    name = "inline"

    def __init__(self, workers: int = 1):
        self.workers = workers
        self.generation = 0

    def submit(self, fn: Callable, job) -> _Deferred:
        return _Deferred(fn, job)

    def wait_any(self, handles: Sequence) -> list:
        done = [h for h in handles if h.future.done()]
        if done or not handles:
            return done
        handles[0].run()
        return [handles[0]]

    def result(self, handle: _Deferred):
        handle.run()
        return handle.future.result()

    def is_crash(self, error: BaseException) -> bool:
        return False

    def restart(self) -> None:
        self.generation += 1

    def shutdown(self) -> None:
        pass


class ProcessEngine:
    """A spawn-context ProcessPoolExecutor with `workers` processes."""

    name = "process"

    def __init__(self, workers: int = 2):
        self.workers = workers
        self.generation = 0
        self._pool: cf.ProcessPoolExecutor | None = None

    def _executor(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker, initargs=(threads_per_worker(self.workers), os.getpid()))
        return self._pool

    def submit(self, fn: Callable, job) -> cf.Future:
        return self._executor().submit(fn, job)

    def wait_any(self, handles: Sequence) -> list:
        done, _ = cf.wait(list(handles), return_when=cf.FIRST_COMPLETED)
        return [h for h in handles if h in done]        # in submission order

    def result(self, handle):
        return handle.result()

    def is_crash(self, error: BaseException) -> bool:
        return isinstance(error, BrokenProcessPool)

    def restart(self) -> None:
        """Drop a broken pool (its futures all failed) and start a fresh one on the next submit."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = None
        self.generation += 1

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None


class RayEngine:
    """Ray remote tasks on a local Ray started with `workers` CPUs (unless Ray already runs)."""

    name = "ray"

    def __init__(self, workers: int = 2):
        try:
            import ray
        except ImportError:
            raise ImportError("engine=ray needs Ray: pip install 'enas[ray]' (or pip install ray)") from None
        self.ray = ray
        self.workers = workers
        self.generation = 0
        if not ray.is_initialized():
            ray.init(num_cpus=workers, include_dashboard=False, ignore_reinit_error=True,
                     log_to_driver=False)
        self._remote: dict[Callable, object] = {}

    def submit(self, fn: Callable, job):
        if fn not in self._remote:
            # max_retries=0: the evaluator counts retries itself (and sees every crash).
            self._remote[fn] = self.ray.remote(num_cpus=1, max_retries=0)(fn)
        return self._remote[fn].remote(job)

    def wait_any(self, handles: Sequence) -> list:
        ready, _ = self.ray.wait(list(handles), num_returns=1)
        return ready

    def result(self, handle):
        return self.ray.get(handle)

    def is_crash(self, error: BaseException) -> bool:
        from ray import exceptions as rex
        return isinstance(error, (rex.WorkerCrashedError, rex.NodeDiedError))

    def restart(self) -> None:
        self.generation += 1             # Ray replaces dead workers itself

    def shutdown(self) -> None:
        self._remote.clear()             # the local Ray stays up for later evaluators


def build_engine(name: str, workers: int):
    """An engine by name (one of ENGINES)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if name == "inline":
        return InlineEngine(workers)
    if name == "process":
        return ProcessEngine(workers)
    if name == "ray":
        return RayEngine(workers)
    raise ValueError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}")
