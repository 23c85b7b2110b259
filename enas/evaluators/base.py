"""The Evaluator interface: the theta phase's source of rewards."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Sequence

from enas.arch import Architecture


class Evaluator(ABC):
    """Gives rewards to architectures; the search loop calls it once per theta phase.

    Synchronous evaluators answer `evaluate(archs)`; asynchronous ones (`asynchronous` True)
    drive `run_async`, proposing and telling one architecture at a time. `state_dict` holds
    what a resumed search needs; `close` frees workers.
    """

    name: str = ""
    #: True when the loop should call `run_async` instead of `evaluate`.
    asynchronous: bool = False

    def begin_phase(self, epoch: int) -> None:
        """A theta phase of epoch `epoch` starts."""

    @abstractmethod
    def evaluate(self, archs: Sequence[Architecture]) -> list[float]:
        """One reward per architecture, in order."""

    def run_async(self, propose: Callable[[int], list], tell: Callable, budget: int) -> None:
        """Asynchronous evaluation of `budget` architectures (only where `asynchronous`)."""
        raise NotImplementedError(f"evaluator {self.name!r} is synchronous: call evaluate()")

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned."""

    def close(self) -> None:
        """Release workers or other resources (nothing by default)."""
