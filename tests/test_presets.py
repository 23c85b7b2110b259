"""Every preset of conf/experiment/ builds its objects through the build layer, without training.

A typo in a preset's option (a space structure, a strategy or controller option, an evaluator
option, a trainer setting) fails here in seconds. The data is replaced by a stand-in with the
dataset's sizes, so presets whose data is not on this machine (CIFAR-10) are built too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from enas.build import build_search, build_training
from enas.cli.common import CONFIG_DIR
from enas.runs import DERIVE_ADDED, RANK_BY, check_derive_options, derive_estimator, derive_inherit_options
from enas.strategies.base import uniform_architecture
from tests.helpers import compose_config

PRESETS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))

# What each dataset decides about the models (enas.tasks: Task.model_sizes).
DATA_SIZES = {"ptb": ("lm", {"vocab_size": 10000}),
              "cifar10": ("image", {"num_classes": 10, "in_channels": 3, "image_size": 32}),
              "fashion_mnist": ("image", {"num_classes": 10, "in_channels": 1, "image_size": 28}),
              "digits": ("image", {"num_classes": 10, "in_channels": 1, "image_size": 8})}


class StandInTask:
    """The sizes and kind of a dataset, without its data (nothing here trains)."""

    def __init__(self, data_name: str):
        self.kind, self.sizes = DATA_SIZES[data_name]
        self.metric = "ppl" if self.kind == "lm" else "acc"
        self.higher_is_better = self.kind != "lm"

    def model_sizes(self) -> dict:
        return dict(self.sizes)

    def uniform_loss(self) -> float:
        return 2.3

    def num_batches(self, split: str) -> int:
        return 100


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_builds_every_object(preset, tmp_path):
    cfg = compose_config("search", [f"experiment={preset}"])
    task = StandInTask(cfg["data"]["name"])
    loop = build_search(cfg, str(tmp_path), torch.device("cpu"), task=task)
    assert loop.strategy.name == cfg["strategy"]["name"] and loop.evaluator.name == cfg["evaluator"]["name"]
    if loop.supernet is not None:
        assert sum(p.numel() for p in loop.supernet.parameters()) > 0
    if cfg["strategy"]["name"] == "reinforce":
        assert loop.strategy.controller.lstm_size == cfg["controller"]["lstm_size"]
    assert loop.s.epochs == cfg["search"]["epochs"] and loop.s.lr == cfg["search"]["optim"]["lr"]
    assert loop.strategy.ask(2) and loop.strategy.train_samples(1)
    # the preset's derive: a known estimator and ranking, inherit steps where it trains candidates,
    # a valid final round
    derive = {**DERIVE_ADDED, **cfg["derive"]}
    assert derive["rank_by"] in RANK_BY
    check_derive_options(derive)
    if derive_estimator(loop, derive["estimator"]) == "inherit":
        assert derive_inherit_options(cfg, derive)["steps_per_epoch"] >= 1

    arch = uniform_architecture(loop.space.name, loop.space.decisions(), np.random.default_rng(0))
    train_cfg = compose_config("train", [f"experiment={preset}", "arch=stand-in.json"])
    arch_data = loop.space.arch_to_dict(arch)
    space, built, trainer = build_training(train_cfg, arch_data, "stand-in.json", "cpu", None,
                                           task=StandInTask(train_cfg["data"]["name"]))
    assert built == arch and trainer.s.epochs == train_cfg["trainer"]["epochs"]
    assert trainer.optimizer.param_groups[0]["lr"] == train_cfg["trainer"]["optim"]["lr"]
    assert sum(p.numel() for p in trainer.model.parameters()) > 0
