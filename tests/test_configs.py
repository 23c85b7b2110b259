"""Every config option composes (lightning-hydra-template style), against the typed schema."""

import dataclasses
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from enas.cli.common import CONFIG_DIR
from enas.hydra_config import describe_error
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
    assert set(options("space")) == set(SPACES) | {"custom"}      # custom: the user's module (space.target)
    assert set(options("strategy")) == set(STRATEGIES)


def test_mandatory_values_are_named(tmp_path):
    from tests.helpers import run_script
    proc = run_script("enas-derive", check=False)
    assert proc.returncode == 2 and "missing value for run_dir" in proc.stderr
    proc = run_script("enas-train", f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode == 2 and "missing value for arch" in proc.stderr


OFFICIAL_ADAM = {"adam_beta1": 0.0, "adam_eps": 1e-3}   # melodyguan/enas src/utils.py:218
OFFICIAL_ENTROPY_MODE = "reward"                        # reward += entropy_weight * sample_entropy


@pytest.mark.parametrize("experiment", ["enas_cifar10_micro", "enas_cifar10_macro", "enas_ptb", "enas_ptb_small",
                                        "enas_fashion_micro", "quality_cifar_micro"])
def test_paper_presets_use_the_official_details(experiment):
    """Issue 9, section 1: the paper presets turn on every official detail, and the controller builds."""
    from enas.build import build_space
    from enas.strategies.base import build_strategy
    cfg = compose_config("search", [f"experiment={experiment}"])
    ctrl, sizes = cfg["controller"], cfg["space"]["sizes"]
    assert ctrl["priors"] and {k: ctrl[k] for k in OFFICIAL_ADAM} == OFFICIAL_ADAM
    assert ctrl["entropy_mode"] == OFFICIAL_ENTROPY_MODE
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
    assert strategy.entropy_mode == OFFICIAL_ENTROPY_MODE



# The section-1 details of each harness space, undone (experiments/search_quality/run.sh, before_fixes).
BEFORE_FIXES = {"quality_cifar_micro": ["controller.priors=false", "space.sizes.sep_conv_stack=1",
                                        "space.sizes.per_input_weights=false", "space.sizes.aux_head=false",
                                        "search.aux_weight=0.0"],
                "quality_cifar_macro": ["controller.skip_pair=false", "controller.skip_penalty=sum",
                                        "space.sizes.branch_conv1x1=false"]}


@pytest.mark.parametrize("experiment", sorted(BEFORE_FIXES))
def test_harness_ground_truth_ignores_the_supernet_settings(experiment):
    """A harness preset trains the official network from scratch whatever the supernet is set to,
    so every search setting (the fidelity fixes undone, say) is placed in one trained pool."""
    from enas.quality import training_part
    official = compose_config("search", [f"experiment={experiment}"])
    undone = compose_config("search", [f"experiment={experiment}", *BEFORE_FIXES[experiment]])
    assert official["space"]["sizes"] != undone["space"]["sizes"]
    assert training_part(undone) == training_part(official)
    sizes = training_part(official)["space"]["sizes"]
    if "micro" in experiment:
        assert sizes["sep_conv_stack"] == 2 and sizes["per_input_weights"] is True and sizes["aux_head"] is False
    else:
        assert sizes["branch_conv1x1"] is True

# --- where the configs live; Hydra settings ---------------------------------------------------------------
PRIMARY = {"search": [], "train": ["arch=x.json"], "compare": [], "derive": ["run_dir=x"], "rank_check": ["run_dir=x"],
           "beats_random": []}


def compose_typed(config_name, overrides=(), hydra_section=False):
    """The composed config itself (typed nodes, hydra section on request), not a plain dict."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name, overrides=list(overrides), return_hydra_config=hydra_section)


def test_configs_are_found_through_the_package():
    import enas.conf
    assert Path(CONFIG_DIR) == Path(enas.conf.__file__).parent
    assert (Path(CONFIG_DIR) / "search.yaml").is_file() and (Path(CONFIG_DIR) / "hydra" / "default.yaml").is_file()


def test_every_command_shares_the_hydra_settings():
    run_dirs = set()
    for config_name, overrides in PRIMARY.items():
        hydra_cfg = compose_typed(config_name, overrides, hydra_section=True).hydra
        assert hydra_cfg.job.chdir is False, config_name
        assert hydra_cfg.sweep.dir.startswith("runs/multirun/"), config_name
        run_dirs.add(OmegaConf.to_container(hydra_cfg.run, resolve=False)["dir"])
    # derive and rank-check both write into run_dir, compare and beats-random into out_dir
    assert len(run_dirs) == len(PRIMARY) - 2


# --- typed configs (enas/config_schema.py) -------------------------------------------------------------
@pytest.mark.parametrize("group", ["data", "space", "controller", "strategy", "evaluator", "trainer"])
def test_every_group_option_is_typed(group):
    for option in options(group):
        cfg = compose_typed("search", [f"{group}={option}"])
        assert dataclasses.is_dataclass(OmegaConf.get_type(cfg[group])), (group, option)


@pytest.mark.parametrize("config_name, overrides, error", [
    ("search", ["search.epochs=abc"], "search.epochs=abc: expected int"),
    ("search", ["search.omega_steps=few"], "search.omega_steps=few: expected int or null"),
    ("search", ["data=digits", "data.augment.flip=maybe"], "data.augment.flip=maybe: expected bool"),
    ("search", ["strategy=evolution", "strategy.options.population_size=x"],
     "strategy.options.population_size=x: expected int"),
    ("search", ["evaluator=standalone", "evaluator.options.workers=two"], "evaluator.options.workers=two: expected int"),
    ("search", ["controller.lr=fast"], "controller.lr=fast: expected float"),
    ("search", ["search.surrogate.share=half"], "search.surrogate.share=half: expected float"),
    ("train", ["arch=x.json", "trainer.optim.nesterov=often"], "trainer.optim.nesterov=often: expected bool"),
    ("compare", ["seeds=[0,a]"], "seeds[1]=a: expected int"),
    ("compare", ["strategies=random"], "strategies=random: expected list of str"),
    ("derive", ["run_dir=x", "num_samples=many"], "num_samples=many: expected int or null"),
    ("rank_check", ["run_dir=x", "ground_truth.workers=abc"], "ground_truth.workers=abc: expected int"),
    ("rank_check", ["run_dir=x", "ground_truth.seeds=[0,a]"], "ground_truth.seeds[1]=a: expected int"),
    ("rank_check", ["run_dir=x", "one_shot.valid_images=many"], "one_shot.valid_images=many: expected int or null"),
    ("rank_check", ["run_dir=x", "stats.level=high"], "stats.level=high: expected float"),
    ("beats_random", ["num_random=many"], "num_random=many: expected int"),
    ("beats_random", ["train_seeds=[0,a]"], "train_seeds[1]=a: expected int"),
    ("search", ["data=digits", "data.split_seed=x"], "data.split_seed=x: expected int or null"),
])
def test_bad_types_are_named_with_the_expected_type(config_name, overrides, error):
    with pytest.raises(Exception) as info:
        compose_typed(config_name, overrides)
    assert describe_error(info.value) == error


COMMON_KEYS = ["seed", "trainer.epochs", "search.epochs", "search.optim.lr"]


@pytest.mark.parametrize("config_name, key", [(name, key) for name in ("search", "train", "compare", "beats_random")
                                               for key in COMMON_KEYS]
                         + [("derive", "seed"), ("derive", "top"), ("rank_check", "seed"), ("rank_check", "num_archs"),
                            ("rank_check", "ground_truth.average"), ("beats_random", "average")])
def test_every_command_checks_its_keys(config_name, key):
    with pytest.raises(Exception) as info:
        compose_typed(config_name, PRIMARY[config_name] + [f"{key}=abc"])
    assert describe_error(info.value).startswith(f"{key}=abc: expected ")


def test_open_sections_take_new_keys_and_closed_ones_do_not(tmp_path):
    cfg = compose_typed("search", ["+search.surrogate.model=forest", "+space.structure.hyperparameters.lr=[0.1]",
                                   "+trainer.sizes.dropout=0.2"])
    assert cfg.search.surrogate.model == "forest" and cfg.trainer.sizes.dropout == 0.2
    # A user's preset (found through hydra.searchpath) adds keys to open sections only.
    (tmp_path / "experiment").mkdir()
    preset = "# @package _global_\nsearch:\n  surrogate:\n    trees: 50\nspace:\n  sizes:\n    width: 3\n"
    (tmp_path / "experiment" / "mine.yaml").write_text(preset)
    (tmp_path / "experiment" / "typo.yaml").write_text("# @package _global_\nsearch:\n  epochz: 3\n")
    cfg = compose_typed("search", [f"hydra.searchpath=[file://{tmp_path}]", "experiment=mine"])
    assert cfg.search.surrogate.trees == 50 and cfg.space.sizes.width == 3
    for overrides in ([f"hydra.searchpath=[file://{tmp_path}]", "experiment=typo"], ["search.epochz=3"]):
        with pytest.raises(Exception) as info:
            compose_typed("search", overrides)
        assert "epochz" in describe_error(info.value) and "SearchSection" in describe_error(info.value)


# Through the console scripts: one line on stderr, exit code 2, nothing written.
@pytest.mark.parametrize("script, args, error", [
    ("enas-search", ["experiment=smoke_ptb", "search.epochs=abc"], "search.epochs=abc: expected int"),
    ("enas-train", ["arch=x.json", "trainer.epochs=abc"], "trainer.epochs=abc: expected int"),
    ("enas-compare", ["experiment=smoke_micro", "search.optim.lr=fast"], "search.optim.lr=fast: expected float"),
    ("enas-derive", ["seed=x"], "seed=x: expected int or null"),
    ("enas-rank-check", ["experiment=smoke_ptb", "num_archs=abc"], "num_archs=abc: expected int"),
    ("enas-beats-random", ["experiment=smoke_micro", "num_random=abc"], "num_random=abc: expected int"),
])
def test_commands_report_a_bad_type_in_one_line(tmp_path, script, args, error):
    from tests.helpers import run_command
    run_dir = tmp_path / "run"
    if script in ("enas-derive", "enas-rank-check"):      # they read an existing run dir
        run_dir.mkdir()
        where = [f"run_dir={run_dir}"]
    else:
        where = [f"out_dir={run_dir}"] if script in ("enas-compare", "enas-beats-random") else [f"hydra.run.dir={run_dir}"]
    proc = run_command(script, *args, *where, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == f"error: {error}"
    assert not run_dir.exists() or not any(run_dir.iterdir())
