"""Regularised (ageing) evolution, Real et al. 2019, "Regularized Evolution for Image
Classifier Architecture Search".

The population is a queue: every evaluated child joins at the back and, once the queue holds
more than `population_size` members, the OLDEST member dies (not the worst). Parents are the
fittest of a random tournament of `sample_size` members; a child differs from its parent in
exactly one decision.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np

from enas.arch import Architecture, hashable_choices, plain_choices
from enas.rng import generator_state, restore_generator_state
from enas.strategies.base import Strategy, register_strategy, uniform_architecture

if TYPE_CHECKING:                      # strategies see a space only through name and decisions()
    from enas.spaces.base import SearchSpace


@register_strategy("evolution")
class EvolutionStrategy(Strategy):
    """Regularised evolution with ask/tell.

    ask: the first `population_size` asks are uniformly random architectures (the initial
    population; also whenever no reward has been told yet); later asks are mutations of the
    best member of a tournament of `sample_size` members drawn without replacement.
    Children asked but not yet told are kept in `pending`; rewards arrive through `tell`,
    which appends (arch, reward, birth step) to the population and removes the oldest members
    beyond `population_size`. Non-finite rewards count as -inf fitness.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, top_k: int = 20,
                 population_size: int = 20, sample_size: int = 5, skip_prob: float = 0.5):
        super().__init__(space, seed=seed, top_k=top_k)
        if population_size < 1:
            raise ValueError(f"evolution strategy: population_size must be >= 1, got {population_size}")
        if not 1 <= sample_size <= population_size:
            raise ValueError(f"evolution strategy: sample_size must be in 1..population_size "
                             f"({population_size}), got {sample_size}")
        self.population_size = population_size
        self.sample_size = sample_size
        self.skip_prob = skip_prob
        self.rng = np.random.default_rng(seed)
        # decisions a mutation can change: skips (flip a bit) and op/input with >1 value
        self.mutable = [i for i, d in enumerate(self.decisions) if d.kind == "skip" or d.num_choices > 1]
        self.population: list[tuple[tuple, float, int]] = []  # (choices, fitness, birth), oldest first
        self.pending: list[tuple] = []  # choices asked but not told yet, oldest first
        self.num_random_asked = 0
        self.step = 0  # members told so far: the birth clock

    # ---- proposing -------------------------------------------------------------------
    def ask(self, n: int) -> list[Architecture]:
        archs = []
        for _ in range(n):
            if self.num_random_asked < self.population_size or not self.population:
                choices = uniform_architecture(self.space.name, self.decisions, self.rng, self.skip_prob).choices
                self.num_random_asked += 1
            else:
                choices = self.mutate(self.tournament())
            self.pending.append(choices)
            archs.append(Architecture(self.space.name, choices))
        return archs

    def tournament(self) -> tuple:
        """The choices of the fittest of `sample_size` random members (first one on ties)."""
        size = min(self.sample_size, len(self.population))
        picked = self.rng.choice(len(self.population), size=size, replace=False)
        best = max(picked.tolist(), key=lambda i: (self.population[i][1], -i))
        return self.population[best][0]

    def mutate(self, choices: tuple) -> tuple:
        """Change exactly one decision to a different value (skip: flip one bit).

        A space whose decisions all have a single value has nothing to mutate: returns a copy.
        """
        if not self.mutable:
            return tuple(choices)
        i = self.mutable[int(self.rng.integers(len(self.mutable)))]
        decision, old = self.decisions[i], choices[i]
        if decision.kind == "skip":
            k = int(self.rng.integers(decision.num_choices))
            new = tuple(1 - b if j == k else b for j, b in enumerate(old))
        else:
            new = int(self.rng.integers(decision.num_choices - 1))
            new += int(new >= old)  # skip the old value: uniform over the others
        return tuple(new if j == i else c for j, c in enumerate(choices))

    # ---- learning --------------------------------------------------------------------
    def tell(self, archs: Sequence[Architecture], rewards: Sequence[float]) -> dict[str, float]:
        super().tell(archs, rewards)
        for arch, reward in zip(archs, rewards):
            choices = tuple(arch.choices)
            if choices in self.pending:
                self.pending.remove(choices)  # removes the oldest matching child
            fitness = float(reward) if math.isfinite(float(reward)) else -math.inf
            self.population.append((choices, fitness, self.step))
            self.step += 1
            while len(self.population) > self.population_size:
                self.population.pop(0)  # ageing: the oldest dies, whatever its fitness
        stats = self.population_stats()
        stats["evolution/pending"] = float(len(self.pending))
        return stats

    def population_stats(self) -> dict[str, float]:
        """Mean/max age (members born since, newest = 0) and mean/max finite fitness."""
        if not self.population:
            return {}
        ages = [self.step - 1 - birth for _, _, birth in self.population]
        fits = [f for _, f, _ in self.population if math.isfinite(f)]
        return {
            "evolution/age_mean": sum(ages) / len(ages),
            "evolution/age_max": float(max(ages)),
            "evolution/fitness_mean": sum(fits) / len(fits) if fits else math.nan,
            "evolution/fitness_max": max(fits) if fits else math.nan,
            "evolution/population": float(len(self.population)),
        }

    # ---- checkpointing ---------------------------------------------------------------
    def state_dict(self) -> dict:
        state = super().state_dict()
        state.update({
            "rng": generator_state(self.rng),
            "population": [[plain_choices(c), f, b] for c, f, b in self.population],
            "pending": [plain_choices(c) for c in self.pending],
            "num_random_asked": self.num_random_asked,
            "step": self.step,
        })
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        restore_generator_state(self.rng, state["rng"])
        self.population = [(hashable_choices(c), float(f), int(b)) for c, f, b in state["population"]]
        self.pending = [hashable_choices(c) for c in state["pending"]]
        self.num_random_asked = int(state["num_random_asked"])
        self.step = int(state["step"])
