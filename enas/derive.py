"""Deriving the final architecture: rank candidates on one fixed validation subset.

Every candidate is scored with the shared weights on the same first `valid_batches` batches of
the validation split, in a fixed order, from a fresh recurrent state, with the model in eval
mode: the ranking is repeatable (ENAS scored on a single random minibatch, which is not).
"""

from __future__ import annotations

import logging
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
    scored.sort(key=lambda t: (-t[2], t[3]))
    return [(a, m, s) for a, m, s, _ in scored]


def format_table(space, ranked, metric: str, top: int) -> str:
    """A ranked table of the best `top` candidates for the console."""
    lines = [f"{'rank':>4}  {'score':>8}  {metric:>9}  architecture"]
    for rank, (arch, metrics, score) in enumerate(ranked[:top], start=1):
        genotype = space.describe(arch)
        if len(genotype) > 100:
            genotype = genotype[:97] + "..."
        lines.append(f"{rank:>4}  {score:8.4f}  {metrics[metric]:9.4g}  {genotype}")
    return "\n".join(lines)
