"""The Strategy interface (ask/tell/state_dict) and the strategy registry.

Every strategy proposes architectures of one space and learns from their rewards:

    archs = strategy.ask(n)            # n Architecture objects
    stats = strategy.tell(archs, rewards)   # dict of scalars for TensorBoard

Strategies only see `space.name` and `space.decisions()`, never a model.
`state_dict()` holds everything needed to continue exactly (including RNG state).
"""

from __future__ import annotations

import heapq
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from enas.arch import Architecture, Decision
from enas.rng import generator_state, restore_generator_state

if TYPE_CHECKING:                      # strategies see a space only through name and decisions()
    from enas.spaces.base import SearchSpace

STRATEGIES: dict[str, type["Strategy"]] = {}


def register_strategy(name: str) -> Callable[[type], type]:
    """Class decorator: make a strategy available as `strategy=<name>`."""
    def wrap(cls):
        cls.name = name
        STRATEGIES[name] = cls
        return cls
    return wrap


def build_strategy(name: str, space: "SearchSpace", **kwargs) -> "Strategy":
    """Instantiate a registered strategy by name."""
    import enas.strategies  # noqa: F401  (registers the built-in strategies)
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(sorted(STRATEGIES))}")
    return STRATEGIES[name](space, **kwargs)


def uniform_architecture(space_name: str, decisions: Sequence[Decision], rng: np.random.Generator,
                         skip_prob: float = 0.5) -> Architecture:
    """One architecture drawn at random: every op/input value equally likely, every skip bit on
    with probability `skip_prob` (0.5: uniform over all bit patterns). The one sampler of enas."""
    choices = []
    for d in decisions:
        if d.kind == "skip":
            choices.append(tuple(int(b) for b in (rng.random(d.num_choices) < skip_prob)))
        else:
            choices.append(int(rng.integers(d.num_choices)))
    return Architecture(space_name, tuple(choices))


def fair_group(space_name: str, decisions: Sequence[Decision], rng: np.random.Generator) -> list[Architecture]:
    """A strict-fairness group of architectures (FairNAS, Chu et al. 2019).

    k = the most choices of any `op` decision (of any decision when there is none). Architecture i
    takes entry i of a fresh random permutation per decision, so within the group every op of every
    op decision with k choices is used exactly once; decisions with fewer choices repeat a shuffled
    cycle, decisions with more use k distinct values, skip bits are drawn uniformly.
    """
    sized = [d.num_choices for d in decisions if d.kind == "op"] or [d.num_choices for d in decisions
                                                                      if d.kind != "skip"] or [1]
    k = max(sized)
    columns = []
    for d in decisions:
        if d.kind == "skip":
            columns.append([tuple(int(b) for b in rng.random(d.num_choices) < 0.5) for _ in range(k)])
            continue
        cycles = -(-k // d.num_choices)
        values = np.concatenate([rng.permutation(d.num_choices) for _ in range(cycles)])[:k]
        columns.append([int(v) for v in values])
    return [Architecture(space_name, tuple(column[i] for column in columns)) for i in range(k)]


class Strategy(ABC):
    """Proposes architectures (`ask`) and learns from rewards (`tell`).

    The base class keeps the `top_k` best (architecture, reward) pairs seen so far, so
    every strategy can hand candidates to `enas-derive`.
    """

    name: str = ""
    #: True when the strategy has trainable torch parameters (moved with `.to(device)`).
    has_parameters: bool = False
    #: TensorBoard prefix of the scalars that `tell` returns.
    log_prefix: str = "strategy"

    def __init__(self, space: "SearchSpace", seed: int = 0, top_k: int = 20):
        self.space = space
        self.decisions = space.decisions()
        self.seed = seed
        self.top_k = top_k
        self.train_rng = np.random.default_rng([seed, 1])   # uniform omega-phase samples
        self._best: list[tuple[float, str, list]] = []  # min-heap of (reward, key, choices)

    @abstractmethod
    def ask(self, n: int) -> list[Architecture]:
        """Propose n architectures."""

    def tell(self, archs: Sequence[Architecture], rewards: Sequence[float]) -> dict[str, float]:
        """Learn from the rewards of `archs`; return scalars to log. Subclasses call super()."""
        for arch, reward in zip(archs, rewards):
            self._remember(arch, float(reward))
        return {}

    def train_samples(self, n: int) -> list[Architecture]:
        """Architectures to train the shared weights on (omega phase).

        By default uniform samples from the strategy's own generator (saved in `state_dict`):
        random search with weight sharing. Policy strategies (the controller)
        override this with their own samples. Kept apart from `ask` so that training the
        supernet never consumes a model-based strategy's proposals.
        """
        return [uniform_architecture(self.space.name, self.decisions, self.train_rng) for _ in range(n)]

    def proposals(self, n: int) -> list[Architecture]:
        """Candidates for deriving the final architecture: by default the best seen so far.

        Strategies with a policy (the controller) add their own samples and greedy choice.
        """
        return [a for a, _ in self.best(n)]

    def best(self, k: int | None = None) -> list[tuple[Architecture, float]]:
        """The best (architecture, reward) pairs seen, best first."""
        ranked = sorted(self._best, key=lambda t: (-t[0], t[1]))[: k or self.top_k]
        return [(Architecture.from_plain(self.space.name, ch), r) for r, _, ch in ranked]

    def _remember(self, arch: Architecture, reward: float) -> None:
        key = arch.key()
        if any(k == key for _, k, _ in self._best):
            # keep the latest reward of an architecture seen again (shared weights move on)
            self._best = [t for t in self._best if t[1] != key]
            heapq.heapify(self._best)
        item = (reward, key, arch.plain_choices())
        if len(self._best) < self.top_k:
            heapq.heappush(self._best, item)
        elif reward > self._best[0][0]:
            heapq.heapreplace(self._best, item)

    def state_dict(self) -> dict:
        """Everything needed to continue exactly; subclasses extend it."""
        return {"best": [list(t) for t in self._best], "train_rng": generator_state(self.train_rng)}

    def load_state_dict(self, state: dict) -> None:
        restore_generator_state(self.train_rng, state["train_rng"])
        self._best = [(float(r), str(k), ch) for r, k, ch in state["best"]]
        heapq.heapify(self._best)

    def to(self, device) -> "Strategy":
        """Move trainable state to a device (no-op for strategies without parameters)."""
        return self
