"""Evaluators: how a strategy's architectures get their rewards.

`OneShot` (ENAS): score each architecture with the shared supernet weights on the next
validation batch of an endless, deterministic stream (the recurrent state is carried from
batch to batch, as in ENAS). Its position and state are saved with the checkpoint.
"""

from __future__ import annotations

from typing import Sequence

from enas.arch import Architecture


class OneShot:
    """Rewards from the shared weights: one validation batch per architecture."""

    name = "one_shot"

    def __init__(self, task, supernet):
        self.task = task
        self.supernet = supernet
        self.position = 0           # how many validation batches the stream has handed out
        self.state = None           # recurrent state carried along the stream
        self._stream = None

    def begin_phase(self, epoch: int) -> None:
        """Called before each theta phase (nothing to prepare for shared weights)."""

    def _next_batch(self):
        if self._stream is None:
            self._stream = self.task.valid_batches(self.position)
        self.position += 1
        return next(self._stream)

    def evaluate(self, archs: Sequence[Architecture]) -> list[float]:
        """One reward per architecture (supernet in eval mode: no dropout)."""
        was_training = self.supernet.training
        self.supernet.eval()
        if self.state is None:
            self.state = self.task.init_state(self.supernet, "valid")
        rewards = []
        for arch in archs:
            reward, self.state = self.task.reward(self.supernet, self._next_batch(), self.state, arch)
            rewards.append(reward)
        self.supernet.train(was_training)
        return rewards

    def state_dict(self) -> dict:
        return {"position": self.position, "state": self.state}

    def load_state_dict(self, state: dict) -> None:
        self.position = state["position"]
        self.state = state["state"]
        self._stream = None


def build_evaluator(name: str, task, space, supernet, context: dict | None = None, **options):
    """An evaluator by name (`evaluator=` config group)."""
    if name == "one_shot":
        if supernet is None:
            raise ValueError(f"evaluator one_shot needs a supernet; space {space.name!r} has none "
                             f"(use evaluator=standalone)")
        return OneShot(task, supernet, **options)
    raise ValueError(f"unknown evaluator {name!r}; known: one_shot")
