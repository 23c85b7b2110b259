"""Grid search: enumerate every architecture of the space (or of a subset of its decisions)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from enas.arch import Architecture, Decision
from enas.strategies.base import Strategy, register_strategy

if TYPE_CHECKING:                      # strategies see a space only through name and decisions()
    from enas.spaces.base import SearchSpace


def decision_size(decision: Decision) -> int:
    """How many values a decision has (skip: 2**num_choices bit patterns)."""
    return 2 ** decision.num_choices if decision.kind == "skip" else decision.num_choices


def value_at(decision: Decision, index: int) -> int | tuple[int, ...]:
    """The `index`-th value of a decision in lexicographic order.

    Skip patterns are ordered as bit tuples: (0,..,0,0), (0,..,0,1), (0,..,1,0), ...
    """
    if decision.kind == "skip":
        n = decision.num_choices
        return tuple((index >> (n - 1 - k)) & 1 for k in range(n))
    return index


def _canonical(decision: Decision, value: Any) -> int | tuple[int, ...]:
    """Validate a user-given fixed value (lists from configs become tuples)."""
    if decision.kind == "skip" and not isinstance(value, (list, tuple)) and hasattr(value, "__iter__"):
        value = list(value)  # e.g. an omegaconf ListConfig
    return decision.validate(value)


@register_strategy("grid")
class GridStrategy(Strategy):
    """Enumerates a grid of architectures in a fixed lexicographic order.

    The grid spans `decisions` (names; None = every decision of the space); every other decision
    keeps its value from `fixed` (default 0, or all-zero bits for skip decisions). The order is
    that of `itertools.product` over the enumerated decisions in the space's order: the last
    decision varies fastest. `ask(n)` returns the next n grid points and, once the grid is
    exhausted (`exhausted` is True), cycles back to the start. Grids larger than `max_count`
    are refused; the size is counted without enumerating (Python big ints).
    """

    def __init__(self, space: SearchSpace, seed: int = 0, top_k: int = 20,
                 decisions: Sequence[str] | None = None, fixed: dict[str, Any] | None = None,
                 max_count: int = 10_000):
        super().__init__(space, seed=seed, top_k=top_k)
        by_name = {d.name: i for i, d in enumerate(self.decisions)}
        fixed = dict(fixed or {})
        for name in list(decisions or []) + list(fixed):
            if name not in by_name:
                raise ValueError(f"grid strategy: space {space.name!r} has no decision {name!r}; "
                                 f"its decisions are {', '.join(by_name)}")
        if decisions is None:
            decisions = [d.name for d in self.decisions if d.name not in fixed]
        both = sorted(set(decisions) & set(fixed))
        if both:
            raise ValueError(f"grid strategy: decisions {both} are both enumerated and fixed")
        chosen = set(decisions)
        # indices of the enumerated decisions, in the space's order
        self.grid_indices = [i for i, d in enumerate(self.decisions) if d.name in chosen]
        self.base_choices = [
            _canonical(d, fixed[d.name]) if d.name in fixed else value_at(d, 0) for d in self.decisions
        ]
        self.count = 1
        for i in self.grid_indices:
            self.count *= decision_size(self.decisions[i])
        if self.count > max_count:
            raise ValueError(
                f"grid strategy: the grid over space {space.name!r} has {self.count} architectures, "
                f"more than max_count={max_count}; enumerate fewer decisions (option `decisions`, "
                f"fixing the others with `fixed`) or raise max_count")
        self.position = 0  # grid points handed out so far (keeps counting past the end)

    @property
    def exhausted(self) -> bool:
        """True once every grid point has been asked at least once."""
        return self.position >= self.count

    def point(self, index: int) -> Architecture:
        """The `index`-th grid point (mixed-radix decoding, last decision fastest)."""
        choices = list(self.base_choices)
        rest = index % self.count
        for i in reversed(self.grid_indices):
            size = decision_size(self.decisions[i])
            rest, digit = divmod(rest, size)
            choices[i] = value_at(self.decisions[i], digit)
        return Architecture(self.space.name, tuple(choices))

    def ask(self, n: int) -> list[Architecture]:
        """The next n grid points, cycling to the start after the last one."""
        archs = [self.point(self.position + j) for j in range(n)]
        self.position += n
        return archs

    def tell(self, archs: Sequence[Architecture], rewards: Sequence[float]) -> dict[str, float]:
        super().tell(archs, rewards)
        return {"grid/progress": min(self.position, self.count) / self.count}

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["position"] = self.position
        state["count"] = self.count
        return state

    def load_state_dict(self, state: dict) -> None:
        if int(state["count"]) != self.count:
            raise ValueError(f"grid strategy: the saved state is for a grid of {state['count']} points, "
                             f"this grid has {self.count} (different decisions/fixed options?)")
        super().load_state_dict(state)
        self.position = int(state["position"])
