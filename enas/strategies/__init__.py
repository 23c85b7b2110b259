"""Search strategies. Importing this package registers every built-in strategy."""

from enas.strategies.base import STRATEGIES, Strategy, build_strategy, register_strategy  # noqa: F401

# Built-in strategies register themselves on import.
from enas.strategies import reinforce, random, grid, evolution, optuna  # noqa: F401,E402
