"""Bayesian optimisation through Optuna's ask-and-tell interface: `tpe` and `gp`.

Every decision becomes categorical parameters of one Optuna study: an op/input decision is
one parameter named after the decision with values 0..num_choices-1; a skip decision is one
{0, 1} parameter per bit, named f"{name}[{k}]". The parameters are the same for every trial
(a decision's range depends only on its position), so the samplers see a fixed search space.
"""

from __future__ import annotations

import math
from collections import deque
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import optuna
import torch
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from enas.arch import Architecture, hashable_choices, plain_choices
from enas.rng import plain_value
from enas.strategies.base import Strategy, register_strategy

if TYPE_CHECKING:                      # strategies see a space only through name and decisions()
    from enas.spaces.base import SearchSpace

SAMPLERS = ("tpe", "gp")

# trial states as plain strings in the state dict
_STATE_NAMES = {TrialState.RUNNING: "running", TrialState.COMPLETE: "complete", TrialState.FAIL: "fail"}
_STATES = {v: k for k, v in _STATE_NAMES.items()}
# the tensors of a cached optuna GPRegressor that `fit_kernel_params` reads
_GP_CACHE_FIELDS = ("inverse_squared_lengthscales", "kernel_scale", "noise_var")


def _sampler_rngs(sampler: Any, prefix: str = "sampler") -> dict[str, np.random.RandomState]:
    """The RandomState objects a sampler (and its fallback sampler) draws from, by path.

    Optuna keeps them in private attributes (`_rng`, a LazyRandomState, and the fallback
    `_random_sampler` of TPE / `_independent_sampler` of GP); whatever is not found is skipped.
    """
    found = {}
    lazy = getattr(sampler, "_rng", None)
    if lazy is not None and isinstance(getattr(lazy, "rng", None), np.random.RandomState):
        found[prefix] = lazy.rng
    for attr in ("_random_sampler", "_independent_sampler"):
        sub = getattr(sampler, attr, None)
        if sub is not None:
            found.update(_sampler_rngs(sub, f"{prefix}.{attr}"))
    return found


class OptunaStrategy(Strategy):
    """Ask/tell over an Optuna study maximising the reward (sampler "tpe" or "gp").

    `n_startup_trials` random trials come first (Optuna's default 10); `sampler_options` are
    passed on to `TPESampler` / `GPSampler`. Each asked architecture keeps its pending trial
    (FIFO per architecture key); `tell` completes the matching trial, and adds a new completed
    trial for an architecture that was never asked. Non-finite rewards mark the trial failed.

    Resuming: a study is not plain data, so the state dict holds every trial in order
    (choices, state, value), the samplers' RandomState states and, for GP, the cached kernel
    parameters that Optuna uses to warm-start the next GP fit. `load_state_dict` rebuilds the
    study with `add_trial` (pending trials as RUNNING trials) and restores those, so a resumed
    strategy proposes the same architectures as an uninterrupted one, for both samplers.
    This relies on private Optuna attributes (checked with Optuna 5.0); if a future Optuna
    renames them, resuming still works but the proposals may differ from an uninterrupted run.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, top_k: int = 20, sampler: str = "tpe",
                 n_startup_trials: int = 10, sampler_options: dict | None = None):
        super().__init__(space, seed=seed, top_k=top_k)
        if sampler not in SAMPLERS:
            raise ValueError(f"optuna strategy: unknown sampler {sampler!r}; known: {', '.join(SAMPLERS)}")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.sampler_name = sampler
        self.n_startup_trials = n_startup_trials
        self.sampler_options = dict(sampler_options or {})
        # (parameter name, decision index, bit index or None), in decision order
        self.params: list[tuple[str, int, int | None]] = []
        for i, d in enumerate(self.decisions):
            if d.kind == "skip":
                self.params += [(f"{d.name}[{k}]", i, k) for k in range(d.num_choices)]
            else:
                self.params.append((d.name, i, None))
        self.distributions = {
            name: CategoricalDistribution([0, 1] if bit is not None else list(range(self.decisions[i].num_choices)))
            for name, i, bit in self.params
        }
        self._new_study()

    def _new_study(self) -> None:
        """A fresh study with a freshly seeded sampler and no trials."""
        options = dict(seed=self.seed, n_startup_trials=self.n_startup_trials, **self.sampler_options)
        if self.sampler_name == "tpe":
            sampler = optuna.samplers.TPESampler(**options)
        else:
            sampler = optuna.samplers.GPSampler(**options)
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self.records: list[dict] = []  # one per trial number: choices, state, value
        self.pending: dict[str, deque[int]] = {}  # arch key -> trial numbers asked, oldest first

    # ---- conversion ------------------------------------------------------------------
    def _choices(self, params: dict[str, int]) -> tuple:
        choices: list[Any] = [None] * len(self.decisions)
        for i, d in enumerate(self.decisions):
            if d.kind == "skip":
                choices[i] = tuple(int(params[f"{d.name}[{k}]"]) for k in range(d.num_choices))
            else:
                choices[i] = int(params[d.name])
        return tuple(choices)

    def _params(self, choices: tuple) -> dict[str, int]:
        return {name: int(choices[i] if bit is None else choices[i][bit]) for name, i, bit in self.params}

    # ---- ask / tell ------------------------------------------------------------------
    def ask(self, n: int) -> list[Architecture]:
        archs = []
        for _ in range(n):
            trial = self.study.ask(fixed_distributions=self.distributions)
            arch = Architecture(self.space.name, self._choices(trial.params))
            self.records.append({"choices": arch.choices, "state": "running", "value": None})
            self.pending.setdefault(arch.key(), deque()).append(trial.number)
            archs.append(arch)
        return archs

    def tell(self, archs: Sequence[Architecture], rewards: Sequence[float]) -> dict[str, float]:
        super().tell(archs, rewards)
        for arch, reward in zip(archs, rewards):
            reward = float(reward)
            numbers = self.pending.get(arch.key())
            if numbers:
                number = numbers.popleft()
                if not numbers:
                    del self.pending[arch.key()]
            else:  # never asked: record it as an extra completed trial
                arch = self.space.validate(arch)
                number = self._add_trial(arch.choices, "running", None)
            if math.isfinite(reward):
                self.study.tell(number, reward)
                self.records[number].update(state="complete", value=reward)
            else:
                self.study.tell(number, state=TrialState.FAIL)
                self.records[number].update(state="fail", value=None)
        return {"optuna/pending": float(sum(len(q) for q in self.pending.values()))}

    def _add_trial(self, choices: tuple, state: str, value: float | None) -> int:
        """Append a trial with known choices to the study and the records; return its number."""
        self.study.add_trial(optuna.trial.create_trial(
            params=self._params(choices), distributions=self.distributions,
            value=value, state=_STATES[state]))
        self.records.append({"choices": choices, "state": state, "value": value})
        return len(self.records) - 1

    # ---- checkpointing ---------------------------------------------------------------
    def state_dict(self) -> dict:
        state = super().state_dict()
        state["trials"] = [[plain_choices(r["choices"]), r["state"], r["value"]] for r in self.records]
        state["rngs"] = {path: plain_value(rng.get_state(legacy=False))
                         for path, rng in _sampler_rngs(self.study.sampler).items()}
        # GP only: the kernel parameters Optuna warm-starts the next GP fit from
        cache = getattr(self.study.sampler, "_gprs_cache_list", None)
        state["gp_cache"] = [{k: getattr(g, k).detach().clone().cpu() for k in _GP_CACHE_FIELDS}
                             for g in cache] if cache else None
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._new_study()
        for choices, trial_state, value in state["trials"]:
            number = self._add_trial(hashable_choices(choices), trial_state, value)
            if trial_state == "running":
                key = Architecture(self.space.name, self.records[number]["choices"]).key()
                self.pending.setdefault(key, deque()).append(number)
        rngs = _sampler_rngs(self.study.sampler)
        for path, rng_state in state["rngs"].items():
            if path in rngs:
                rngs[path].set_state(rng_state)
        if state.get("gp_cache") and hasattr(self.study.sampler, "_gprs_cache_list"):
            # fit_kernel_params only reads these three tensors of the cached regressors
            self.study.sampler._gprs_cache_list = [
                SimpleNamespace(**{k: v.to(torch.float64) for k, v in g.items()}) for g in state["gp_cache"]
            ]


@register_strategy("tpe")
class TPEStrategy(OptunaStrategy):
    """Optuna's Tree-structured Parzen Estimator (`TPESampler`)."""

    def __init__(self, space: SearchSpace, seed: int = 0, top_k: int = 20, n_startup_trials: int = 10,
                 sampler_options: dict | None = None):
        super().__init__(space, seed=seed, top_k=top_k, sampler="tpe",
                         n_startup_trials=n_startup_trials, sampler_options=sampler_options)


@register_strategy("gp")
class GPStrategy(OptunaStrategy):
    """Optuna's Gaussian-process sampler (`GPSampler`, log expected improvement)."""

    def __init__(self, space: SearchSpace, seed: int = 0, top_k: int = 20, n_startup_trials: int = 10,
                 sampler_options: dict | None = None):
        super().__init__(space, seed=seed, top_k=top_k, sampler="gp",
                         n_startup_trials=n_startup_trials, sampler_options=sampler_options)
