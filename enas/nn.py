"""Choice modules: write a search space as an ordinary PyTorch module.

    from enas.nn import InputChoice, LayerChoice, ValueChoice

    class Net(nn.Module):
        def __init__(self, num_classes: int, width: int = 16):
            super().__init__()
            self.stem = nn.Conv2d(3, width, 3, padding=1)
            self.op = LayerChoice({"conv3": nn.Conv2d(width, width, 3, padding=1),
                                   "conv5": nn.Conv2d(width, width, 5, padding=2),
                                   "pool": nn.MaxPool2d(3, 1, 1)})
            self.skip = InputChoice(2, n_chosen=1)      # the op's output, or the stem's
            self.dropout = ValueChoice([0.0, 0.3])
            self.head = nn.Linear(width, num_classes)

        def forward(self, x):                          # (B, 3, H, W) -> (B, K)
            x = self.stem(x)
            y = self.skip([self.op(x), x])
            return self.head(F.dropout(y.mean((2, 3)), self.dropout.value, self.training))

`enas.spaces.module_space.ModuleSpace` finds these modules by walking the module tree and
turns each into decisions (`enas.arch.Decision`); the choice modules themselves only hold
candidates and the choice currently made:

- `LayerChoice(candidates)`: one of several modules (a list, or a dict label -> module).
  One `op` decision. Only the chosen candidate runs, so the others get no gradient.
- `InputChoice(n_candidates, n_chosen)`: which of the `n_candidates` tensors handed to it feed
  on. `n_chosen=1`: one `input` decision. `n_chosen=k > 1`: k `input` decisions named
  `name[0]` .. `name[k-1]`, each one of the candidates, repeats allowed (as an ENAS micro node
  picks its two inputs). `n_chosen=None`: any subset, one `skip` decision (a bit per
  candidate); with no bit on the result is None. The chosen tensors are reduced by
  `reduction`: "sum" (default), "mean", "concat" (dim 1) or "none" (the list).
- `ValueChoice(values)`: one value of a list (a dropout rate, an activation, a depth), read in
  `forward` as `.value`. One `op` decision labelled `str(value)`. A value that would change a
  parameter's shape (a width, a kernel size) needs its own parameters per value: write it as
  a `LayerChoice` of modules instead.

Choices with the same `label` are one decision (shared). Without a label a decision is named
by the module path (`blocks.2.op`).

How the architecture reaches these modules: the space's supernet calls `activate(values)` on
every choice module before each forward pass (`_active` is a plain attribute, never in a
state_dict, so checkpoints do not depend on it; module replicas, such as nn.DataParallel's,
copy it). The standalone network of one architecture calls `fix()` after `activate`: it drops
the candidates that were not chosen, and `activate` refuses any other choice from then on.
Its forward reads only Python ints, so `torch.export` traces it like any plain module.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from enas.arch import Decision

REDUCTIONS = ("sum", "mean", "concat", "none")


class Choice(nn.Module):
    """Base of the choice modules: a label, the active choice, the decisions it makes."""

    def __init__(self, label: str | None):
        super().__init__()
        if label is not None and (not isinstance(label, str) or not label):
            raise ValueError(f"{type(self).__name__}: label must be a non-empty string or None, got {label!r}")
        self.label = label
        self.decision_name = label or type(self).__name__   # set to the decision's name by the space
        self.fixed = False
        self._active: Any = None

    def decisions(self, name: str) -> list[Decision]:
        """The decisions this module makes, named after `name` (anchors are the space's business)."""
        raise NotImplementedError

    def activate(self, values: Sequence) -> None:
        """Take this module's choice from `values` (one per decision of `decisions`)."""
        active = self._from_values(list(values))
        if self.fixed and active != self._active:
            raise RuntimeError(f"{type(self).__name__} {self.decision_name!r} is fixed to {self._active!r}; "
                               f"build another network for another architecture")
        self._active = active

    def _from_values(self, values: list) -> Any:
        raise NotImplementedError

    def fix(self) -> None:
        """Keep only what the active choice needs (the standalone network of one architecture)."""
        self._check_active()
        self.fixed = True

    def _check_active(self) -> Any:
        if self._active is None:
            raise RuntimeError(
                f"{type(self).__name__} {self.decision_name!r}: no architecture is active; run the module through "
                f"its space (supernet(x, arch)) or build the standalone network of an architecture")
        return self._active

    def describe(self) -> str:
        """The active choice in words (for drawings)."""
        return str(self._active)


def _default_labels(modules: Sequence[nn.Module]) -> list[str]:
    """Class names; a name that repeats gets its index (Conv2d_0, Conv2d_1)."""
    names = [type(m).__name__ for m in modules]
    return [f"{n}_{i}" if names.count(n) > 1 else n for i, n in enumerate(names)]


class LayerChoice(Choice):
    """One of several candidate modules: `LayerChoice([op_a, op_b])` or `LayerChoice({"a": op_a, ...})`.

    The candidates are stored as `candidates.<index>`, in the supernet and in the standalone
    network alike, so inherited weights match by name.
    """

    def __init__(self, candidates: Sequence[nn.Module] | Mapping[str, nn.Module], label: str | None = None):
        super().__init__(label)
        if isinstance(candidates, Mapping):
            labels, modules = [str(k) for k in candidates], list(candidates.values())
        else:
            modules = list(candidates)
            labels = _default_labels(modules)
        if not modules:
            raise ValueError("LayerChoice: needs at least one candidate")
        for name, m in zip(labels, modules):
            if not isinstance(m, nn.Module):
                raise TypeError(f"LayerChoice: candidate {name!r} is a {type(m).__name__}, not an nn.Module")
        if len(set(labels)) != len(labels):
            raise ValueError(f"LayerChoice: candidate labels repeat: {labels}")
        self.labels = tuple(labels)
        self.candidates = nn.ModuleDict({str(i): m for i, m in enumerate(modules)})

    def decisions(self, name: str) -> list[Decision]:
        return [Decision(name, "op", len(self.labels), self.labels)]

    def _from_values(self, values: list) -> int:
        return int(values[0])

    def fix(self) -> None:
        keep = str(super()._check_active())
        for key in [k for k in self.candidates if k != keep]:
            del self.candidates[key]
        super().fix()

    @property
    def chosen(self) -> nn.Module:
        """The active candidate module."""
        return self.candidates[str(self._check_active())]

    def forward(self, *args, **kwargs):
        return self.chosen(*args, **kwargs)

    def describe(self) -> str:
        return self.labels[self._check_active()]


class InputChoice(Choice):
    """Which of `n_candidates` tensors feed on (see the module docstring for `n_chosen`)."""

    def __init__(self, n_candidates: int, n_chosen: int | None = 1, reduction: str = "sum",
                 label: str | None = None):
        super().__init__(label)
        if isinstance(n_candidates, bool) or not isinstance(n_candidates, int) or n_candidates < 1:
            raise ValueError(f"InputChoice: n_candidates must be an integer >= 1, got {n_candidates!r}")
        if n_chosen is not None and (isinstance(n_chosen, bool) or not isinstance(n_chosen, int) or n_chosen < 1):
            raise ValueError(f"InputChoice: n_chosen must be None (any subset) or an integer >= 1, got {n_chosen!r}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"InputChoice: reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
        self.n_candidates, self.n_chosen, self.reduction = n_candidates, n_chosen, reduction

    def decisions(self, name: str) -> list[Decision]:
        if self.n_chosen is None:
            return [Decision(name, "skip", self.n_candidates)]
        if self.n_chosen == 1:
            return [Decision(name, "input", self.n_candidates)]
        return [Decision(f"{name}[{j}]", "input", self.n_candidates) for j in range(self.n_chosen)]

    def _from_values(self, values: list) -> tuple[int, ...]:
        if self.n_chosen is None:          # one skip decision: a bit per candidate
            return tuple(i for i, bit in enumerate(values[0]) if bit)
        return tuple(int(v) for v in values)

    @property
    def chosen(self) -> tuple[int, ...]:
        """Indices of the chosen candidates (in order; may repeat when n_chosen > 1)."""
        return self._check_active()

    def forward(self, inputs: Sequence[torch.Tensor]):
        """inputs: the `n_candidates` tensors -> the reduction of the chosen ones (None if none is)."""
        if len(inputs) != self.n_candidates:
            raise ValueError(f"InputChoice {self.decision_name!r}: expected {self.n_candidates} candidate tensors, "
                             f"got {len(inputs)}")
        picked = [inputs[i] for i in self.chosen]
        if self.reduction == "none":
            return picked
        if not picked:
            return None
        if self.reduction == "concat":
            return torch.cat(picked, dim=1)
        out = picked[0]
        for t in picked[1:]:               # left to right, as a hand-written sum adds
            out = out + t
        return out / len(picked) if self.reduction == "mean" else out

    def describe(self) -> str:
        return "inputs " + ",".join(str(i) for i in self.chosen) if self.chosen else "no input"


class ValueChoice(Choice):
    """One value of `values`, read in forward as `.value` (or by calling the module)."""

    def __init__(self, values: Sequence, label: str | None = None):
        super().__init__(label)
        values = list(values)
        if not values:
            raise ValueError("ValueChoice: needs at least one value")
        labels = [str(v) for v in values]
        if len(set(labels)) != len(labels):
            raise ValueError(f"ValueChoice: values repeat (as text): {labels}")
        self.values, self.labels = values, tuple(labels)

    def decisions(self, name: str) -> list[Decision]:
        return [Decision(name, "op", len(self.values), self.labels)]

    def _from_values(self, values: list) -> int:
        return int(values[0])

    @property
    def value(self):
        """The active value."""
        return self.values[self._check_active()]

    def forward(self):
        return self.value

    def describe(self) -> str:
        return self.labels[self._check_active()]

    def extra_repr(self) -> str:
        return f"values={self.values}"
