"""The package carries its configs: a wheel installed into a fresh virtual environment runs.

The wheel is built from a copy of the sources (setup.cfg, pyproject.toml, README.md, enas/,
conf/), installed without dependencies into a new virtual environment outside the repository
that sees this environment's third-party packages through a .pth file (a folder added by a
.pth file is not scanned for .pth files, so the editable install of enas here stays out), and
enas-search runs from an empty folder with no PYTHONPATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD_INPUTS = ("setup.cfg", "pyproject.toml", "README.md", "enas", "conf")


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a command; fail the test with its output when it fails."""
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def clean_env() -> dict:
    """This process's environment without anything that points Python at other code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
    return {**env, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the sources (no build/ or egg-info left in the repository)."""
    tmp = tmp_path_factory.mktemp("wheel")
    for name in BUILD_INPUTS:
        source, target = REPO / name, tmp / "src" / name
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp / "dist",
         tmp / "src"])
    (built,) = (tmp / "dist").glob("enas-*.whl")
    return built


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory, wheel) -> Path:
    """A new virtual environment holding only the wheel, plus this environment's other packages."""
    root = tmp_path_factory.mktemp("venv") / "venv"
    venv.create(root, with_pip=False)
    python = root / "bin" / "python"
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    Path(purelib, "third_party.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], env=clean_env())
    return root


@pytest.mark.slow
def test_wheel_holds_every_config(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {f"enas/conf/{p.relative_to(REPO / 'conf').as_posix()}" for p in (REPO / "conf").rglob("*.yaml")}
    assert configs and configs <= names
    assert "enas/conf/hydra/default.yaml" in names and not any(n.startswith("conf/") for n in names)


@pytest.mark.slow
def test_installed_wheel_searches_from_an_empty_folder(fresh_venv, tmp_path):
    cwd = tmp_path / "empty"
    cwd.mkdir()
    env = clean_env()
    where = run([fresh_venv / "bin" / "python", "-c", "import enas, enas.conf; print(enas.__file__)"],
                cwd=cwd, env=env).stdout.strip()
    assert Path(where).is_relative_to(fresh_venv) and not Path(where).is_relative_to(REPO), where
    run_dir = tmp_path / "run"
    run([fresh_venv / "bin" / "enas-search", "experiment=smoke_ptb", f"hydra.run.dir={run_dir}", "search.epochs=1",
         "search.max_steps=5", "search.strategy_steps=1", "search.valid_batches=1"], cwd=cwd, env=env)
    assert (run_dir / "checkpoint.pt").is_file()
    assert list(cwd.iterdir()) == []          # everything went to the run dir
