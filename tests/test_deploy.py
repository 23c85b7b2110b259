"""Export (enas/deploy.py): torch.export programs where the network can be traced, and the
state_dict + arch.json path (enas.load_model) for every network."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import enas
from enas.deploy import export_network, load_exported
from enas.nn import LayerChoice
from enas.spaces import build_space
from enas.spaces.module_space import ModuleSpace
from enas.strategies.base import uniform_architecture
from enas.utils import UserError

# (space, structure, sizes, how torch.export traces its standalone network)
CASES = [
    ("macro_cnn", {"num_layers": 3}, {"num_classes": 3, "in_channels": 3, "image_size": 8, "channels": 4}, "dynamic"),
    ("rnn_cell", {"num_nodes": 3}, {"vocab_size": 20, "hidden_size": 6}, "static time"),
]


@pytest.mark.parametrize("name, structure, sizes, how", CASES, ids=[c[0] for c in CASES])
def test_built_in_networks_export_and_load_back(tmp_path, name, structure, sizes, how):
    space = build_space(name, **structure)
    arch = uniform_architecture(name, space.decisions(), np.random.default_rng(0))
    torch.manual_seed(0)
    network = space.build_network(arch, **sizes).eval()
    summary = export_network(network, space, arch, sizes, str(tmp_path), seq_len=7)
    assert summary["traced"] == how and summary["pt2"] == str(tmp_path / "model.pt2")
    program = torch.export.load(summary["pt2"]).module()
    loaded = enas.load_model(str(tmp_path))                 # a built-in space: found by its name
    info = json.loads((tmp_path / "arch.json").read_text())
    assert info["sizes"] == sizes and info["export"]["traced"] == how
    if name == "rnn_cell":
        assert "fixed to 7 steps" in summary["note"]
        tokens, hidden = torch.randint(0, 20, (7, 3)), network.init_hidden(3)   # another batch size
        expected = network(tokens, hidden)[0]
        got_program, got_loaded = program(tokens, hidden)[0], loaded(tokens, hidden)[0]
    else:
        x = torch.randn(5, 3, 8, 8)                                              # another batch size
        expected, got_program, got_loaded = network(x), program(x), loaded(x)
    assert torch.allclose(expected, got_program, atol=1e-5) and torch.equal(expected, got_loaded)


class Branchy(nn.Module):
    """Data-dependent control flow: torch.export cannot trace it."""

    def __init__(self, num_classes, input_shape):
        super().__init__()
        self.op = LayerChoice([nn.Linear(input_shape[0], num_classes), nn.Linear(input_shape[0], num_classes)])

    def forward(self, x):
        return self.op(x) if x.sum() > 0 else -self.op(x)


def test_untraceable_network_keeps_the_state_dict_path(tmp_path):
    sizes = {"num_classes": 2, "input_shape": [4]}
    space = ModuleSpace(Branchy, sizes=sizes)
    arch = uniform_architecture(space.name, space.decisions(), np.random.default_rng(0))
    network = space.build_network(arch, **sizes)
    summary = export_network(network, space, arch, sizes, str(tmp_path))
    assert summary["pt2"] is None and not (tmp_path / "model.pt2").exists()
    assert "data-dependent" in summary["note"] or "guard" in summary["note"], summary["note"]
    assert json.loads((tmp_path / "arch.json").read_text())["export"]["pt2"] is None
    x = torch.randn(3, 4)
    assert torch.equal(load_exported(str(tmp_path), space)(x), network.net.eval()(x))
    with pytest.raises(UserError, match=r"a custom space \(tests.test_deploy:Branchy\); hand in its module"):
        enas.load_model(str(tmp_path))
    assert torch.equal(enas.load_model(str(tmp_path), space=Branchy)(x), network.net(x))
    with pytest.raises(UserError, match="not of 'tests.test_deploy:Untraceable'"):
        enas.load_model(str(tmp_path), space=type("Untraceable", (Branchy,), {"__module__": "tests.test_deploy"}))
