"""Few-shot supernets: one copy of the supernet per option of one decision.

Few-shot NAS (Zhao et al., ICML 2021) trains the one-shot supernet, then splits it on one
decision into one sub-supernet per option, each starting from the trained weights and trained
on (and scoring) only the architectures that chose its option. Two architectures that differ at
that decision then share no weights, which removes part of the interference between the
candidates that makes one-shot scores rank poorly.

`FewShotSupernet` holds the K copies. Before `split()` every architecture runs copy 0 (the
one-shot supernet; the other copies get no gradient, so the optimizer leaves them alone);
`split()` copies copy 0's weights into the others, in place (the optimizer keeps the same
parameters), and from then on an architecture runs the copy of its choice. The split state is
part of `state_dict()`, so a checkpoint resumes on the right side of the split.
"""

from __future__ import annotations

import copy

from torch import nn

from enas.arch import Architecture, Decision

#: decision kinds a supernet can be split on (their choice is one index)
SPLITTABLE_KINDS = ("op", "input")


class FewShotSupernet(nn.Module):
    """One copy of `supernet` per option of `decision` (the space's decision number `index`);
    an architecture runs the copy of its choice there once the supernet is split.

    Same calling convention as the wrapped supernet (`arch` last; enas.spaces.base)."""

    def __init__(self, supernet: nn.Module, decision: Decision, index: int):
        super().__init__()
        if decision.kind not in SPLITTABLE_KINDS:
            raise ValueError(f"few-shot split on {decision.name!r}: a {decision.kind!r} decision has no single "
                             f"option per architecture; choose an op or input decision")
        self.decision, self.index = decision, index
        self.parts = nn.ModuleList([supernet] + [copy.deepcopy(supernet) for _ in range(decision.num_choices - 1)])
        self.is_split = False

    def part(self, arch: Architecture) -> nn.Module:
        """The copy that trains and scores `arch`."""
        return self.parts[int(arch.choices[self.index])] if self.is_split else self.parts[0]

    def forward(self, *args):
        *inputs, arch = args
        return self.part(arch)(*inputs, arch)

    def init_hidden(self, batch_size: int):
        return self.parts[0].init_hidden(batch_size)

    def split(self) -> None:
        """Copy the one-shot weights (copy 0) into every other copy; from now on each
        architecture uses the copy of its choice."""
        if self.is_split:
            return
        state = self.parts[0].state_dict()
        for part in self.parts[1:]:
            part.load_state_dict(state)          # in place: the optimizer's parameters stay the same
        self.is_split = True

    def get_extra_state(self) -> dict:
        return {"is_split": self.is_split}

    def set_extra_state(self, state: dict) -> None:
        self.is_split = bool(state["is_split"])


def supernet_part(supernet: nn.Module, arch: Architecture) -> nn.Module:
    """The supernet that holds `arch`'s weights (its copy in a few-shot supernet)."""
    return supernet.part(arch) if isinstance(supernet, FewShotSupernet) else supernet
