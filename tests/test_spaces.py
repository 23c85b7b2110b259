"""One parametrised test over every registered space (timm-style registry test).

Weight inheritance: the standalone network of an architecture, loaded from the supernet, computes
what the supernet computes for that architecture (1e-5), in a mode where both use batch
statistics (train mode, dropouts 0). Spaces without a supernet must say so.
"""

import pytest
import numpy as np
import torch

from enas.spaces import SPACES, build_space
from enas.strategies.base import uniform_architecture

# Tiny structure and sizes per space; a new space must add itself here.
TINY = {
    "rnn_cell": ({"num_nodes": 4}, {"vocab_size": 30, "hidden_size": 8}),
    "nas_rnn_tree": ({"num_leaves": 4}, {"vocab_size": 30, "hidden_size": 8}),
    "macro_cnn": ({"num_layers": 4}, {"num_classes": 3, "in_channels": 3, "image_size": 8, "channels": 4}),
    "micro_cnn": ({"num_nodes": 3}, {"num_classes": 3, "in_channels": 3, "image_size": 8, "channels": 4,
                                     "num_layers": 3}),
    "nas_cnn": ({"num_layers": 3}, {"num_classes": 3, "in_channels": 3, "image_size": 8}),
}


def test_every_space_has_tiny_sizes():
    assert set(TINY) == set(SPACES)


def inputs_for(space, sizes):
    if space.task == "lm":
        return torch.randint(0, sizes["vocab_size"], (5, 2))
    return torch.randn(4, sizes["in_channels"], sizes["image_size"], sizes["image_size"])


def run(model, x, arch):
    if hasattr(model, "init_hidden"):
        logits, _ = model(x, model.init_hidden(x.shape[1]), arch)
        return logits
    return model(x, arch)


@pytest.mark.parametrize("name", sorted(SPACES))
def test_inherited_network_matches_supernet(name):
    structure, sizes = TINY[name]
    space = build_space(name, **structure)
    torch.manual_seed(0)
    try:
        supernet = space.build_supernet(**sizes)
    except NotImplementedError as e:
        assert "standalone" in str(e)
        arch = uniform_architecture(name, space.decisions(), np.random.default_rng(0))
        out = run(space.build_network(arch, **sizes), inputs_for(space, sizes), None)
        assert torch.isfinite(out).all()
        return
    supernet.train()
    for seed in range(3):
        arch = uniform_architecture(name, space.decisions(), np.random.default_rng(seed))
        network = space.build_network(arch, **sizes)
        space.load_inherited(network, supernet, arch)
        network.train()
        x = inputs_for(space, sizes)
        expected, got = run(supernet, x, arch), run(network, x, None)
        assert torch.allclose(expected, got, atol=1e-5), (name, arch, (expected - got).abs().max())
        n_net = sum(p.numel() for p in network.parameters())
        assert n_net < sum(p.numel() for p in supernet.parameters())
