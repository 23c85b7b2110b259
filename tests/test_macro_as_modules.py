"""The built-in ENAS macro space re-expressed with the choice modules (enas.nn): the same decisions
and the same outputs as the hand-written space (enas/spaces/macro_cnn.py) for several architectures.

The candidates are the built-in ops (a space written by a user would write its own); everything
about decisions, sampling, the supernet and the standalone network comes from ModuleSpace.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from enas.arch import Architecture
from enas.nn import InputChoice, LayerChoice
from enas.spaces import build_space
from enas.spaces.cnn_ops import FactorizedReduce, batch_norm
from enas.spaces.macro_cnn import MACRO_OPS, _macro_op, reduction_layers
from enas.spaces.module_space import ModuleSpace
from enas.strategies.base import uniform_architecture


class MacroLayer(nn.Module):
    """Layer i: an op over the previous output, skips from any subset of the earlier layers, BN."""

    def __init__(self, i: int, channels: int, affine: bool, track: bool, branch_conv1x1: bool):
        super().__init__()
        self.op = LayerChoice({label: _macro_op(label, channels, affine, track, branch_conv1x1)
                               for label in MACRO_OPS}, label=f"layer{i}_op")
        self.skip = InputChoice(i, n_chosen=None, reduction="none", label=f"layer{i}_skip") if i else None
        self.bn = batch_norm(channels, affine, track)


class Macro(nn.Module):
    """The ENAS macro network as one plain module (a supernet with affine=False, track=False)."""

    def __init__(self, num_classes: int, in_channels: int, num_layers: int = 12, channels: int = 36,
                 dropout: float = 0.0, branch_conv1x1: bool = False, affine: bool = False, track: bool = False):
        super().__init__()
        self.reduce_after = reduction_layers(num_layers)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
                                  batch_norm(channels, affine, track))
        self.layers = nn.ModuleList(MacroLayer(i, channels, affine, track, branch_conv1x1) for i in range(num_layers))
        self.reductions = nn.ModuleDict({str(r): nn.ModuleDict({str(j): FactorizedReduce(channels, channels, affine, track)
                                                                for j in range(r + 1)}) for r in self.reduce_after})
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:   # (B, C, H, W) -> (B, K)
        x = self.stem(images)
        outputs: list[torch.Tensor] = []
        for i, layer in enumerate(self.layers):
            h = layer.op(x)
            for skipped in (layer.skip(outputs) if layer.skip is not None else []):
                h = h + skipped                                  # in order, as the hand-written sum
            outputs.append(layer.bn(h))
            if i in self.reduce_after:                           # every earlier output halves in size
                outputs = [self.reductions[str(i)][str(j)](o) for j, o in enumerate(outputs)]
            x = outputs[-1]
        return self.classifier(self.dropout(x.mean(dim=(2, 3))))


SIZES = {"num_classes": 3, "in_channels": 3, "image_size": 8, "channels": 4}


def module_name(key: str) -> str:
    """A tensor name of the hand-written network -> the same tensor's name in the module version."""
    parts = key.split(".")
    if parts[0] == "layers" and parts[2] == "ops":
        parts[2:3] = ["op", "candidates"]
    return "net." + ".".join(parts)


def copy_weights(builtin: nn.Module, module_net: nn.Module) -> None:
    target = module_net.state_dict()
    for key, value in builtin.state_dict().items():
        assert target[module_name(key)].shape == value.shape, key
        target[module_name(key)] = value.clone()
    module_net.load_state_dict(target)


def spaces(branch_conv1x1: bool, num_layers: int = 6):
    builtin = build_space("macro_cnn", num_layers=num_layers)
    mine = ModuleSpace(Macro, {"num_layers": num_layers, "branch_conv1x1": branch_conv1x1}, sizes=SIZES)
    return builtin, mine


def test_the_same_decisions():
    builtin, mine = spaces(False)
    assert mine.decisions() == builtin.decisions()          # names, kinds, labels, anchors, groups


@pytest.mark.parametrize("branch_conv1x1", [False, True], ids=["project_ops", "official_branches"])
def test_the_same_outputs_for_several_architectures(branch_conv1x1):
    builtin, mine = spaces(branch_conv1x1)
    torch.manual_seed(0)
    b_super = builtin.build_supernet(**SIZES, branch_conv1x1=branch_conv1x1).train()
    m_super = mine.build_supernet(**SIZES)
    copy_weights(b_super, m_super)
    m_super.train()
    x = torch.randn(4, 3, 8, 8)
    for seed in range(4):
        arch = uniform_architecture(builtin.name, builtin.decisions(), np.random.default_rng(seed))
        twin = Architecture(mine.name, arch.choices)
        assert torch.equal(b_super(x, arch), m_super(x, twin)), f"supernets differ for {builtin.describe(arch)}"
        b_net = builtin.build_network(arch, **SIZES, branch_conv1x1=branch_conv1x1)
        m_net = mine.build_network(twin, **SIZES, affine=True, track=True)     # standalone BN, as the built-in
        copy_weights(b_net, m_net)
        for mode in ("train", "eval"):
            b_net.train(mode == "train")
            m_net.train(mode == "train")
            assert torch.equal(b_net(x, None), m_net(x, None)), f"{mode} networks differ"
