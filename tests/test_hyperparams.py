"""Hyperparameter decisions: the WithHyperparameters wrapper, build_space, the evaluator, Hydra syntax."""

from __future__ import annotations

import pytest
import numpy as np
import torch
from hydra import compose, initialize_config_dir

from enas.arch import Architecture
from enas.build import build_task
from enas.cli.common import CONFIG_DIR
from enas.build import build_evaluator
from enas.spaces import build_space
from enas.spaces.hyperparams import WithHyperparameters
from enas.strategies.base import uniform_architecture

HP = {"lr": [0.01, 0.1], "dropout": [0.0, 0.5]}


def space_with_hp():
    return build_space("nas_cnn", num_layers=2, hyperparameters=HP)


def test_build_space_wraps_and_round_trips():
    space = space_with_hp()
    inner = build_space("nas_cnn", num_layers=2)
    assert isinstance(space, WithHyperparameters) and space.name == "nas_cnn" and space.task == "image"
    decisions = space.decisions()
    assert len(decisions) == len(inner.decisions()) + 2
    assert [(d.name, d.kind, d.labels) for d in decisions[-2:]] == [("hp_lr", "op", ("0.01", "0.1")),
                                                                   ("hp_dropout", "op", ("0.0", "0.5"))]
    assert space.structure()["hyperparameters"] == HP
    again = build_space("nas_cnn", **space.structure())
    assert again.structure() == space.structure()


def test_choices_map_to_values_and_reach_the_network():
    space = space_with_hp()
    inner_choices = uniform_architecture("nas_cnn", space.inner.decisions(), np.random.default_rng(0)).choices
    arch = Architecture("nas_cnn", inner_choices + (1, 1))
    assert space.hyperparameters(arch) == {"lr": 0.1, "dropout": 0.5}
    assert space.training_hyperparameters(arch) == {"lr": 0.1}
    net = space.build_network(arch, num_classes=10, in_channels=1, image_size=8, dropout=0.0)
    assert net.dropout.p == 0.5                      # the size hyperparameter overrides the config size
    assert "hp_lr=0.1" in space.describe(arch) and "hp_dropout=0.5" in space.describe(arch)
    assert ("hyperparameters", "lr=0.1, dropout=0.5") in space.graph(arch).nodes
    data = space.arch_to_dict(arch)
    assert space.arch_from_dict(data) == arch
    with pytest.raises(Exception, match="hp_lr"):
        space.validate(Architecture("nas_cnn", inner_choices + (2, 0)))


def test_bad_hyperparameters_are_named():
    with pytest.raises(ValueError, match="'momentum_magic'"):
        build_space("nas_cnn", num_layers=2, hyperparameters={"momentum_magic": [1, 2]})
    with pytest.raises(ValueError, match="hyperparameters.lr"):
        build_space("nas_cnn", num_layers=2, hyperparameters={"lr": []})
    with pytest.raises(ValueError, match="duplicate"):
        build_space("nas_cnn", num_layers=2, hyperparameters={"lr": [0.1, 0.1]})


def test_standalone_applies_training_hyperparameters():
    data = {"name": "digits", "path": None, "num_valid": 297, "batch_size": 32, "eval_batch_size": 64,
            "train_limit": 100, "augment": {}}
    trainer = {"epochs": 1, "steps_per_epoch": 1, "batch_size": 32, "valid_batches": 1,
               "optim": {"lr": 0.05, "momentum": 0.9, "schedule": "constant"}}
    hp = {"lr": [0.01, 0.2], "epochs": [1, 2], "batch_size": [16, 32]}
    space = build_space("nas_cnn", num_layers=1, hyperparameters=hp)
    task = build_task(data, "cpu", 0)
    cfg = {"data": data, "trainer": trainer, "seed": 0, "evaluator": {"name": "standalone"}}
    ev = build_evaluator(cfg, task, space, None, {"width_multiplier": 0.25, **task.model_sizes()}, None, "cpu",
                         options={"engine": "inline"})
    inner = uniform_architecture("nas_cnn", space.inner.decisions(), np.random.default_rng(0)).choices
    arch = Architecture("nas_cnn", inner + (1, 1, 0))
    job = ev.make_job(arch, 0)
    assert job["training"]["lr"] == 0.2 and job["training"]["epochs"] == 2 and job["training"]["batch_size"] == 16
    ev.begin_phase(0)
    assert 0.0 <= ev.evaluate([arch])[0] <= 1.0


def test_hydra_override_syntax():
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("search", overrides=["experiment=smoke_nas_cnn", "+space.structure.hyperparameters.lr=[0.01,0.1]"])
    structure = dict(cfg.space.structure)
    assert list(structure["hyperparameters"]["lr"]) == [0.01, 0.1]
