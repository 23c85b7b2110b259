"""Helpers for tests that compose the real Hydra configs and run the console scripts."""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import subprocess
import sys

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from enas.build import build_search
from enas.checkpoint import load_checkpoint
from enas.cli.common import CONFIG_DIR


def compose_config(config_name: str = "search", overrides: list[str] | None = None) -> dict:
    """The config an entry point would see, as a plain dict (no hydra section)."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides or [])
    return OmegaConf.to_container(cfg, resolve=True)


def run_script(name: str, *args: str, check: bool = True, timeout: int = 600, cwd=None) -> subprocess.CompletedProcess:
    """Run a console script of the venv (enas-search, ...) and return its output.

    A script the venv does not have yet (installed before it was added) runs as `python -m enas.cli.<name>`.
    """
    exe = os.path.join(os.path.dirname(sys.executable), name)
    command = [exe] if os.path.exists(exe) else [sys.executable, "-m", "enas.cli." + name[len("enas-"):].replace("-", "_")]
    proc = subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"{name} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_command(name: str, *args: str, check: bool = True, cwd=None) -> subprocess.CompletedProcess:
    """Run a console script's entry function in this process (`enas-search` -> enas.cli.search:main)
    with `args` as its command line; stdout, stderr and the exit status as `run_script` returns them.

    The same function the console script calls, without the 5 s of a fresh interpreter importing
    torch: for end-to-end tests of what a command does. Tests of the process itself (signals, a
    killed run, exit codes seen by a shell, torchrun) use `run_script`.
    """
    module = importlib.import_module("enas.cli." + name[len("enas-"):].replace("-", "_"))
    out, err = io.StringIO(), io.StringIO()
    saved_argv, code = sys.argv, 0
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    sys.argv = [name, *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                (contextlib.chdir(cwd) if cwd else contextlib.nullcontext()):
            try:
                module.main()
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = saved_argv
        _restore_root_logger(saved_handlers, saved_level)
    proc = subprocess.CompletedProcess([name, *args], code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"{name} {' '.join(args)} failed ({code}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _restore_root_logger(handlers: list, level: int) -> None:
    """Hydra configures the root logger for the command (console and the run directory's log file)
    and leaves it so: close what it added, as a process exit would, and put back what was there."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


def run_loop(cfg: dict, run_dir, max_steps, resume_from=None):
    """Build a search from `cfg` in `run_dir` (on CPU), load `resume_from`'s checkpoint if given,
    and run it for at most `max_steps` omega steps in total (None: its epochs); the loop."""
    cfg["search"]["max_steps"] = max_steps
    loop = build_search(cfg, str(run_dir), torch.device("cpu"))
    if resume_from is not None:
        loop.load_state_dict(load_checkpoint(resume_from))
    loop.run()
    return loop
