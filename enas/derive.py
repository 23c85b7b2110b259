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
    return _finite_first(scored, lambda entry: -entry[2])


def lowest_loss_first(ranked: Sequence[tuple[Architecture, dict, float]]) -> list[tuple[Architecture, dict, float]]:
    """The same (architecture, metrics, score) ordered by validation loss, lowest first (derive.rank_by=loss);
    ties keep their order, a candidate without a finite loss comes last."""
    return _finite_first(ranked, lambda entry: entry[1].get("loss", math.nan))


def _finite_first(entries: Sequence, key) -> list:
    """`entries` in ascending order of key(entry), nan keys last, ties in their order."""
    keys = [key(entry) for entry in entries]
    order = sorted(range(len(entries)), key=lambda i: (math.isnan(keys[i]), 0.0 if math.isnan(keys[i]) else keys[i], i))
    return [entries[i] for i in order]


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
