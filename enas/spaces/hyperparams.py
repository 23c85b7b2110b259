"""Hyperparameter decisions: any search space plus one `op` decision per hyperparameter.

    space:
      structure:
        num_layers: 3
        hyperparameters: {lr: [0.01, 0.1], dropout: [0.0, 0.3]}

`build_space(name, **structure)` wraps the named space in `WithHyperparameters` when the
structure holds "hyperparameters". The wrapper keeps the inner space's name and task, and adds
decisions `hp_<name>` (labels = str(value)) after the inner decisions, so every strategy tunes
them like any other choice.

Two kinds of hyperparameters:
- training hyperparameters (TRAINING_HYPERPARAMETERS: lr, epochs, steps_per_epoch, batch_size,
  weight_decay) are applied by the standalone/inherit evaluators to the child's training;
  final training (enas-train) uses its own `trainer` config instead.
- every other name is a builder size (dropout, width_multiplier, hidden_size, ...): the
  wrapper's `build_network` passes the chosen value as that size wherever the network is built
  (search evaluators and enas-train alike), so it is part of the architecture.
"""

from __future__ import annotations

import inspect

from torch import nn

from enas.arch import Architecture, Decision
from enas.spaces.base import Graph, SearchSpace

TRAINING_HYPERPARAMETERS = ("lr", "epochs", "steps_per_epoch", "batch_size", "weight_decay")


def accepts_size(space: SearchSpace, name: str) -> bool:
    """Does `space.build_network` take a keyword `name` (or **kwargs)?"""
    params = inspect.signature(space.build_network).parameters
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _check_values(name: str, values) -> list:
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"hyperparameters.{name}: expected a non-empty list of values, got {values!r}")
    values = list(values)
    labels = [str(v) for v in values]
    if len(set(labels)) != len(labels):
        raise ValueError(f"hyperparameters.{name}: duplicate values {values}")
    return values


class _SupernetView(nn.Module):
    """The inner supernet, called with the inner part of a wrapped architecture.

    Calling conventions (enas.spaces.base) put `arch` last: `(tokens, hidden, arch)` or
    `(images, arch)`; the hyperparameter choices are stripped before the inner supernet sees it.
    """

    def __init__(self, net: nn.Module, space: "WithHyperparameters"):
        super().__init__()
        self.net = net
        self._space = [space]            # a list: not registered as a submodule

    def forward(self, *args):
        *inputs, arch = args
        return self.net(*inputs, None if arch is None else self._space[0].inner_arch(arch))

    def init_hidden(self, batch_size: int):
        return self.net.init_hidden(batch_size)


class WithHyperparameters(SearchSpace):
    """`inner`'s decisions, then one op decision `hp_<name>` per hyperparameter."""

    def __init__(self, inner: SearchSpace, hyperparameters: dict):
        if not isinstance(hyperparameters, dict) or not hyperparameters:
            raise ValueError(f"space {inner.name!r}: structure.hyperparameters must be a non-empty mapping "
                             f"name -> list of values, got {hyperparameters!r}")
        self.inner = inner
        self.name = inner.name
        self.task = inner.task
        self.values = {str(k): _check_values(str(k), v) for k, v in hyperparameters.items()}
        for key in self.values:
            if key not in TRAINING_HYPERPARAMETERS and not accepts_size(inner, key):
                raise ValueError(
                    f"space {inner.name!r}: hyperparameter {key!r} is neither a training hyperparameter "
                    f"({', '.join(TRAINING_HYPERPARAMETERS)}) nor a size its build_network accepts")
        self._num_inner = len(inner.decisions())

    def structure(self) -> dict:
        return {**self.inner.structure(), "hyperparameters": {k: list(v) for k, v in self.values.items()}}

    def decisions(self) -> list[Decision]:
        extra = [Decision(f"hp_{k}", "op", len(v), tuple(str(x) for x in v)) for k, v in self.values.items()]
        return self.inner.decisions() + extra

    def inner_arch(self, arch: Architecture) -> Architecture:
        """The inner space's architecture (the hyperparameter choices stripped)."""
        return Architecture(self.inner.name, tuple(arch.choices[: self._num_inner]))

    def hyperparameters(self, arch: Architecture) -> dict:
        """name -> chosen value."""
        arch = self.validate(arch)
        chosen = arch.choices[self._num_inner:]
        return {k: v[c] for (k, v), c in zip(self.values.items(), chosen)}

    def size_hyperparameters(self, arch: Architecture) -> dict:
        """The chosen values that are builder sizes (not training hyperparameters)."""
        return {k: v for k, v in self.hyperparameters(arch).items() if k not in TRAINING_HYPERPARAMETERS}

    def training_hyperparameters(self, arch: Architecture) -> dict:
        """The chosen values that shape the child's training (lr, epochs, ...)."""
        return {k: v for k, v in self.hyperparameters(arch).items() if k in TRAINING_HYPERPARAMETERS}

    def build_supernet(self, **sizes) -> nn.Module:
        return _SupernetView(self.inner.build_supernet(**sizes), self)

    def build_network(self, arch: Architecture, **sizes) -> nn.Module:
        """The inner network, with size hyperparameters overriding `sizes`."""
        return self.inner.build_network(self.inner_arch(arch), **{**sizes, **self.size_hyperparameters(arch)})

    def load_inherited(self, network: nn.Module, supernet: nn.Module, arch: Architecture) -> None:
        inner_supernet = supernet.net if isinstance(supernet, _SupernetView) else supernet
        self.inner.load_inherited(network, inner_supernet, self.inner_arch(arch))

    def graph(self, arch: Architecture) -> Graph:
        g = self.inner.graph(self.inner_arch(arch))
        text = ", ".join(f"{k}={v}" for k, v in self.hyperparameters(arch).items())
        return Graph(nodes=g.nodes + [("hyperparameters", text)], edges=list(g.edges), clusters=dict(g.clusters))


def training_hyperparameters(space: SearchSpace, arch: Architecture) -> dict:
    """The training hyperparameters `arch` chose ({} for a space without hyperparameters)."""
    return space.training_hyperparameters(arch) if isinstance(space, WithHyperparameters) else {}
