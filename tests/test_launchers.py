"""Hydra launchers: multiruns on a cluster through hydra-submitit-launcher (the `slurm` extra).

SLURM itself is not here: submitit's local executor (`hydra/launcher=submitit_local`) runs the
same launcher code with local processes, and the SLURM preset is checked as composed config.
"""

from __future__ import annotations

import glob
import os
import pathlib
import subprocess

import pytest
import torch

from enas.checkpoint import load_checkpoint
from tests.helpers import compose_config, run_script

pytest.importorskip("hydra_plugins.hydra_submitit_launcher",
                    reason="hydra-submitit-launcher is not installed (pip install 'enas[slurm]')")

TINY = ["experiment=smoke_ptb", "device=cpu", "search.max_steps=2", "search.omega_steps=2", "search.epochs=1",
        "search.strategy_steps=1", "search.valid_batches=1"]


def test_the_slurm_preset_is_the_submitit_slurm_launcher_with_enas_defaults():
    from hydra import compose, initialize_config_dir
    from enas.cli.common import CONFIG_DIR
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="search", overrides=["hydra/launcher=enas_slurm",
                                                        "hydra.launcher.partition=gpu"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.tasks_per_node, launcher.gpus_per_node) == ("gpu", 1, 1)
    assert launcher.max_num_timeout == 0 and launcher.signal_delay_s == 120   # submitit's own keys stay
    assert compose_config("search", ["hydra/launcher=enas_slurm"])["search"]["epochs"] == 10


SUBMITIT_TASK_1_OF_2 = {"SUBMITIT_EXECUTOR": "local", "SUBMITIT_LOCAL_JOB_ID": "4242", "SUBMITIT_LOCAL_NTASKS": "2",
                        "SUBMITIT_LOCAL_JOB_NUM_NODES": "1", "SUBMITIT_LOCAL_NODEID": "0",
                        "SUBMITIT_LOCAL_GLOBALID": "1", "SUBMITIT_LOCAL_LOCALID": "1"}
TORCHRUN_NAMES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def submitit_task_env(monkeypatch, **own: str) -> dict:
    """Export from the environment of task 1 of a one-node submitit job of 2 tasks (plus `own`
    variables the job sets); torchrun's variables it leaves."""
    from enas.distributed import export_submitit_env
    for name in TORCHRUN_NAMES:
        monkeypatch.setenv(name, "")          # recorded, so that what the export sets is undone after
        monkeypatch.delenv(name)
    for name, value in {**SUBMITIT_TASK_1_OF_2, **own}.items():
        monkeypatch.setenv(name, value)
    export_submitit_env()
    return {name: os.environ.get(name) for name in TORCHRUN_NAMES}


def test_a_submitit_task_gets_torchruns_variables_and_meets_on_the_loopback(monkeypatch):
    env = submitit_task_env(monkeypatch)
    assert {k: env[k] for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")} == \
        {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1"}
    assert 20000 <= int(env["MASTER_PORT"]) <= 60000                  # submitit's port of the job id


def test_a_submitit_job_that_sets_its_own_address_and_port_keeps_them(monkeypatch):
    env = submitit_task_env(monkeypatch, MASTER_ADDR="10.1.2.3", MASTER_PORT="29123")
    assert (env["MASTER_ADDR"], env["MASTER_PORT"], env["RANK"]) == ("10.1.2.3", "29123", "1")


def submitit_logs(sweep_dir) -> str:
    """The tails of the tasks' own logs (submitit's folder), for a failure message."""
    files = sorted(glob.glob(os.path.join(sweep_dir, ".submitit", "*", "*.*")))
    return "\n".join(f"--- {path}\n" + pathlib.Path(path).read_text(errors="replace")[-3000:]
                     for path in files if path.endswith((".out", ".err")))


@pytest.mark.slow
def test_submitit_local_multirun_of_two_searches_each_on_two_processes(tmp_path, monkeypatch):
    """Two seeds, one job each; each job has 2 tasks, which enas joins into one data-parallel search."""
    # a task that fails leaves the other waiting for the group (submitit waits for both): fail in
    # minutes, with the tasks' logs, not at the 60-minute default
    monkeypatch.setenv("ENAS_DIST_TIMEOUT_MIN", "3")
    try:
        run_script("enas-search", "-m", "hydra/launcher=submitit_local", "hydra.launcher.tasks_per_node=2",
                   f"hydra.sweep.dir={tmp_path}", "seed=0,1", *TINY, timeout=420)
    except (AssertionError, subprocess.TimeoutExpired) as error:
        raise AssertionError(f"{error}\n{submitit_logs(tmp_path)}") from None
    states = [load_checkpoint(str(tmp_path / f"{i}-reinforce-seed{i}" / "checkpoint.pt"), kind="search")
              for i in (0, 1)]
    for seed, state in enumerate(states):
        assert state["config"]["seed"] == seed and state["position"]["global_step"] == 2
        assert len(state["rng_ranks"]) == 2                       # 2 ranks trained it
    assert not torch.equal(states[0]["supernet"]["w_x"], states[1]["supernet"]["w_x"])
