"""Argument checks shared by enas-rank-check and enas-beats-random, and the parsing of
`ground_truth.overrides` (command-line strings -> nested plain values; the run puts them into
the search's stored config with `enas.build.with_changes`).
"""

from __future__ import annotations

from omegaconf import OmegaConf

from enas.build import with_changes
from enas.utils import UserError


def parse_overrides(overrides, where: str) -> dict:
    """Dotted overrides ("trainer.epochs=2") as nested plain values ({"trainer": {"epochs": 2}})."""
    if not overrides:
        return {}
    if not isinstance(overrides, list) or not all(isinstance(o, str) and "=" in o for o in overrides):
        raise UserError(f"{where}={overrides!r}: give a list of key=value overrides, e.g. [trainer.epochs=2]")
    return OmegaConf.to_container(OmegaConf.from_dotlist(overrides), resolve=True)


def with_overrides(config: dict, overrides: list[str], where: str) -> dict:
    """`config` with dotted overrides applied ("trainer.epochs=2"), as a new plain dict."""
    return with_changes(config, parse_overrides(overrides, where))


def check_split(split: str) -> str:
    if split not in ("valid", "test"):
        raise UserError(f"ground_truth.split={split!r}: choose valid or test")
    return split


def check_seeds(seeds, where: str) -> list[int]:
    """A non-empty list of distinct integer training seeds."""
    if (not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds)
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise UserError(f"{where}={seeds!r}: give distinct integer seeds, e.g. [0,1] (two or more measure the "
                        f"noise ceiling)")
    return seeds


def check_average(average, seeds: list[int], where: str) -> int:
    """A positive number of trainings per measurement that divides the seeds into groups."""
    if isinstance(average, bool) or not isinstance(average, int) or average < 1 or len(seeds) % average:
        raise UserError(f"{where}={average}: give a positive integer that divides the {len(seeds)} seeds "
                        f"(2 * {where.split('.')[-1]} seeds measure the noise ceiling)")
    return average


def check_engine(engine: str, workers, where: str) -> None:
    """A known engine and a positive number of workers."""
    from enas.parallel import ENGINES
    if engine not in ENGINES:
        raise UserError(f"{where}engine={engine!r}: choose one of {', '.join(ENGINES)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise UserError(f"{where}workers={workers!r}: give a positive number of workers")
