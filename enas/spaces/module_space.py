"""A search space written as an ordinary nn.Module with choice modules inside (enas.nn).

    space = ModuleSpace(MyNet, {"num_blocks": 3}, sizes={"num_classes": 10})
    space.decisions()                    # found by walking MyNet's module tree
    supernet = space.build_supernet(num_classes=10)        # supernet(images, arch)
    network = space.build_network(arch, num_classes=10)    # only arch's candidates

`factory` is a class or function returning the module (or a module instance, which is
copied). Its keyword arguments are the space's *structure* (`kwargs`: they fix the decisions
and travel in arch.json) plus whichever *sizes* its signature accepts (the data's
num_classes, in_channels, image_size, input_shape, vocab_size, and the config's
`space.sizes`). `sizes` given to the constructor only build the probe module whose tree is
walked for the decisions; the choices may not depend on them (checked at every build).

Decisions, in the order of `named_modules()`:
- one per `LayerChoice` / `ValueChoice` (`op`), one or more per `InputChoice` (`input` or
  `skip`, see enas.nn); choices that share a `label` share their decisions;
- names: the label, else the module path (`blocks.2.op`);
- anchors (where the ENAS controller stores the states that later `input`/`skip` decisions
  attend over): the last decision of each module that directly holds a LayerChoice or an
  InputChoice, i.e. one anchor per node, as in the ENAS spaces (a macro layer's op and skip;
  a micro node's inputs and ops).

The supernet wraps the module (`ChoiceSupernet`): `forward(*inputs, arch)` activates the
architecture on every choice module, then runs the module on `inputs`. The standalone network
(`ChoiceNetwork`) is a fresh module whose choices are fixed to one architecture: unchosen
candidates are gone, so it holds only the chosen candidates' parameters, under the same names
as in the supernet (weight inheritance matches by name). `deployable(network)` is the plain
module inside, called without an architecture; that is what gets exported.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
from typing import Any, Callable

from torch import nn

from enas.arch import Architecture, ArchitectureError, Decision
from enas.nn import Choice, InputChoice, LayerChoice
from enas.spaces.base import Graph, SearchSpace


def canonical_name(factory: Any) -> str:
    """"package.module:Name" of a class or function (of its class for a module instance)."""
    obj = type(factory) if isinstance(factory, nn.Module) else factory
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', type(obj).__name__)}"


def call_with_sizes(fn: Callable, kwargs: dict, sizes: dict, what: str):
    """`fn(**kwargs, **sizes it accepts)`; a size also given in kwargs is an error."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    accepted = {k: v for k, v in sizes.items() if takes_any or k in params}
    both = sorted(set(accepted) & set(kwargs))
    if both:
        raise ValueError(f"{what}: {', '.join(both)} given in the space kwargs and as a size (drop it from the kwargs)")
    if params:
        try:
            inspect.signature(fn).bind(**kwargs, **accepted)
        except TypeError as e:           # a missing or unknown argument: name it
            raise ValueError(f"{what}: {e}") from None
    return fn(**kwargs, **accepted)


def _check_plain(kwargs: dict, what: str) -> dict:
    try:
        return json.loads(json.dumps(kwargs))
    except (TypeError, ValueError):
        raise ValueError(f"{what}: space kwargs must be plain values (numbers, strings, lists, dicts), "
                         f"got {kwargs!r}") from None


@dataclasses.dataclass
class _Found:
    """The choice modules of one module tree: decisions, and which decisions each module answers."""

    decisions: list[Decision]
    bindings: list[tuple[str, tuple[int, ...]]]      # (module path, decision indices)
    owners: list[str]                                # per decision: the path of the node holding it


def _parent(path: str) -> str:
    return path.rpartition(".")[0]


def find_choices(module: nn.Module, what: str) -> _Found:
    """Walk `module` and collect its choice modules' decisions (see the module docstring)."""
    decisions: list[Decision] = []
    owners: list[str] = []
    is_node: list[bool] = []
    bindings: list[tuple[str, tuple[int, ...]]] = []
    by_label: dict[str, tuple[tuple[int, ...], list[Decision], str]] = {}
    for path, m in module.named_modules():
        if not isinstance(m, Choice):
            continue
        name = m.label or path or type(m).__name__
        proposed = m.decisions(name)
        if m.label is not None and m.label in by_label:
            indices, first_decisions, first_path = by_label[m.label]
            if proposed != first_decisions:
                raise ValueError(f"{what}: choices {first_path!r} and {path!r} share the label {m.label!r} "
                                 f"but differ ({first_decisions[0]} vs {proposed[0]})")
            bindings.append((path, indices))
            m.decision_name = name
            continue
        indices = tuple(range(len(decisions), len(decisions) + len(proposed)))
        decisions += proposed
        owners += [_parent(path)] * len(proposed)
        is_node += [isinstance(m, (LayerChoice, InputChoice))] * len(proposed)
        bindings.append((path, indices))
        if m.label is not None:
            by_label[m.label] = (indices, proposed, path)
        m.decision_name = name
    names = [d.name for d in decisions]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{what}: decision names repeat: {repeated} (give the choices distinct labels)")
    return _Found(_with_anchors(decisions, owners, is_node), bindings, owners)


def _with_anchors(decisions: list[Decision], owners: list[str], is_node: list[bool]) -> list[Decision]:
    """Mark the last decision of each run of decisions held by one node module as an anchor."""
    out = list(decisions)
    start = 0
    for i in range(len(decisions)):
        if i + 1 == len(decisions) or owners[i + 1] != owners[i]:
            if any(is_node[start:i + 1]):
                out[i] = dataclasses.replace(out[i], anchor=True)
            start = i + 1
    return out


class ChoiceSupernet(nn.Module):
    """The module with every candidate; `forward(*inputs, arch)` runs `arch`'s subgraph.

    Calling conventions (enas.spaces.base): images `(images, arch)`, language models
    `(tokens, hidden, arch)`; the module itself is called without the architecture.
    """

    def __init__(self, net: nn.Module, space: "ModuleSpace", bindings: list[tuple[str, tuple[int, ...]]]):
        super().__init__()
        self.net = net
        self._space = space
        self._bindings = bindings        # module paths, resolved on every call (replicas have their own modules)

    def activate(self, arch: Architecture) -> None:
        """Set `arch`'s choice on every choice module (before a forward pass)."""
        if arch is None:
            raise ArchitectureError(f"{self._space.name} supernet: forward needs an architecture "
                                    f"(supernet(inputs..., arch))")
        choices = self._space.validate(arch).choices
        for path, indices in self._bindings:
            self.net.get_submodule(path).activate([choices[i] for i in indices])

    def forward(self, *inputs):
        *data, arch = inputs
        self.activate(arch)
        return self.net(*data)

    def init_hidden(self, batch_size: int):
        """The module's recurrent state (language models)."""
        return self.net.init_hidden(batch_size)


class ChoiceNetwork(nn.Module):
    """The standalone network of one architecture: the module with its choices fixed.

    `forward(*inputs, arch)` ignores `arch` (as every standalone network of enas does) and runs
    the module on `inputs`; `net` is the plain module (see `deployable`).
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, *inputs):
        *data, _arch = inputs
        return self.net(*data)

    def init_hidden(self, batch_size: int):
        return self.net.init_hidden(batch_size)


def deployable(network: nn.Module) -> nn.Module:
    """The module a user runs without enas's calling conventions (the plain module of a ChoiceNetwork)."""
    return network.net if isinstance(network, ChoiceNetwork) else network


class ModuleSpace(SearchSpace):
    """A search space from a module with choice modules inside (see the module docstring)."""

    def __init__(self, factory: Callable[..., nn.Module] | nn.Module, kwargs: dict | None = None,
                 sizes: dict | None = None, name: str | None = None):
        if not (callable(factory) or isinstance(factory, nn.Module)):
            raise TypeError(f"ModuleSpace: expected a module class, a function or a module, got {type(factory).__name__}")
        self.factory = factory
        self.name = name or canonical_name(factory)
        self.kwargs = _check_plain(dict(kwargs or {}), self.name)
        if isinstance(factory, nn.Module) and self.kwargs:
            raise ValueError(f"{self.name}: a module instance takes no kwargs (pass its class instead)")
        probe = self._new_module(dict(sizes or {}))
        self._found = find_choices(probe, self.name)
        if not self._found.decisions:
            raise ValueError(f"{self.name}: no LayerChoice, InputChoice or ValueChoice inside; nothing to search")
        self.task = "lm" if hasattr(probe, "init_hidden") else "image"

    def _new_module(self, sizes: dict) -> nn.Module:
        if isinstance(self.factory, nn.Module):
            return copy.deepcopy(self.factory)
        module = call_with_sizes(self.factory, self.kwargs, sizes, self.name)
        if not isinstance(module, nn.Module):
            raise TypeError(f"{self.name}: returned a {type(module).__name__}, not an nn.Module")
        return module

    def _build(self, sizes: dict) -> tuple[nn.Module, _Found]:
        """A fresh module and its choices, which must be the probe's."""
        module = self._new_module(sizes)
        found = find_choices(module, self.name)
        if found.decisions != self._found.decisions:
            raise ValueError(f"{self.name}: built with sizes {sizes} it has other choices than before; the choices "
                             f"may depend only on the space kwargs (structure), not on sizes")
        return module, found

    def structure(self) -> dict:
        return dict(self.kwargs)

    def decisions(self) -> list[Decision]:
        return list(self._found.decisions)

    def build_supernet(self, **sizes) -> ChoiceSupernet:
        module, found = self._build(sizes)
        return ChoiceSupernet(module, self, found.bindings)

    def build_network(self, arch: Architecture, **sizes) -> ChoiceNetwork:
        choices = self.validate(arch).choices
        module, found = self._build(sizes)
        # Resolve every choice module before fixing any: fixing drops unchosen candidates,
        # and with them the choices nested inside those.
        bound = [(module.get_submodule(path), indices) for path, indices in found.bindings]
        for choice, indices in bound:
            choice.activate([choices[i] for i in indices])
        for choice, _ in bound:
            choice.fix()
        return ChoiceNetwork(module)

    def graph(self, arch: Architecture) -> Graph:
        """One box per node module (its decisions and the chosen values), in order."""
        choices = self.validate(arch).choices
        decisions, owners = self._found.decisions, self._found.owners
        g = Graph(nodes=[("input", "input")], edges=[])
        prev, i = "input", 0
        while i < len(decisions):
            j = i
            while j + 1 < len(decisions) and owners[j + 1] == owners[i]:
                j += 1
            node = f"n{len(g.nodes)}"
            parts = [f"{d.name.rpartition('.')[2] if owners[i] else d.name}={d.describe(c)}"
                     for d, c in zip(decisions[i:j + 1], choices[i:j + 1])]
            g.nodes.append((node, f"{owners[i] or 'model'}: {' '.join(parts)}"))
            g.edges.append((prev, node, ""))
            prev, i = node, j + 1
        g.nodes.append(("output", "output"))
        g.edges.append((prev, "output", ""))
        return g
