"""Random search: every architecture drawn uniformly from the space."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from enas.arch import Architecture
from enas.rng import generator_state, restore_generator_state
from enas.strategies.base import Strategy, register_strategy, uniform_architecture

if TYPE_CHECKING:                      # strategies see a space only through name and decisions()
    from enas.spaces.base import SearchSpace


@register_strategy("random")
class RandomStrategy(Strategy):
    """Uniform random search over the space.

    op/input decisions: every value equally likely; skip decisions: every bit independently on
    with probability `skip_prob` (0.5 = uniform over all bit patterns).
    """

    def __init__(self, space: SearchSpace, seed: int = 0, top_k: int = 20, skip_prob: float = 0.5):
        super().__init__(space, seed=seed, top_k=top_k)
        if not 0.0 <= skip_prob <= 1.0:
            raise ValueError(f"random strategy: skip_prob must be in [0, 1], got {skip_prob}")
        self.skip_prob = float(skip_prob)
        self.rng = np.random.default_rng(seed)

    def ask(self, n: int) -> list[Architecture]:
        return [uniform_architecture(self.space.name, self.decisions, self.rng, self.skip_prob) for _ in range(n)]

    def tell(self, archs: Sequence[Architecture], rewards: Sequence[float]) -> dict[str, float]:
        super().tell(archs, rewards)
        return {}

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["rng"] = generator_state(self.rng)
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        restore_generator_state(self.rng, state["rng"])
