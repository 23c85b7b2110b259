"""Ranking helpers: Kendall's tau, ranking by recorded rewards, and the one-shot ranking check.

The ranking check asks whether the shared weights rank architectures as training them does:
K architectures drawn uniformly are scored with the one-shot supernet (on the fixed validation
subset that `enas-derive` uses) and trained standalone with low-fidelity knobs; Kendall's tau
between the two score lists is 1 for the same order, -1 for the reverse, about 0 for none.
"""

from __future__ import annotations

import logging
import math
from typing import Sequence

from enas.arch import Architecture

log = logging.getLogger(__name__)


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b between two paired score lists (ties counted as in tau-b).

    tau_b = (concordant - discordant) / sqrt((n0 - ties_a) * (n0 - ties_b)), n0 = n(n-1)/2;
    nan when either list is constant (no ranking to compare) or has fewer than 2 items.
    O(n^2): the lists here hold tens of architectures.
    """
    if len(a) != len(b):
        raise ValueError(f"kendall_tau: lists of different lengths ({len(a)} and {len(b)})")
    n = len(a)
    concordant_minus_discordant, ties_a, ties_b, pairs = 0, 0, 0, n * (n - 1) // 2
    for i in range(n):
        for j in range(i + 1, n):
            sa, sb = _sign(a[i] - a[j]), _sign(b[i] - b[j])
            ties_a += sa == 0
            ties_b += sb == 0
            concordant_minus_discordant += sa * sb
    denominator = math.sqrt((pairs - ties_a) * (pairs - ties_b))
    return concordant_minus_discordant / denominator if denominator else math.nan


def rank_by_recorded_rewards(strategy, k: int, task=None) -> list[tuple[Architecture, dict, float]]:
    """The strategy's best-seen architectures by their recorded rewards, best first.

    The same (architecture, metrics, score) triples as `enas.derive.rank_candidates`, for searches
    without a supernet (standalone evaluation): score = recorded reward; metrics hold "reward"
    and, when `task` is given, its metric derived from the reward.
    """
    ranked = []
    for arch, reward in strategy.best(k):
        metrics = {"reward": reward}
        if task is not None:
            metrics[task.metric] = task.metric_of_score(reward)
        ranked.append((arch, metrics, reward))
    return ranked


def sample_architectures(space, num: int, seed: int) -> list[Architecture]:
    """`num` distinct architectures drawn uniformly with a seeded generator (duplicates redrawn)."""
    import numpy as np
    from enas.strategies.base import uniform_architecture
    generator = np.random.default_rng(seed)
    archs, seen = [], set()
    for _ in range(num * 50):
        arch = uniform_architecture(space.name, space.decisions(), generator)
        if arch.key() not in seen:
            seen.add(arch.key())
            archs.append(arch)
        if len(archs) == num:
            break
    return archs


def rank_check(task, space, supernet, archs: Sequence[Architecture], evaluator, valid_batches: int | None) -> dict:
    """One-shot scores vs standalone rewards of `archs`; returns a plain-dict report."""
    from enas.derive import rank_candidates
    one_shot = rank_candidates(task, supernet, archs, valid_batches)
    by_key = {a.key(): (m, s) for a, m, s in one_shot}
    log.info("rank check: %d architectures scored one-shot; training them standalone ...", len(archs))
    evaluator.begin_phase(0)
    standalone = evaluator.evaluate(list(archs))
    rows = []
    for arch, reward in zip(archs, standalone):
        metrics, score = by_key[arch.key()]
        rows.append({"choices": space.arch_to_dict(arch)["choices"], "genotype": space.describe(arch),
                     "one_shot_score": score, f"one_shot_{task.metric}": metrics[task.metric],
                     "standalone_reward": reward})
    tau = kendall_tau([r["one_shot_score"] for r in rows], [r["standalone_reward"] for r in rows])
    return {"num_archs": len(rows), "kendall_tau": tau, "metric": task.metric, "rows": rows}


def format_rank_table(report: dict, markdown: bool = False) -> str:
    """The rank check as a console table, or as markdown."""
    rows = sorted(report["rows"], key=lambda r: -r["one_shot_score"])
    standalone_order = sorted(range(len(rows)), key=lambda i: -rows[i]["standalone_reward"])
    standalone_rank = {i: r for r, i in enumerate(standalone_order, start=1)}
    header = ["one-shot rank", "one-shot score", "standalone rank", "standalone reward", "architecture"]
    lines = []
    if markdown:
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    else:
        lines.append(f"{'1s rank':>7}  {'1s score':>9}  {'sa rank':>7}  {'sa reward':>9}  architecture")
    for rank, row in enumerate(rows, start=1):
        genotype = row["genotype"] if len(row["genotype"]) <= 90 else row["genotype"][:87] + "..."
        cells = [rank, f"{row['one_shot_score']:.4f}", standalone_rank[rank - 1],
                 f"{row['standalone_reward']:.4f}", genotype]
        if markdown:
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        else:
            lines.append(f"{cells[0]:>7}  {cells[1]:>9}  {cells[2]:>7}  {cells[3]:>9}  {cells[4]}")
    lines.append(("\n" if markdown else "") + f"Kendall's tau (one-shot vs standalone): {report['kendall_tau']:.3f} "
                 f"over {report['num_archs']} architectures")
    return "\n".join(lines)
