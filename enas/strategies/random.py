"""Random search: every architecture drawn uniformly from the space.

Also home of the small RNG helpers the other classical strategies share.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from enas.arch import Architecture, Decision
from enas.spaces.base import SearchSpace
from enas.strategies.base import Strategy, register_strategy


def random_choice(decision: Decision, rng: np.random.Generator, skip_prob: float = 0.5) -> int | tuple[int, ...]:
    """One uniformly random value of `decision` (skip: each bit on with probability `skip_prob`)."""
    if decision.kind == "skip":
        return tuple(int(b) for b in (rng.random(decision.num_choices) < skip_prob))
    return int(rng.integers(decision.num_choices))


def random_choices(decisions: Sequence[Decision], rng: np.random.Generator,
                   skip_prob: float = 0.5) -> tuple:
    """A random value for every decision, in order."""
    return tuple(random_choice(d, rng, skip_prob) for d in decisions)


def plain_choices(choices: Sequence) -> list:
    """Choices as plain lists (skip tuples become lists), for state dicts."""
    return [list(c) if isinstance(c, (list, tuple)) else int(c) for c in choices]


def tuple_choices(choices: Sequence) -> tuple:
    """The inverse of `plain_choices`: hashable choices as an Architecture holds them."""
    return tuple(tuple(int(b) for b in c) if isinstance(c, (list, tuple)) else int(c) for c in choices)


def rng_state(rng: np.random.Generator) -> dict:
    """The generator's state as plain Python values (safe for torch.load(weights_only=True))."""
    return plain_value(rng.bit_generator.state)


def set_rng_state(rng: np.random.Generator, state: dict) -> None:
    """Restore a state saved by `rng_state`."""
    rng.bit_generator.state = state


def plain_value(value):
    """Recursively turn numpy scalars/arrays inside dicts and lists into Python values."""
    if isinstance(value, dict):
        return {k: plain_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


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
        return [Architecture(self.space.name, random_choices(self.decisions, self.rng, self.skip_prob))
                for _ in range(n)]

    def tell(self, archs: Sequence[Architecture], rewards: Sequence[float]) -> dict[str, float]:
        super().tell(archs, rewards)
        return {}

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["rng"] = rng_state(self.rng)
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        set_rng_state(self.rng, state["rng"])
