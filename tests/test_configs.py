"""Every config option composes (lightning-hydra-template style)."""

from pathlib import Path

import pytest

from enas.cli.common import CONFIG_DIR
from tests.helpers import compose_config

GROUPS = ["data", "space", "strategy", "evaluator", "trainer"]


def options(group):
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))


@pytest.mark.parametrize("experiment", options("experiment"))
@pytest.mark.parametrize("config_name", ["search", "train"])
def test_every_experiment_composes(experiment, config_name):
    overrides = [f"experiment={experiment}"] + (["arch=x.json"] if config_name == "train" else [])
    cfg = compose_config(config_name, overrides)
    assert cfg["space"]["name"] and cfg["trainer"]["optim"]["lr"] > 0
    if config_name == "search":
        assert cfg["search"]["epochs"] >= 1 and cfg["strategy"]["name"]


@pytest.mark.parametrize("group", GROUPS)
def test_every_group_option_composes(group):
    for option in options(group):
        cfg = compose_config("search", [f"{group}={option}"])
        assert cfg[group]["name"] == option if group != "trainer" else cfg["trainer"]["epochs"] >= 1


def test_registries_match_configs():
    from enas.spaces import SPACES
    from enas.strategies import STRATEGIES
    assert set(options("space")) == set(SPACES)
    assert set(options("strategy")) == set(STRATEGIES)


def test_mandatory_values_are_named(tmp_path):
    from tests.helpers import run_script
    proc = run_script("enas-derive", check=False)
    assert proc.returncode == 2 and "missing value for run_dir" in proc.stderr
    proc = run_script("enas-train", f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode == 2 and "missing value for arch" in proc.stderr
