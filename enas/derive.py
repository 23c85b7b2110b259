"""Deriving the final architecture: rank candidates on one fixed validation subset.

Every candidate is scored with the shared weights on the same first `valid_batches` batches of
the validation split, in a fixed order, from a fresh recurrent state, with the model in eval
mode: the ranking is repeatable (ENAS scored on a single random minibatch, which is not).
"""

from __future__ import annotations

import logging
import math
from typing import Sequence

import torch

from enas.arch import Architecture
from enas.training import eval_mode

log = logging.getLogger(__name__)


@torch.no_grad()
def rank_candidates(task, supernet, candidates: Sequence[Architecture], valid_batches: int | None,
                    progress: bool = False) -> list[tuple[Architecture, dict, float]]:
    """(architecture, metrics, score) for every candidate, best score first (ties: input order)."""
    with eval_mode(supernet):               # no dropout; the caller's mode comes back after
        scored = []
        for i, arch in enumerate(candidates):
            metrics = task.evaluate(supernet, "valid", arch, valid_batches)
            scored.append((arch, metrics, task.score(metrics), i))
            if progress and (i + 1) % 20 == 0:
                log.info("scored %d/%d candidates", i + 1, len(candidates))
    return best_first([(a, m, s) for a, m, s, _ in scored])


def best_first(scored: Sequence[tuple[Architecture, dict, float]]) -> list[tuple[Architecture, dict, float]]:
    """(architecture, metrics, score) sorted best score first; ties keep their order, and a
    candidate that could not be scored (score nan: its training failed) comes last."""
    order = sorted(range(len(scored)), key=lambda i: (math.isnan(scored[i][2]), -_finite(scored[i][2]), i))
    return [scored[i] for i in order]


def _finite(score: float) -> float:
    return 0.0 if math.isnan(score) else score


def lowest_loss_first(ranked: Sequence[tuple[Architecture, dict, float]]) -> list[tuple[Architecture, dict, float]]:
    """The same (architecture, metrics, score) ordered by validation loss, lowest first (derive.rank_by=loss);
    ties keep their order, a candidate without a finite loss comes last."""
    def loss(i: int) -> float:
        value = ranked[i][1].get("loss", math.nan)
        return math.inf if math.isnan(value) else value
    return [ranked[i] for i in sorted(range(len(ranked)), key=lambda i: (loss(i), i))]


def format_table(space, ranked, metric: str, top: int) -> str:
    """A ranked table of the best `top` candidates for the console."""
    lines = [f"{'rank':>4}  {'score':>8}  {metric:>9}  {'loss':>8}  architecture"]
    for rank, (arch, metrics, score) in enumerate(ranked[:top], start=1):
        genotype = space.describe(arch)
        if len(genotype) > 100:
            genotype = genotype[:97] + "..."
        loss = metrics.get("loss", math.nan)
        lines.append(f"{rank:>4}  {score:8.4f}  {metrics[metric]:9.4g}  {loss:8.4f}  {genotype}")
    return "\n".join(lines)
