"""Search spaces written as plain modules with choice modules (enas.nn, enas.spaces.module_space)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from enas.arch import Architecture, ArchitectureError
from enas.build import build_optimizer
from enas.nn import InputChoice, LayerChoice, ValueChoice
from enas.spaces.module_space import ModuleSpace, deployable
from enas.strategies import STRATEGIES, build_strategy
from enas.strategies.base import uniform_architecture
from enas.training import StepRunner

SIZES = {"num_classes": 3, "in_channels": 2, "image_size": 8}


class Block(nn.Module):
    """A node: an op, and (after the first block) skip inputs from every earlier output."""

    def __init__(self, i: int, width: int):
        super().__init__()
        self.op = LayerChoice({"conv3": nn.Conv2d(width, width, 3, padding=1),
                               "conv5": nn.Conv2d(width, width, 5, padding=2),
                               "pool": nn.MaxPool2d(3, 1, 1)})
        self.skip = InputChoice(i + 1, n_chosen=None) if i else None


class Net(nn.Module):
    """Every kind of choice: ops, a subset of inputs, two picks of inputs, a shared value."""

    def __init__(self, num_classes: int, in_channels: int, blocks: int = 3, width: int = 4):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1)
        self.blocks = nn.ModuleList(Block(i, width) for i in range(blocks))
        self.merge = InputChoice(blocks + 1, n_chosen=2, reduction="mean")
        self.act = ValueChoice(["relu", "tanh"], label="act")
        self.act_again = ValueChoice(["relu", "tanh"], label="act")     # the same decision
        self.head = LayerChoice([nn.Linear(width, num_classes), nn.Sequential(nn.Linear(width, num_classes))])

    def forward(self, x):                                   # (B, C, H, W) -> (B, K)
        outs = [getattr(torch, self.act.value)(self.stem(x))]
        for block in self.blocks:
            h = block.op(outs[-1])
            if block.skip is not None:
                s = block.skip(outs)
                h = h if s is None else h + s
            outs.append(getattr(torch, self.act_again.value)(h))
        return self.head(self.merge(outs).mean((2, 3)))


def make_space(**kwargs) -> ModuleSpace:
    return ModuleSpace(Net, kwargs or {"blocks": 3}, sizes=SIZES)


def arch_of(space, seed: int) -> Architecture:
    return uniform_architecture(space.name, space.decisions(), np.random.default_rng(seed))


def images(n: int = 4) -> torch.Tensor:
    return torch.randn(n, SIZES["in_channels"], SIZES["image_size"], SIZES["image_size"])


def test_decisions_from_the_module_tree():
    space = make_space()
    got = [(d.name, d.kind, d.num_choices, d.labels, d.anchor) for d in space.decisions()]
    ops = ("conv3", "conv5", "pool")
    assert got == [
        ("blocks.0.op", "op", 3, ops, True),                     # one anchor per node (block)
        ("blocks.1.op", "op", 3, ops, False), ("blocks.1.skip", "skip", 2, (), True),
        ("blocks.2.op", "op", 3, ops, False), ("blocks.2.skip", "skip", 3, (), True),
        ("merge[0]", "input", 4, (), False), ("merge[1]", "input", 4, (), False),
        ("act", "op", 2, ("relu", "tanh"), False),               # shared by act and act_again
        ("head", "op", 2, ("Linear", "Sequential"), True),
    ]
    assert space.name == "tests.test_module_space:Net" and space.structure() == {"blocks": 3}
    assert space.task == "image"


def test_supernet_runs_only_the_sampled_candidates():
    space = make_space()
    supernet = space.build_supernet(**SIZES)
    arch = Architecture(space.name, (0, 2, (1, 0), 1, (0, 1, 1), 3, 3, 1, 0))
    supernet(images(), arch).sum().backward()
    blocks = supernet.net.blocks
    assert blocks[0].op.candidates["0"].weight.grad is not None
    assert blocks[0].op.candidates["1"].weight.grad is None           # conv5 not chosen
    assert blocks[2].op.candidates["0"].weight.grad is None and blocks[2].op.candidates["1"].weight.grad is not None
    assert supernet.net.head.candidates["1"][0].weight.grad is None


def test_unused_candidates_get_no_update_from_momentum_or_weight_decay():
    """SGD with momentum and weight decay: a candidate left out of a step keeps its exact bits."""
    space = make_space()
    torch.manual_seed(0)
    supernet = space.build_supernet(**SIZES)
    optimizer = build_optimizer(supernet.parameters(), {"lr": 0.1, "momentum": 0.9, "nesterov": True,
                                                         "weight_decay": 0.01})
    stepper = StepRunner(optimizer, supernet.parameters(), grad_clip=5.0)
    conv3, conv5 = (supernet.net.blocks[0].op.candidates[k].weight for k in ("0", "1"))
    never = supernet.net.blocks[2].op.candidates["1"].weight             # conv5 of block 2: never sampled
    never_before = never.detach().clone()
    a = Architecture(space.name, (0, 0, (1, 1), 0, (1, 1, 1), 0, 1, 0, 0))   # block 0: conv3
    b = Architecture(space.name, (1, 0, (1, 1), 0, (1, 1, 1), 0, 1, 0, 0))   # block 0: conv5
    x, y = images(), torch.tensor([0, 1, 2, 0])
    for arch in (a, a):                                 # conv3 gets gradients and momentum
        stepper.step(F.cross_entropy(supernet(x, arch), y))
    conv3_after_a, conv5_before_b = conv3.detach().clone(), conv5.detach().clone()
    assert optimizer.state[conv3]["momentum_buffer"].abs().sum() > 0
    for _ in range(3):                                  # conv5 only: conv3 must not move at all
        stepper.step(F.cross_entropy(supernet(x, b), y))
    assert torch.equal(conv3.detach(), conv3_after_a)
    assert not torch.equal(conv5.detach(), conv5_before_b)
    assert torch.equal(never.detach(), never_before) and never not in optimizer.state


def test_inherited_network_computes_what_the_supernet_computes():
    space = make_space()
    torch.manual_seed(0)
    supernet = space.build_supernet(**SIZES).train()
    for seed in range(4):
        arch = arch_of(space, seed)
        network = space.build_network(arch, **SIZES)
        space.load_inherited(network, supernet, arch)
        x = images()
        assert torch.allclose(supernet(x, arch), network(x, None), atol=1e-6)
        names = set(network.state_dict())
        assert names < set(supernet.state_dict())           # the same names, fewer tensors
        chosen = arch.choices[0]
        assert {n for n in names if n.startswith("net.blocks.0.op.")} <= {
            f"net.blocks.0.op.candidates.{chosen}.weight", f"net.blocks.0.op.candidates.{chosen}.bias"}


def test_the_standalone_network_is_fixed():
    space = make_space()
    arch = arch_of(space, 1)
    network = space.build_network(arch, **SIZES)
    op = network.net.blocks[0].op
    assert list(op.candidates) == [str(arch.choices[0])]        # only the chosen candidate is left
    with pytest.raises(RuntimeError, match="fixed"):
        op.activate([(arch.choices[0] + 1) % 3])
    op.activate([arch.choices[0]])                              # the same choice is fine
    module = deployable(network)
    assert module is network.net and module(images()).shape == (4, 3)


def test_supernet_needs_an_architecture_and_validates_it():
    space = make_space()
    supernet = space.build_supernet(**SIZES)
    with pytest.raises(ArchitectureError, match="needs an architecture"):
        supernet(images(), None)
    with pytest.raises(ArchitectureError, match="blocks.1.skip"):
        supernet(images(), Architecture(space.name, (0, 0, (1, 1, 1), 0, (0, 0, 0), 0, 0, 0, 0)))
    with pytest.raises(RuntimeError, match="no architecture is active"):
        Net(3, 2)(images())


def test_state_dict_holds_no_choice_so_a_restored_supernet_computes_the_same():
    space = make_space()
    torch.manual_seed(0)
    first = space.build_supernet(**SIZES).train()
    a, b = arch_of(space, 3), arch_of(space, 4)
    x = images()
    first(x, b)                                                         # b was active last
    state = first.state_dict()
    assert all(torch.is_tensor(v) for v in state.values())
    second = space.build_supernet(**SIZES).train()
    second.load_state_dict(state)
    assert torch.equal(first(x, a), second(x, a))


def test_arch_json_round_trip_and_drawing(tmp_path):
    from enas.draw import save_png
    space = make_space()
    arch = arch_of(space, 5)
    data = space.arch_to_dict(arch)
    assert data["space"] == space.name and data["structure"] == {"blocks": 3}
    assert space.arch_from_dict(data) == arch
    graph = space.graph(arch)
    labels = dict(graph.nodes)
    assert labels["n1"].startswith("blocks.0: op=") and "skip[" in labels["n2"]
    assert "act=" in labels["n4"] and "head=" in labels["n4"]
    save_png(graph, tmp_path / "arch.png", title=space.name)
    assert (tmp_path / "arch.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ArchitectureError, match="structure"):
        space.arch_from_dict({**data, "structure": {"blocks": 2}})


STRATEGY_OPTIONS = {"reinforce": {"lstm_size": 8}, "grid": {"decisions": ["blocks.0.op", "act"]}}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_works_on_a_module_space(name):
    space = make_space()
    strategy = build_strategy(name, space, seed=0, **STRATEGY_OPTIONS.get(name, {}))
    for step in range(3):
        archs = strategy.ask(2)
        assert all(space.validate(a) == a for a in archs)
        strategy.tell(archs, [0.1 * step, 0.2])
    assert strategy.best(1) and all(space.validate(a) for a in strategy.train_samples(2))


def test_clear_errors():
    class NoChoice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

    class Clash(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = ValueChoice([1, 2], label="v")
            self.b = ValueChoice([1, 2, 3], label="v")

    class BySize(nn.Module):
        def __init__(self, num_classes):
            super().__init__()
            self.ops = nn.ModuleList(LayerChoice([nn.Identity(), nn.ReLU()]) for _ in range(num_classes))

    with pytest.raises(ValueError, match="nothing to search"):
        ModuleSpace(NoChoice)
    with pytest.raises(ValueError, match="share the label 'v'"):
        ModuleSpace(Clash)
    space = ModuleSpace(BySize, sizes={"num_classes": 2})
    with pytest.raises(ValueError, match="may depend only on the space kwargs"):
        space.build_supernet(num_classes=3)
    with pytest.raises(ValueError, match="unexpected keyword argument 'depth'"):
        ModuleSpace(Net, {"depth": 2}, sizes=SIZES)
    with pytest.raises(ValueError, match="plain values"):
        ModuleSpace(Net, {"blocks": nn.ReLU()}, sizes=SIZES)
    with pytest.raises(ValueError, match="expected 4 candidate tensors, got 2"):
        make_space().build_supernet(**SIZES).net.merge.forward([torch.ones(1), torch.ones(1)])
    with pytest.raises(TypeError, match="not an nn.Module"):
        LayerChoice([nn.ReLU(), "relu"])
    with pytest.raises(ValueError, match="n_chosen"):
        InputChoice(3, n_chosen=0)


def test_a_module_instance_is_copied_for_every_build():
    instance = Net(3, 2)
    space = ModuleSpace(instance)
    arch = arch_of(space, 0)
    network = space.build_network(arch)
    assert network.net is not instance and space.name == "tests.test_module_space:Net"
    key = f"net.blocks.0.op.candidates.{arch.choices[0]}.weight" if arch.choices[0] < 2 else "net.stem.weight"
    assert torch.equal(network.state_dict()[key], {f"net.{k}": v for k, v in instance.state_dict().items()}[key])
