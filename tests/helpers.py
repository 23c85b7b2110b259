"""Helpers for tests that compose the real Hydra configs and run the console scripts."""

from __future__ import annotations

import os
import subprocess
import sys

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

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


def run_module(module: str, *args: str, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run an entry point as `python -m <module>` (works before the console scripts are reinstalled)."""
    proc = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc
