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


OFFICIAL_ADAM = {"adam_beta1": 0.0, "adam_eps": 1e-3}   # melodyguan/enas src/utils.py:218


@pytest.mark.parametrize("experiment", ["enas_cifar10_micro", "enas_cifar10_macro", "enas_ptb", "enas_ptb_small",
                                        "enas_fashion_micro"])
def test_paper_presets_use_the_official_details(experiment):
    """Issue 9, section 1: the paper presets turn on every official detail, and the controller builds."""
    from enas.build import build_space
    from enas.strategies.base import build_strategy
    cfg = compose_config("search", [f"experiment={experiment}"])
    ctrl, sizes = cfg["controller"], cfg["space"]["sizes"]
    assert ctrl["priors"] and {k: ctrl[k] for k in OFFICIAL_ADAM} == OFFICIAL_ADAM
    if "micro" in experiment:
        assert sizes["sep_conv_stack"] == 2 and sizes["per_input_weights"] is True
        assert (ctrl["tanh_c"], ctrl["op_tanh_reduce"], ctrl["temperature"], ctrl["lstm_size"]) == (1.10, 2.5, 1.0, 64)
    elif "macro" in experiment:
        assert sizes["branch_conv1x1"] is True and ctrl["skip_pair"] and ctrl["skip_penalty"] == "mean"
        assert (ctrl["tanh_c"], ctrl["op_tanh_reduce"], ctrl["skip_target"], ctrl["skip_weight"]) == (1.5, 1.0, 0.4, 0.8)
        assert cfg["search"]["archs_per_step"] == 20
    else:
        assert cfg["search"]["archs_per_step"] == 10
        dropouts = tuple(sizes[k] for k in ("emb_dropout", "in_dropout", "hidden_dropout", "out_dropout"))
        assert dropouts == (0.25, 0.75, 0.25, 0.75) and sizes["hidden_dropout_every_node"] is True
        assert sizes["init_range"] == 0.04   # ptb_enas_child.py:507-515, enas_lm src/child.py:156
        assert (ctrl["tanh_c"], ctrl["temperature"], ctrl["entropy_weight"], ctrl["lstm_size"]) == (2.5, 5.0, 1e-3, 100)
    if experiment == "enas_ptb":
        assert cfg["trainer"]["sizes"]["in_dropout"] == 0.75          # ptb_final.sh x_keep 0.25
    space = build_space(cfg["space"])
    strategy = build_strategy(cfg["strategy"]["name"], space, **cfg["strategy"]["options"])
    assert strategy.optimizer.param_groups[0]["betas"][0] == 0.0 and strategy.controller.priors
