"""The SearchSpace interface, the space registry and the graph description used for drawings.

A space knows its decisions (what a strategy must fill), how to build the shared supernet
(every candidate op's parameters, executing only the sampled subgraph) and how to build a
standalone network holding only one architecture's parameters.

Model calling conventions (the `Task` relies on them):
- language-model spaces ("lm"): `model(tokens (T, B), hidden, arch) -> (logits (T, B, V), hidden)`;
  a supernet needs `arch`, a standalone network ignores it. `model.init_hidden(batch_size)`.
- image spaces ("image"): `model(images (B, C, H, W), arch) -> logits (B, K)`, or in training
  with an auxiliary head `(logits, aux_logits)`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from enas.arch import Architecture, ArchitectureError, Decision, validate_choices

SPACES: dict[str, type["SearchSpace"]] = {}


def register_space(name: str) -> Callable[[type], type]:
    """Class decorator: make a space available as `space=<name>`."""
    def wrap(cls):
        cls.name = name
        SPACES[name] = cls
        return cls
    return wrap


def build_space(name: str, **structure) -> "SearchSpace":
    """Instantiate a registered space by name.

    A "hyperparameters" entry in `structure` wraps the space in
    `enas.spaces.hyperparams.WithHyperparameters` (one extra decision per hyperparameter).
    """
    import enas.spaces  # noqa: F401  (registers the built-in spaces)
    if name not in SPACES:
        raise ValueError(f"unknown search space {name!r}; known: {', '.join(sorted(SPACES))}")
    if "hyperparameters" in structure:
        from enas.spaces.hyperparams import WithHyperparameters
        structure = dict(structure)
        hyperparameters = structure.pop("hyperparameters")
        return WithHyperparameters(SPACES[name](**structure), hyperparameters)
    return SPACES[name](**structure)


def check_int(space_name: str, name: str, value, low: int) -> None:
    """Raise ValueError naming the space and the argument unless `value` is an integer >= `low`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{space_name}: {name} must be an integer >= {low}, got {value!r}")


@dataclass
class Graph:
    """A drawable DAG: `nodes` are (id, label) pairs, `edges` (src, dst, label) triples.

    `clusters` optionally names groups of nodes drawn as separate panels (e.g. the normal
    and the reduction cell).
    """

    nodes: list[tuple[str, str]] = field(default_factory=list)
    edges: list[tuple[str, str, str]] = field(default_factory=list)
    clusters: dict[str, list[str]] = field(default_factory=dict)

    def to_dot(self, title: str = "") -> str:
        lines = ["digraph arch {", "  rankdir=LR;"]
        if title:
            lines.append(f'  label="{title}";')
        clustered = set()
        for i, (name, members) in enumerate(self.clusters.items()):
            lines.append(f'  subgraph cluster_{i} {{ label="{name}";')
            for m in members:
                clustered.add(m)
                lines.append(f'    "{m}" [label="{dict(self.nodes)[m]}"];')
            lines.append("  }")
        for node_id, label in self.nodes:
            if node_id not in clustered:
                lines.append(f'  "{node_id}" [label="{label}"];')
        for src, dst, label in self.edges:
            lines.append(f'  "{src}" -> "{dst}"' + (f' [label="{label}"]' if label else "") + ";")
        lines.append("}")
        return "\n".join(lines)


class SearchSpace(ABC):
    """A search space: ordered decisions plus builders for the supernet and standalone networks.

    Constructor arguments are the *structure* (numbers of nodes or layers): they fix the
    decisions and travel with every architecture (arch.json "structure"). Sizes (hidden units,
    channels, dropouts) are arguments of the builders, so one architecture can be trained at
    another size.
    """

    name: str = ""
    task: str = ""  # "lm" or "image": which Task its models plug into

    @abstractmethod
    def structure(self) -> dict:
        """The constructor arguments, to rebuild this space (saved with architectures)."""

    @abstractmethod
    def decisions(self) -> list[Decision]:
        """The ordered decisions a strategy must fill."""

    @abstractmethod
    def build_supernet(self, **sizes) -> nn.Module:
        """The shared DAG holding every candidate op's parameters; `forward(..., arch)`."""

    @abstractmethod
    def build_network(self, arch: Architecture, **sizes) -> nn.Module:
        """A standalone model holding only `arch`'s parameters."""

    @abstractmethod
    def graph(self, arch: Architecture) -> Graph:
        """The architecture as a drawable graph."""

    def validate(self, arch: Architecture) -> Architecture:
        """Raise ArchitectureError naming the wrong decision; return the canonical form."""
        return validate_choices(self.name, self.decisions(), arch)

    def describe(self, arch: Architecture) -> str:
        """A readable genotype: one `name=choice` per decision."""
        return " ".join(f"{d.name}={d.describe(c)}" for d, c in zip(self.decisions(), arch.choices))

    def to_dot(self, arch: Architecture) -> str:
        """Graphviz source of the drawing."""
        return self.graph(arch).to_dot(self.name)

    def arch_from_dict(self, data: dict, source: str = "architecture") -> Architecture:
        """Build and validate an architecture from its JSON form; errors name `source`."""
        if data.get("space") != self.name:
            raise ArchitectureError(f"{source}: architecture of space {data.get('space')!r}, expected {self.name!r}")
        given = data.get("structure") or {}
        if given and given != self.structure():
            raise ArchitectureError(f"{source}: structure {given} does not match space {self.name!r} {self.structure()}")
        try:
            return self.validate(Architecture(self.name, tuple(data["choices"])))
        except ArchitectureError as e:
            raise ArchitectureError(f"{source}: {e}") from None

    def arch_to_dict(self, arch: Architecture, **extra) -> dict:
        """The JSON form of `arch`, with structure and genotype."""
        return arch.to_dict(self.structure(), self.describe(arch), **extra)

    def load_inherited(self, network: nn.Module, supernet: nn.Module, arch: Architecture) -> None:
        """Weight inheritance: copy `arch`'s parameters from the supernet into `network`.

        A standalone network names each tensor as the supernet does, so tensors are matched by
        name (and shape). Entries the supernet lacks may only belong to BatchNorm layers (the
        standalone network's affine scale/shift and running statistics, which a supernet's
        batch-statistics BN does not have); they keep their fresh values (scale 1, shift 0),
        so the network computes exactly what the supernet computes.
        """
        source = supernet.state_dict()
        bn_modules = {name for name, m in network.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
        loaded, missing = {}, []
        for key, value in network.state_dict().items():
            if key in source:
                if source[key].shape != value.shape:
                    raise ValueError(f"{self.name}: tensor {key!r} has shape {tuple(value.shape)} in the network "
                                     f"but {tuple(source[key].shape)} in the supernet")
                loaded[key] = source[key].detach().clone()
            elif key.rpartition(".")[0] in bn_modules:
                loaded[key] = value
            else:
                missing.append(key)
        if missing:
            raise KeyError(f"supernet of {self.name!r} lacks parameters {missing[:5]}")
        with torch.no_grad():
            network.load_state_dict(loaded)
