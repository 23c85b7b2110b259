"""OneShot (ENAS): rewards from the shared supernet weights on validation batches."""

from __future__ import annotations

from typing import Callable, Sequence

from enas.arch import Architecture
from enas.evaluators.base import Evaluator
from enas.training import eval_mode


class OneShot(Evaluator):
    """Score each architecture with the shared weights on the next validation batches.

    The batches come from an endless, deterministic validation stream whose position is saved
    with the checkpoint. Options:
        batches_per_reward  validation batches averaged into one reward (more: less variance)
        fresh_state         recurrent tasks: start every architecture from a fresh state, as the
                            official ENAS code does (src/ptb/ptb_enas_child.py builds the valid
                            graph from zero states); False carries the state from architecture
                            to architecture (the earlier behaviour of this project)
        burn_in_batches     with fresh_state: batches run before scoring, unscored, to warm the
                            state up
        shared_batches      score every architecture of one `evaluate` call on the same batches
                            (common random numbers: the differences between their rewards are
                            differences between architectures, not between validation batches; with
                            the controller's `baseline: batch_mean` the batch's difficulty cancels).
                            False (official): each architecture takes the next batches of the stream
    """

    name = "one_shot"

    def __init__(self, task, supernet, batches_per_reward: int = 1, fresh_state: bool = True,
                 burn_in_batches: int = 0, shared_batches: bool = False):
        if batches_per_reward < 1 or burn_in_batches < 0:
            raise ValueError(f"evaluator one_shot: needs batches_per_reward >= 1 and burn_in_batches >= 0 "
                             f"(got {batches_per_reward}, {burn_in_batches})")
        self.task = task
        self.supernet = supernet
        self.batches_per_reward = batches_per_reward
        self.fresh_state = fresh_state
        self.burn_in_batches = burn_in_batches
        self.shared_batches = shared_batches
        self.position = 0           # how many validation batches the stream has handed out
        self.state = None           # recurrent state carried along the stream (fresh_state False)
        self._stream = None

    def _next_batch(self):
        if self._stream is None:
            self._stream = self.task.valid_batches(self.position)
        self.position += 1
        return next(self._stream)

    def evaluate(self, archs: Sequence[Architecture]) -> list[float]:
        """One reward per architecture (supernet in eval mode: no dropout)."""
        with eval_mode(self.supernet):
            if not self.shared_batches:
                return [self._reward(arch, self._next_batch) for arch in archs]
            # the call's batches, drawn from the stream once and replayed for each architecture
            needed = self.batches_per_reward + (self.burn_in_batches if self.fresh_state else 0)
            batches = [self._next_batch() for _ in range(needed)]
            return [self._reward(arch, iter(batches).__next__) for arch in archs]

    def _reward(self, arch: Architecture, next_batch: Callable[[], object]) -> float:
        """The mean reward of `arch` over `batches_per_reward` batches taken from `next_batch()`."""
        if self.fresh_state or self.state is None:
            state = self.task.init_state(self.supernet, "valid")
        else:
            state = self.state
        if self.fresh_state:
            for _ in range(self.burn_in_batches):
                _, state = self.task.reward(self.supernet, next_batch(), state, arch)
        total = 0.0
        for _ in range(self.batches_per_reward):
            reward, state = self.task.reward(self.supernet, next_batch(), state, arch)
            total += reward
        if not self.fresh_state:
            self.state = state
        return total / self.batches_per_reward

    def state_dict(self) -> dict:
        return {"position": self.position, "state": self.state}

    def load_state_dict(self, state: dict) -> None:
        self.position = state["position"]
        self.state = state["state"]
        self._stream = None
