"""Standalone (NAS-RL) and Inherit evaluators: children trained on an engine, rewarded by validation.

`Standalone` trains every child from scratch with low-fidelity knobs (epochs or steps, a
fraction of the image training data, a width multiplier) and rewards its validation score.
`Inherit` does the same, but each child starts from the supernet's weights for its subgraph.
Its parts: job building (here), the journal of finished children (journal.py) and the engine
driver with retries (driver.py). Children run in sync batches, or asynchronously (NAS-RL's
workers: each result is told as soon as it arrives).

A child is a plain, picklable job: the run's `recipe` (built and read only by the build layer),
the architecture's choices, its seed and its training overrides. `child_fn(job)` (normally
`enas.build.run_child`) runs in a worker and returns {"reward", "metrics", "seconds", "pid"}.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from typing import Callable, Sequence

from enas.arch import Architecture
from enas.evaluators.base import Evaluator
from enas.evaluators.driver import EngineDriver, Work
from enas.evaluators.journal import Journal
from enas.spaces.few_shot import supernet_part

log = logging.getLogger(__name__)


def _fingerprint(values: dict) -> str:
    """A short stable hash of plain values."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def child_seed(seed: int, phase: int, index: int) -> int:
    """A deterministic seed for the child at (phase, index) of a run seeded `seed`."""
    digest = hashlib.sha256(f"{seed}/{phase}/{index}".encode()).hexdigest()
    return int(digest[:8], 16)


class Standalone(Evaluator):
    """Train every child from scratch with low-fidelity knobs; reward = its validation score.

    Arguments: the task and space; `child_fn` and `recipe` (see module docstring); `sizes`
    (the children's builder sizes); `run_dir` (where the journal lives; None: no journal).
    Options (the `evaluator.options` config section):
        epochs, steps_per_epoch    training length of a child (steps_per_epoch None: a full pass)
        train_limit                keep this many training images (image data only)
        width_multiplier           passed as a builder size when the space accepts it
        lr, batch_size             override the recipe's trainer (None: the recipe's)
        valid_batches              validation batches of the reward (None: the recipe's)
        workers, engine            parallel children on "process" | "ray" | "inline"
        mode                       "sync" (whole batches) | "async" (NAS-RL workers)
        retries, failure_reward    a failed child is retried, then rewarded `failure_reward`
        seed                       children's seeds derive from (seed, phase, index)
        recalibrate_bn             > 0: BN running statistics re-estimated on this many training
                                   batches before the reward (after a few steps they lag the weights)
        journal                    file name under run_dir for finished evaluations (None: none)
    """

    name = "standalone"
    inherits = False

    def __init__(self, task, space, child_fn: Callable[[dict], dict], recipe: dict, sizes: dict,
                 run_dir: str | None = None, supernet=None, epochs: int = 1, steps_per_epoch: int | None = None,
                 train_limit: int | None = None, width_multiplier: float | None = None, lr: float | None = None,
                 batch_size: int | None = None, valid_batches: int | None = None, workers: int = 1,
                 engine: str = "process", mode: str = "sync", retries: int = 1, failure_reward: float = 0.0,
                 seed: int = 0, journal: str | None = "evaluations.jsonl", recalibrate_bn: int = 0):
        from enas.spaces.hyperparams import accepts_size
        if mode not in ("sync", "async"):
            raise ValueError(f"evaluator {self.name}: mode must be 'sync' or 'async', got {mode!r}")
        if epochs < 1:
            raise ValueError(f"evaluator {self.name}: needs epochs >= 1, got {epochs}")
        if recalibrate_bn < 0:
            raise ValueError(f"evaluator {self.name}: recalibrate_bn is a number of training batches >= 0, "
                             f"got {recalibrate_bn}")
        if train_limit is not None and getattr(task, "kind", None) == "lm":
            raise ValueError(f"evaluator {self.name}: train_limit applies to image data; "
                             f"shorten language-model children with steps_per_epoch")
        try:
            self.driver = EngineDriver(child_fn, engine, workers, retries)
        except ValueError as e:
            raise ValueError(f"evaluator {self.name}: {e}") from None
        self.task, self.space, self.supernet, self.recipe = task, space, supernet, recipe
        self.mode, self.workers = mode, workers
        self.failure_reward = float(failure_reward)
        self.seed = int(seed)
        self.training = {"epochs": int(epochs), "steps_per_epoch": steps_per_epoch, "lr": lr,
                         "batch_size": batch_size, "valid_batches": valid_batches}
        if recalibrate_bn:              # only when on: the journals of runs without it stay valid
            self.training["recalibrate_bn"] = int(recalibrate_bn)
        self.train_limit = None if train_limit is None else int(train_limit)
        self.sizes = dict(sizes)
        if width_multiplier is not None:
            if self.inherits:
                raise ValueError("evaluator inherit: width_multiplier would change the shapes of the "
                                 "inherited weights; use evaluator=standalone for narrow children")
            if accepts_size(space, "width_multiplier"):
                self.sizes["width_multiplier"] = float(width_multiplier)
            else:
                log.warning("space %r takes no width_multiplier; option ignored", space.name)
        # Journal entries count only for the same knobs (a resume with other knobs re-runs children).
        fidelity = _fingerprint({**self.training, "train_limit": self.train_limit, "sizes": self.sizes,
                                 "seed": self.seed, "inherit": self.inherits})
        self.journal = Journal(os.path.join(run_dir, journal) if run_dir and journal else None, fidelity)
        self.phase = 0
        self.index = 0                  # architectures handed out in the current phase
        self.evaluated = 0              # children actually trained (journal hits excluded)
        self.reused = 0                 # results taken from the journal
        self.failed = 0                 # children that got failure_reward

    @property
    def asynchronous(self) -> bool:
        return self.mode == "async"

    def close(self) -> None:
        """Stop the worker processes."""
        self.driver.close()

    # --- jobs ------------------------------------------------------------------------------------------
    def _initial_state(self, arch: Architecture) -> dict | None:
        """Standalone children start from a fresh initialisation (Inherit overrides this)."""
        return None

    def make_job(self, arch: Architecture, index: int) -> dict:
        """Everything a worker needs for child `index` of this phase, as plain picklable values."""
        from enas.spaces.hyperparams import training_hyperparameters
        hp = training_hyperparameters(self.space, arch)   # lr, epochs, ... chosen as decisions
        training = {key: hp.get(key, value) for key, value in self.training.items()}
        if "weight_decay" in hp:
            training["weight_decay"] = float(hp["weight_decay"])
        return {"recipe": self.recipe, "space": self.space.name, "structure": self.space.structure(),
                "sizes": self.sizes, "choices": arch.plain_choices(), "training": training,
                "train_limit": self.train_limit, "phase": self.phase, "index": index,
                "seed": child_seed(self.seed, self.phase, index), "init_state": self._initial_state(arch)}

    def _new_work(self, arch: Architecture, slot: int | None) -> Work:
        arch = self.space.validate(arch)
        text = self.space.describe(arch)
        label = f"#{self.index} [{text[:77] + '...' if len(text) > 80 else text}]"
        work = Work(arch, self.index, slot, label)
        self.index += 1
        return work

    # --- driving -----------------------------------------------------------------------------------------
    def _source(self, next_arch: Callable[[], tuple[Architecture, int | None] | None], finish: Callable):
        """Work for the driver: the next architecture whose reward the journal does not hold."""
        def source() -> Work | None:
            while True:
                item = next_arch()
                if item is None:
                    return None
                work = self._new_work(*item)
                hit = self.journal.result(self.phase, work.index, work.arch)
                if hit is None:
                    work.job = self.make_job(work.arch, work.index)
                    return work
                self.reused += 1
                reward, work.metrics = hit
                finish(work, reward)
        return source

    def _settler(self, finish: Callable):
        """The driver's settle callback: journal the outcome, then hand the reward on."""
        def settle(work: Work, out: dict | None, error: str | None) -> None:
            if out is None:
                log.warning("evaluation %s failed (%s) after %d attempts; reward %s", work.label, error,
                            work.failures, self.failure_reward)
                self.failed += 1
                self.journal.record(self.phase, work.index, work.arch, self.failure_reward, None, work.failures,
                                    error=error)
                finish(work, self.failure_reward)
                return
            reward = out["reward"]
            if not math.isfinite(reward):
                error = f"non-finite reward {reward}"
                log.warning("evaluation %s: %s; reward %s", work.label, error, self.failure_reward)
                reward = self.failure_reward
                self.failed += 1
            self.evaluated += 1
            work.metrics = out.get("metrics")
            log.info(f"child {work.label}: reward {reward:.4f} ({out['seconds']:.0f}s, {self.evaluated} trained "
                     f"in this run)")
            self.journal.record(self.phase, work.index, work.arch, reward, out["seconds"], work.failures + 1,
                                out.get("metrics"), error)
            finish(work, reward)
        return settle

    # --- evaluator interface ------------------------------------------------------------------------------
    def begin_phase(self, epoch: int) -> None:
        """A theta phase starts: journal keys restart at index 0 of phase `epoch`."""
        self.phase, self.index = int(epoch), 0

    def evaluate(self, archs: Sequence[Architecture]) -> list[float]:
        """Rewards of a whole batch, in order (children run in parallel)."""
        return [reward for reward, _ in self.scored(archs)]

    def scored(self, archs: Sequence[Architecture]) -> list[tuple[float, dict | None]]:
        """(reward, validation metrics) of a whole batch, in order (metrics None where the child failed)."""
        results: list[tuple[float, dict | None] | None] = [None] * len(archs)
        queue = list(enumerate(archs))

        def next_arch():
            if not queue:
                return None
            slot, arch = queue.pop(0)
            return arch, slot

        def finish(work, reward):
            results[work.slot] = (reward, work.metrics)

        self.driver.drive(self._source(next_arch, finish), self._settler(finish), max(1, len(archs)))
        return results

    def run_async(self, propose: Callable[[int], list], tell: Callable, budget: int) -> None:
        """NAS-RL's asynchronous workers: `workers` children in flight; each result is told at once
        and a new architecture proposed, until `budget` architectures are done."""
        proposed = 0

        def next_arch():
            nonlocal proposed
            if proposed >= budget:
                return None
            proposed += 1
            return propose(1)[0], None

        def finish(work, reward):
            tell([work.arch], [reward])

        self.driver.drive(self._source(next_arch, finish), self._settler(finish), self.workers)

    def state_dict(self) -> dict:
        return {"phase": self.phase, "index": self.index, "evaluated": self.evaluated,
                "reused": self.reused, "failed": self.failed}

    def load_state_dict(self, state: dict) -> None:
        self.phase, self.index = state["phase"], state["index"]
        self.evaluated, self.reused, self.failed = state["evaluated"], state["reused"], state["failed"]


class Inherit(Standalone):
    """Like Standalone, but each child starts from the supernet's weights for its subgraph."""

    name = "inherit"
    inherits = True

    def __init__(self, task, space, child_fn: Callable[[dict], dict], recipe: dict, sizes: dict,
                 run_dir: str | None = None, supernet=None, **options):
        if supernet is None:
            raise ValueError(f"evaluator inherit needs a supernet; space {space.name!r} has none "
                             f"(use evaluator=standalone)")
        super().__init__(task, space, child_fn, recipe, sizes, run_dir, supernet, **options)

    def _initial_state(self, arch: Architecture) -> dict:
        return inherited_state(self.space, self.supernet, arch, self.sizes)


def inherited_state(space, supernet, arch: Architecture, sizes: dict) -> dict:
    """`arch`'s weights copied from the supernet, as a state_dict of plain CPU tensors."""
    network = space.build_network(arch, **sizes)
    space.load_inherited(network, supernet_part(supernet, arch), arch)
    return {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}
