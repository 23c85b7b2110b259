"""Engines of enas.parallel: inline, spawn process pool (with a dying worker), Ray."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from enas.parallel import InlineEngine, ProcessEngine, build_engine, threads_per_worker


def square(job):
    return job["x"] ** 2


def fail(job):
    raise ValueError(f"bad job {job['x']}")


def interrupt(job):
    raise KeyboardInterrupt


def die(job):
    os._exit(7)


def torch_threads(job):
    import torch
    return torch.get_num_threads()


def write_pid_and_sleep(job):
    with open(job["pid_file"], "w") as f:
        f.write(str(os.getpid()))
    time.sleep(job["seconds"])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:           # a zombie is gone too (reaped by init soon)
        return f.read().split(")")[-1].split()[0] != "Z"


def collect(engine, handles):
    """Results of every handle, waiting with the engine's own wait_any."""
    out, pending = {}, list(handles)
    while pending:
        for h in engine.wait_any(pending):
            pending.remove(h)
            out[h] = engine.result(h)
    return [out[h] for h in handles]


def test_inline_runs_when_waited_for_and_stores_errors():
    engine = InlineEngine()
    handles = [engine.submit(square, {"x": i}) for i in range(4)]
    assert collect(engine, handles) == [0, 1, 4, 9]
    bad = engine.submit(fail, {"x": 3})
    with pytest.raises(ValueError, match="bad job 3"):
        engine.result(bad)
    assert not engine.is_crash(ValueError())
    handle = engine.submit(interrupt, {})
    with pytest.raises(KeyboardInterrupt):       # an interruption is not a failed job
        engine.wait_any([handle])


def test_build_engine_checks_names():
    with pytest.raises(ValueError, match="known: process, ray, inline"):
        build_engine("threads", 2)
    with pytest.raises(ValueError, match="workers"):
        build_engine("inline", 0)
    assert threads_per_worker(10**6) == 1


def test_process_pool_results_threads_errors_and_a_dying_worker():
    engine = ProcessEngine(workers=2)
    try:
        handles = [engine.submit(square, {"x": i}) for i in range(6)]
        assert collect(engine, handles) == [0, 1, 4, 9, 16, 25]
        assert engine.result(engine.submit(torch_threads, {})) == threads_per_worker(2)
        bad = engine.submit(fail, {"x": 1})
        with pytest.raises(ValueError):
            engine.result(bad)
        lost = [engine.submit(die, {}), engine.submit(square, {"x": 2})]
        errors = []
        for h in lost:
            try:
                engine.result(h)
            except Exception as e:            # the pool breaks: every pending future fails
                errors.append(e)
        assert errors and all(engine.is_crash(e) for e in errors)
        engine.restart()
        assert engine.generation == 1
        assert engine.result(engine.submit(square, {"x": 5})) == 25   # a fresh pool works
    finally:
        engine.shutdown()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_process_pool_workers_exit_when_their_parent_is_killed(tmp_path):
    """A search killed with SIGKILL must not leave its workers training children for nobody."""
    pid_file = tmp_path / "worker.pid"
    parent = subprocess.Popen([sys.executable, "-c", (
        "from enas.parallel import ProcessEngine\n"
        "from tests.test_parallel import write_pid_and_sleep\n"
        "engine = ProcessEngine(workers=1)\n"
        f"engine.result(engine.submit(write_pid_and_sleep, {{'pid_file': {str(pid_file)!r}, 'seconds': 120}}))\n")],
        cwd=Path(__file__).resolve().parents[1])
    try:
        deadline = time.time() + 60
        while not (pid_file.exists() and pid_file.read_text()) and time.time() < deadline:
            time.sleep(0.2)
        worker = int(pid_file.read_text())
        assert alive(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.time() + 10
        while alive(worker) and time.time() < deadline:
            time.sleep(0.2)
        assert not alive(worker), "the worker outlived its killed parent"
    finally:
        parent.kill()


def test_ray_engine_results_and_crash():
    pytest.importorskip("ray", reason="Ray is optional (pip install 'enas[ray]')")
    engine = build_engine("ray", 2)
    try:
        handles = [engine.submit(square, {"x": i}) for i in range(4)]
        assert collect(engine, handles) == [0, 1, 4, 9]
        with pytest.raises(Exception) as info:
            engine.result(engine.submit(die, {}))
        assert engine.is_crash(info.value)
        with pytest.raises(Exception) as info:
            engine.result(engine.submit(fail, {"x": 2}))
        assert not engine.is_crash(info.value) and "bad job 2" in str(info.value)
    finally:
        engine.shutdown()
