"""Surrogate pre-screening: predict rewards from architecture features, evaluate only the best.

The search loop asks the strategy for ceil(n / share) proposals and evaluates the n that the
surrogate ranks highest (`select`); every evaluated architecture's reward is `observe`d. With
costly standalone evaluation this spends the training budget on promising children.

Features: one-hot per `op`/`input` decision, one 0/1 feature per `skip` bit. Models:
scikit-learn Ridge ("ridge") or RandomForestRegressor ("forest", fixed seed). The state holds
the observations only; a reload refits to the same model.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from enas.arch import Architecture, Decision

MODELS = ("ridge", "forest")


def encode(decisions: Sequence[Decision], arch: Architecture) -> np.ndarray:
    """The feature vector of `arch`: one-hot op/input choices, then skip bits, in decision order."""
    parts = []
    for d, c in zip(decisions, arch.choices):
        if d.kind == "skip":
            parts.extend(float(b) for b in c)
        else:
            one_hot = [0.0] * d.num_choices
            one_hot[c] = 1.0
            parts.extend(one_hot)
    return np.asarray(parts, dtype=np.float64)


class Surrogate:
    """Ranks proposals by a regression model of reward on architecture features."""

    def __init__(self, decisions: Sequence[Decision], share: float, model: str = "ridge",
                 min_observations: int = 5, seed: int = 0, alpha: float = 1.0, trees: int = 100):
        if not 0.0 < share <= 1.0:
            raise ValueError(f"surrogate: share must be in (0, 1], got {share}")
        if model not in MODELS:
            raise ValueError(f"surrogate: unknown model {model!r}; known: {', '.join(MODELS)}")
        self.decisions = list(decisions)
        self.share, self.model_name = float(share), model
        self.min_observations, self.seed = int(min_observations), int(seed)
        self.alpha, self.trees = float(alpha), int(trees)
        self.observations: list[tuple[list, float]] = []   # (choices as plain lists, reward)
        self._model = None

    def _features(self, archs: Sequence[Architecture]) -> np.ndarray:
        return np.stack([encode(self.decisions, a) for a in archs])   # (N, F)

    def _new_model(self):
        if self.model_name == "ridge":
            from sklearn.linear_model import Ridge
            return Ridge(alpha=self.alpha)
        from sklearn.ensemble import RandomForestRegressor
        return RandomForestRegressor(n_estimators=self.trees, random_state=self.seed)

    def _arch(self, choices: list) -> Architecture:
        return Architecture.from_plain("", choices)

    def fit(self) -> None:
        """Refit the model on every observation (none before `min_observations`)."""
        if len(self.observations) < self.min_observations:
            self._model = None
            return
        x = self._features([self._arch(c) for c, _ in self.observations])
        y = np.asarray([r for _, r in self.observations], dtype=np.float64)
        self._model = self._new_model().fit(x, y)

    def observe(self, archs: Sequence[Architecture], rewards: Sequence[float]) -> None:
        """Record evaluated architectures and refit."""
        for arch, reward in zip(archs, rewards):
            self.observations.append((arch.plain_choices(), float(reward)))
        self.fit()

    def predict(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Predicted rewards (N,); raises before the model is fitted."""
        if self._model is None:
            raise RuntimeError(f"surrogate: not fitted ({len(self.observations)} of {self.min_observations} "
                               f"observations)")
        return self._model.predict(self._features(archs))

    def select(self, pool: Sequence[Architecture], n: int) -> list[Architecture]:
        """The n most promising of `pool` (highest predicted reward; ties keep pool order).

        Before `min_observations`, the first n of the pool: no screening yet.
        """
        if self._model is None or n >= len(pool):
            return list(pool[:n])
        predicted = self.predict(pool)
        order = sorted(range(len(pool)), key=lambda i: (-predicted[i], i))[:n]
        return [pool[i] for i in sorted(order)]

    def state_dict(self) -> dict:
        return {"observations": [[c, r] for c, r in self.observations]}

    def load_state_dict(self, state: dict) -> None:
        self.observations = [(list(c), float(r)) for c, r in state["observations"]]
        self.fit()
