"""Ranking statistics, the one-shot ranking check, and ranking by recorded rewards.

The ranking check asks whether the shared weights rank architectures as training them does:
K architectures drawn uniformly are scored with the one-shot supernet on a fixed validation
subset and trained from scratch (the ground truth) once per training seed. Three agreement
figures compare two score lists, each with a bootstrap confidence interval:

- Kendall's tau-b (scipy): 1 for the same order, -1 for the reverse, about 0 for none;
- Spearman's rho (scipy): the correlation of the ranks;
- top-k overlap: the share of the best `top_fraction` (20%) of one list that is also among the
  best of the other (a random order gets about `top_fraction`).

The tau between two trainings of the same architectures with different seeds is the *noise
ceiling*: no scorer can agree with a noisy ground truth better than the ground truth agrees with
itself. Below `NOISE_FLOOR` the ground truth cannot judge the supernet, and the report says so.
"""

from __future__ import annotations

import math
import warnings
from itertools import combinations
from typing import Callable, Sequence

import numpy as np

from enas.arch import Architecture

#: The noise-ceiling tau below which a ground truth is too noisy to judge a ranking.
NOISE_FLOOR = 0.6


# --- agreement statistics -------------------------------------------------------------------------
def _paired(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    if len(a) != len(b):
        raise ValueError(f"paired scores: lists of different lengths ({len(a)} and {len(b)})")
    return np.asarray(a, dtype=float), np.asarray(b, dtype=float)


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b of two paired score lists (scipy); nan when a list is constant or shorter than 2."""
    a, b = _paired(a, b)
    if len(a) < 2:
        return math.nan
    from scipy.stats import kendalltau
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # constant input: scipy warns and returns nan
        return float(kendalltau(a, b).statistic)


def spearman_rho(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation of two paired score lists (scipy); nan when a list is constant."""
    a, b = _paired(a, b)
    if len(a) < 2:
        return math.nan
    from scipy.stats import spearmanr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(a, b).statistic)


def top_k(num: int, fraction: float) -> int:
    """How many items "the best `fraction`" of `num` items is (at least one)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"top fraction must be in (0, 1], got {fraction}")
    return max(1, round(fraction * num))


def top_k_overlap(a: Sequence[float], b: Sequence[float], fraction: float = 0.2) -> float:
    """The share of the best `fraction` of items by `a` that are also among the best by `b`.

    Higher scores are better; ties are broken by position (a stable sort), so the result is
    repeatable. 1 for the same top set; a random order gets about `fraction` on average.
    """
    a, b = _paired(a, b)
    if len(a) == 0:
        return math.nan
    k = top_k(len(a), fraction)
    best_a = set(np.argsort(-a, kind="stable")[:k].tolist())
    best_b = set(np.argsort(-b, kind="stable")[:k].tolist())
    return len(best_a & best_b) / k


def bootstrap_ci(a: Sequence[float], b: Sequence[float], statistic: Callable, resamples: int = 1000,
                 level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """A percentile bootstrap interval of `statistic(a, b)`, resampling the pairs with replacement.

    Resampling the architectures (not the scores separately) keeps each pair together: the
    interval says how much the figure depends on which architectures were drawn. Resamples
    where the statistic is undefined (a constant list: nan) are left out. Seeded: repeatable.
    """
    a, b = _paired(a, b)
    if len(a) < 2 or resamples < 1:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    values = np.array([statistic(a[idx], b[idx]) for idx in rng.integers(0, len(a), size=(resamples, len(a)))])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def agreement(a: Sequence[float], b: Sequence[float], top_fraction: float = 0.2, resamples: int = 1000,
              level: float = 0.95, seed: int = 0) -> dict:
    """Kendall's tau, Spearman's rho and the top-k overlap of two score lists, each with its interval.

    Returns {"n", "kendall_tau", "kendall_tau_ci", "spearman_rho", "spearman_rho_ci",
    "top_k_overlap", "top_k_overlap_ci", "top_k"} (intervals as [low, high]).
    """
    def overlap(x, y):
        return top_k_overlap(x, y, top_fraction)

    result = {"n": len(a), "top_k": top_k(len(a), top_fraction) if len(a) else 0}
    for name, fn in (("kendall_tau", kendall_tau), ("spearman_rho", spearman_rho), ("top_k_overlap", overlap)):
        result[name] = fn(a, b)
        result[f"{name}_ci"] = list(bootstrap_ci(a, b, fn, resamples, level, seed))
    return result


def noise_verdict(noise_tau: float | None, one_shot_tau: float | None = None, floor: float = NOISE_FLOOR,
                  judged: str = "the supernet", label: str = "one-shot", splits: int = 1) -> str:
    """One sentence on whether the ground truth can judge `judged`, given its noise-ceiling tau;
    `label` names the estimator whose tau is read against it; `splits`: how many splits of the
    trainings the ceiling is the mean of."""
    if noise_tau is None or not math.isfinite(noise_tau):
        return ("The noise ceiling was not measured (fewer than two training seeds, or a constant result): "
                "the ground truth's own noise is unknown, so no tau against it is a verdict.")
    over = f", the mean over {splits} splits of the trainings" if splits > 1 else ""
    if noise_tau < floor:
        return (f"The ground truth cannot judge {judged}: two trainings of the same architectures agree "
                f"only at Kendall's tau {noise_tau:.3f}{over} (< {floor}). Train longer or on more data (the "
                f"ground-truth recipe) before reading the {label} tau.")
    text = f"The ground truth is consistent enough to judge (noise-ceiling tau {noise_tau:.3f}{over} >= {floor})"
    if one_shot_tau is not None and math.isfinite(one_shot_tau):
        text += f"; the {label} tau {one_shot_tau:.3f} is {one_shot_tau / noise_tau:.0%} of the ceiling"
    return text + "."


# --- rewards, samples -------------------------------------------------------------------------------
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


def oriented(values: Sequence[float], higher_is_better: bool) -> list[float]:
    """Scores where higher is better (perplexities negated): rank statistics need one direction."""
    return [float(v) if higher_is_better else -float(v) for v in values]


# --- one-shot scoring -----------------------------------------------------------------------------
def one_shot_batches(task, valid_images: int | None, valid_batches: int | None = None) -> int | None:
    """Validation batches for one-shot scores: `valid_batches` if given; a language model's whole
    split; else enough full batches for `valid_images` images (None: the whole split).

    Only full batches when fewer than all are used: the supernets normalise with batch
    statistics, which a last small batch would make noisy.
    """
    if valid_batches is not None:
        return int(valid_batches)
    if getattr(task, "kind", None) == "lm" or valid_images is None:
        return None
    batch = task.splits["valid"].batch_size
    needed = -(-int(valid_images) // batch)
    return None if needed >= task.num_batches("valid") else needed


def bn_layers(model) -> tuple[int, int]:
    """(BatchNorm layers, those that keep running statistics) of `model`."""
    from torch import nn
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    return len(norms), sum(1 for m in norms if m.track_running_stats)


def bn_mode(model, requested: str = "auto") -> str:
    """How one-shot scoring treats BatchNorm: "batch" or "recalibrate" ("none" without BN).

    The built-in supernets keep no running statistics (one shared set would mix every
    architecture's activations), so in eval mode their BN normalises with each validation
    batch's statistics: "batch", nothing to do. A supernet whose BN keeps running statistics
    gets them re-estimated for each architecture on training batches first ("recalibrate").
    """
    if requested not in ("auto", "batch", "recalibrate"):
        raise ValueError(f"bn mode must be auto, batch or recalibrate, got {requested!r}")
    total, running = bn_layers(model)
    if total == 0:
        return "none"
    if requested == "auto":
        return "recalibrate" if running else "batch"
    if requested == "batch" and running:
        raise ValueError(f"bn=batch: {running} of {total} BatchNorm layers of the supernet keep running statistics, "
                         f"which eval mode would use; choose bn=recalibrate (or auto)")
    if requested == "recalibrate" and not running:
        # re-estimating statistics nobody keeps would cost bn_batches passes per architecture and
        # leave every score as bn=batch gives it, under a report that says "recalibrate"
        raise ValueError(f"bn=recalibrate: none of the supernet's {total} BatchNorm layers keeps running statistics "
                         f"(each normalises with its validation batch's own), so there is nothing to re-estimate; "
                         f"choose bn=batch (or auto)")
    return requested


def one_shot_scores(task, supernet, archs: Sequence[Architecture], valid_batches: int | None,
                    bn: str = "batch", bn_batches: int = 20) -> list[tuple[float, dict]]:
    """(score, metrics) of each architecture with the shared weights, in the order given.

    Every architecture sees the same first `valid_batches` validation batches, unaugmented, in
    eval mode (no dropout, drop path or aux head), from a fresh recurrent state.
    """
    from enas.derive import rank_candidates
    from enas.training import recalibrate_bn
    if bn != "recalibrate":
        ranked = rank_candidates(task, supernet, archs, valid_batches)
        by_key = {a.key(): (s, m) for a, m, s in ranked}
        return [by_key[a.key()] for a in archs]
    scored = []
    for arch in archs:
        recalibrate_bn(supernet, task, arch, bn_batches)
        (_, metrics, score), = rank_candidates(task, supernet, [arch], valid_batches)
        scored.append((score, metrics))
    return scored


# --- the rank-check report ------------------------------------------------------------------------
def measurements(runs: Sequence[Sequence[float]], average: int = 1) -> tuple[list[list[float]], list[str]]:
    """Group the runs (one list per training seed) into measurements: the mean of each `average`
    consecutive runs. Returns (measurements, their names: "run 2" or "mean of runs 3-4").

    Averaging k trainings is the usual remedy for a noisy ground truth; two measurements (2k
    trainings) are then needed to measure its noise ceiling.
    """
    if average < 1 or len(runs) % average:
        raise ValueError(f"average={average}: the {len(runs)} training seeds must split into groups of {average}")
    groups = [runs[g:g + average] for g in range(0, len(runs), average)]
    names = [f"run {g + 1}" if average == 1 else f"mean of runs {g + 1}-{g + average}"
             for g in range(0, len(runs), average)]
    return [list(np.mean(group, axis=0)) for group in groups], names


def split_ceilings(runs: Sequence[Sequence[float]], average: int = 1) -> dict | None:
    """Kendall tau between the means of every two disjoint groups of `average` trainings.

    The noise ceiling pairs the measurements of consecutive seeds; with few architectures that
    one split is itself a noisy sample (a 12-architecture pool: 0.49 on seeds 0-2 vs 3-5, 0.57
    over all 10 splits). runs: the metric [training seed][architecture]; only architectures with
    every training finite count. Returns {"mean", "min", "max", "splits"}, or None with fewer than
    2 * average trainings.
    """
    if average < 1 or len(runs) < 2 * average:
        return None
    keep = [i for i in range(len(runs[0])) if all(math.isfinite(r[i]) for r in runs)]
    means = {group: np.mean([[runs[s][i] for i in keep] for s in group], axis=0)
             for group in combinations(range(len(runs)), average)}
    taus = [kendall_tau(means[a], means[b]) for a, b in combinations(means, 2) if not set(a) & set(b)]
    taus = [t for t in taus if math.isfinite(t)]
    if not taus:
        return None
    return {"mean": float(np.mean(taus)), "min": float(min(taus)), "max": float(max(taus)), "splits": len(taus)}


def judged_ceiling(noise_tau: float | None, splits: dict | None) -> tuple[float | None, int]:
    """(ceiling, splits it is the mean of): the best estimate of the noise ceiling, the mean over
    every split of the trainings into two measurements when there are several (one split of 12
    architectures moves by +-0.1 with the seeds it happens to pair), else the measurements' tau."""
    if splits and splits["splits"] > 1:
        return splits["mean"], splits["splits"]
    return noise_tau, 1


def ceiling_verdict(noise_tau: float | None, splits: dict | None, one_shot_tau: float | None = None,
                    floor: float = NOISE_FLOOR, **names) -> str:
    """`noise_verdict` on `judged_ceiling`."""
    ceiling, count = judged_ceiling(noise_tau, splits)
    return noise_verdict(ceiling, one_shot_tau, floor, splits=count, **names)


def format_split_ceilings(splits: dict | None) -> str:
    """The splits' spread as a clause for the ceiling's line (mean, min ... max, how many), or ""."""
    if not splits or splits["splits"] < 2:
        return ""
    return (f" (every split of the trainings into two measurements: mean {splits['mean']:.3f}, "
            f"{splits['min']:.3f} ... {splits['max']:.3f}, {splits['splits']} splits)")


def rank_report(one_shot: Sequence[float], runs: Sequence[Sequence[float]], higher_is_better: bool = True,
                top_fraction: float = 0.2, resamples: int = 1000, level: float = 0.95, seed: int = 0,
                floor: float = NOISE_FLOOR, average: int = 1, label: str = "one-shot") -> dict:
    """Agreement figures of a rank check (`label`: the estimator's name in the verdict).

    one_shot: the estimator's score per architecture (higher is better; nan: its estimate failed);
    runs: the ground-truth metric per training seed, per architecture (nan for a failed training);
    an architecture with a nan on either side is left out of every figure; average: trainings
    averaged into one measurement. Returns {"pairs": {name: agreement}, "noise_ceiling_tau",
    "noise_ceiling_splits", "one_shot_tau", "verdict", "archs_used"}. The noise ceiling is the mean
    tau between measurements (its spread over other splits of the seeds: `split_ceilings`);
    "one_shot_tau" is the mean over measurements of tau(estimator, measurement): one measurement
    on each side, as in the ceiling.
    """
    runs = [oriented(r, higher_is_better) for r in runs]
    keep = [i for i in range(len(one_shot))
            if math.isfinite(one_shot[i]) and all(math.isfinite(r[i]) for r in runs)]
    shot = [float(one_shot[i]) for i in keep]
    measured, names = measurements([[r[i] for i in keep] for r in runs], average)
    options = {"top_fraction": top_fraction, "resamples": resamples, "level": level, "seed": seed}
    pairs, ceiling = {}, []
    for i, j in combinations(range(len(measured)), 2):
        ceiling.append(f"{names[i]} vs {names[j]}")
        pairs[ceiling[-1]] = agreement(measured[i], measured[j], **options)
    for name, values in zip(names, measured):
        pairs[f"one-shot vs {name}"] = agreement(shot, values, **options)
    if len(runs) > 1:
        pairs["one-shot vs mean of runs"] = agreement(shot, list(np.mean(measured, axis=0)), **options)
    noise_tau = float(np.mean([pairs[name]["kendall_tau"] for name in ceiling])) if ceiling else None
    one_shot_tau = float(np.mean([pairs[f"one-shot vs {name}"]["kendall_tau"] for name in names])) if names else None
    splits = split_ceilings([[r[i] for i in keep] for r in runs], average)
    return {"pairs": pairs, "noise_ceiling_tau": noise_tau, "noise_ceiling_splits": splits,
            "one_shot_tau": one_shot_tau, "average": average, "measurement_names": names,
            "verdict": ceiling_verdict(noise_tau, splits, one_shot_tau, floor, label=label), "archs_used": keep}


def _ci(pair: dict, key: str, digits: int = 3) -> str:
    low, high = pair[f"{key}_ci"]
    value = pair[key]
    if value is None or not math.isfinite(value):
        return "-"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def format_agreement_table(pairs: dict, level: float = 0.95) -> str:
    """The agreement figures of every compared pair as a markdown table."""
    ci = f"{level:.0%} CI"
    lines = [f"| compared | n | Kendall tau [{ci}] | Spearman rho [{ci}] | top-k overlap [{ci}] |",
             "|---|---|---|---|---|"]
    for name, p in pairs.items():
        lines.append(f"| {name} | {p['n']} | {_ci(p, 'kendall_tau')} | {_ci(p, 'spearman_rho')} | "
                     f"{_ci(p, 'top_k_overlap', 2)} (k={p['top_k']}) |")
    return "\n".join(lines)


def ranked_by_loss(report: dict) -> bool:
    """Whether the report ranks by the estimator's validation loss (estimator.rank_by=loss)."""
    return (report.get("estimator") or {}).get("rank_by") == "loss"


def ranking_value(report: dict, row: dict) -> float:
    """What orders a row of the report, higher first: the estimator's score, or its negated validation
    loss when the report ranks by loss (nan where the estimate failed)."""
    return -row.get("one_shot_loss", math.nan) if ranked_by_loss(report) else row["one_shot_score"]


def format_rank_table(report: dict, markdown: bool = False) -> str:
    """Per-architecture rows, best estimate first (a failed estimate last): estimates and ranks on both sides."""
    value = {id(r): ranking_value(report, r) for r in report["rows"]}
    rows = sorted(report["rows"], key=lambda r: (not math.isfinite(value[id(r)]), -value[id(r)]))
    higher = report.get("higher_is_better", True)
    gt = [r["ground_truth_mean"] for r in rows]
    # best trained result first; an architecture whose training failed (nan) comes last
    order = sorted(range(len(rows)), key=lambda i: (not math.isfinite(gt[i]), -gt[i] if higher else gt[i]))
    gt_rank = {i: rank for rank, i in enumerate(order, start=1)}
    metric = report.get("metric", "metric")
    label = report_label(report)
    by_loss = ranked_by_loss(report)
    header = [f"{label} rank", f"{label} {'loss' if by_loss else 'score'}", "trained rank",
              f"trained {metric} (per seed)", "architecture"]
    estimate_name = "1s loss" if by_loss else "1s score"
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] if markdown else [
        f"{'1s rank':>7}  {estimate_name:>9}  {'tr rank':>7}  {'trained ' + metric:>20}  architecture"]
    for rank, row in enumerate(rows, start=1):
        genotype = row["genotype"] if len(row["genotype"]) <= 90 else row["genotype"][:87] + "..."
        values = " / ".join(f"{v:.4f}" for v in row["ground_truth"])
        estimate = row.get("one_shot_loss", math.nan) if by_loss else row["one_shot_score"]
        cells = [rank, f"{estimate:.4f}", gt_rank[rank - 1], values, genotype]
        if markdown:
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        else:
            lines.append(f"{cells[0]:>7}  {cells[1]:>9}  {cells[2]:>7}  {cells[3]:>20}  {cells[4]}")
    return "\n".join(lines)


def _per(report: dict) -> str:
    k = report.get("average", 1)
    return "each one training" if k == 1 else f"each the mean of {k} trainings"


def _seconds(scoring: dict) -> str:
    """The time the scores took, as " (12 s for all)" ("" in reports written before it was measured)."""
    return f" ({scoring['seconds']:.0f} s for all)" if "seconds" in scoring else ""


def report_label(report: dict) -> str:
    """The estimator's short name ("one-shot" in reports written before estimators existed)."""
    return (report.get("estimator") or {}).get("label", "one-shot")


def format_rank_report(report: dict, title: str, image: str = "rank_check.png") -> str:
    """The whole rank check as markdown: verdict, headline figures, agreement table, rows."""
    noise, shot = report["noise_ceiling_tau"], report["one_shot_tau"]
    label = report_label(report)
    fmt = (lambda v: "-" if v is None or not math.isfinite(v) else f"{v:.3f}")
    lines = [f"# {title}", "", f"**{report['verdict']}**", "",
             f"- noise-ceiling tau (between measurements of the ground truth, {_per(report)}): {fmt(noise)}"
             f"{format_split_ceilings(report.get('noise_ceiling_splits'))}",
             f"- {label} tau (mean over measurements of tau(score, measurement)): {fmt(shot)}",
             f"- architectures: {report['num_archs']} drawn, {len(report['archs_used'])} with every score and "
             f"training done",
             f"- scored by: {report['one_shot']['description']}{_seconds(report['one_shot'])}",
             f"- ground truth: {report['ground_truth']['description']}", "",
             format_agreement_table(report["pairs"], report["stats"]["level"]), "",
             f"top-k overlap: share of the best {report['stats']['top_fraction']:.0%} by one side that is also "
             f"among the best by the other (a random order gets about {report['stats']['top_fraction']:.2f}).", "",
             f"![scatter]({image})", "", "## Architectures", "",
             format_rank_table(report, markdown=True)]
    return "\n".join(lines) + "\n"


def rank_check_rows(space, archs: Sequence[Architecture], one_shot: Sequence[tuple[float, dict]],
                    table: Sequence[Sequence[float]], metric: str) -> list[dict]:
    """One row per architecture: its choices, the estimator's score, metric and loss (`one_shot_*`
    whatever the estimator), trained metric per seed and mean."""
    rows = []
    for i, arch in enumerate(archs):
        score, metrics = one_shot[i]
        trained = [float(run[i]) for run in table]
        finite = [v for v in trained if math.isfinite(v)]
        rows.append({"choices": space.arch_to_dict(arch)["choices"], "genotype": space.describe(arch),
                     "one_shot_score": float(score), "ground_truth": trained,
                     "ground_truth_mean": float(np.mean(finite)) if len(finite) == len(trained) else math.nan})
        for key in dict.fromkeys((metric, "loss")):    # the estimator's validation metrics, where it has them
            if key in metrics:
                rows[-1][f"one_shot_{key}"] = float(metrics[key])
    return rows


def rank_check_plot(report: dict):
    """Scatter panels: one-shot score vs trained result; training seed 1 vs seed 2 (the noise ceiling)."""
    from enas.plots import Panel, scatter_panels
    rows, metric, split = report["rows"], report["metric"], report["ground_truth"]["split"]
    pairs = report["pairs"]
    shot_key = "one-shot vs mean of runs" if "one-shot vs mean of runs" in pairs else "one-shot vs run 1"
    label = report_label(report)
    by_loss = ranked_by_loss(report)
    estimates = [r.get("one_shot_loss", math.nan) if by_loss else r["one_shot_score"] for r in rows]
    panels = [Panel(estimates, [r["ground_truth_mean"] for r in rows],
                    f"{label}: validation loss" if by_loss else f"{label} score", f"trained {split} {metric}" +
                    (" (mean of seeds)" if len(report["ground_truth"]["seeds"]) > 1 else ""),
                    f"{label} vs trained", f"tau {pairs[shot_key]['kendall_tau']:.2f}")]
    names, k = report.get("measurement_names", []), report.get("average", 1)
    if len(names) > 1:
        first, second = ([float(np.mean(r["ground_truth"][g * k:(g + 1) * k])) for r in rows] for g in (0, 1))
        panels.append(Panel(first, second, f"{split} {metric}, {names[0]}", f"{split} {metric}, {names[1]}",
                            "noise ceiling: training vs training",
                            f"tau {pairs[f'{names[0]} vs {names[1]}']['kendall_tau']:.2f}", diagonal=True))
    return scatter_panels(panels, f"Rank check: {report['num_archs']} architectures")
