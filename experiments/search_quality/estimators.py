"""Which estimator ranks the pool best? A table from the rank checks of several supernets.

    python -m experiments.search_quality.estimators /tmp/sq/s4 rank_check_24 inherit78 standalone78 \
        > experiments/search_quality/estimators.md
    python -m experiments.search_quality.estimators /tmp/sqm/est_all rank_check_e6 --consensus

Reads <runs>/<strategy>_s<seed>/<report>.json (enas-rank-check with report=<report>) for each
report named, and prints one row per (report, strategy of the supernet's search): the
estimator, Kendall tau with the ground truth over the supernets (mean ± sd), its share of the
noise ceiling, Spearman rho, the top-20% overlap, the estimator's agreement with itself (the
mean Kendall tau between the scores of two supernets or seeds: an estimator that does not
agree with itself cannot agree with the ground truth), the ground-truth percentile of the
architecture it ranks first (what a derive among these architectures would get) and the
scoring time per architecture; then,
for each `inherit<k>` with a `standalone<k>` beside it (or each `--pair REPORT:BASELINE`), the
paired difference of their taus on the same supernets (what the shared weights add to k
training steps). With `--loss`, a last table ranks the same estimates by their validation loss
instead of their accuracy (reports whose rows keep `one_shot_loss`; each tau against the mean of
all the ground-truth trainings). With `--best-of K` (repeatable), a table of what a user gets who
draws K of the pool's architectures at random and keeps the one the estimator ranks first (by
score, and by loss where kept): the expected ground-truth percentile of that pick among the other
architectures, exact over every K-subset (K = the pool size gives the top pick's percentile), per
strategy of the supernets' searches and over all of them. With `--consensus`, a table that tells noise
from bias: the tau with the ground truth of the supernets' consensus (each architecture's mean rank
over k supernets' scores, mean over k-subsets) as k grows. Noise that differs between supernets
averages out, so the consensus of many climbs towards the ceiling; a bias they share does not.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
from itertools import combinations
from math import comb

import numpy as np
from scipy.stats import rankdata

from enas.quality import percentile
from enas.ranking import kendall_tau, measurements, ranking_value, report_label
from experiments.search_quality.table import mean_sd

RUN = re.compile(r"^(?P<strategy>.+)_s(?P<seed>\d+)$")


def load_reports(runs: str, report: str) -> dict[tuple[str, int], dict]:
    """{(strategy, seed): the rank-check report `report`.json} of every run folder under `runs`."""
    found = {}
    for name in sorted(os.listdir(runs)):
        match, path = RUN.match(name), os.path.join(runs, name, report + ".json")
        if match and os.path.exists(path):
            with open(path) as f:
                found[match["strategy"], int(match["seed"])] = json.load(f)
    return found


def _figure(report: dict, key: str) -> float:
    """The mean over measurements of `key` (kendall_tau, spearman_rho, top_k_overlap) of the
    estimator against each measurement: what `one_shot_tau` is for tau."""
    names = report["measurement_names"]
    return statistics.fmean(report["pairs"][f"one-shot vs {name}"][key] for name in names)


def top_pick_percentile(report: dict) -> float:
    """The ground-truth percentile (the harness's `percentile`: 0-100, ties half) among the other
    architectures of the one the estimator ranks first (highest score, or lowest loss where the report
    ranks by loss)."""
    rows = [r for r in report["rows"] if r["ground_truth_mean"] == r["ground_truth_mean"]]    # no nan
    pick = max(rows, key=lambda r: ranking_value(report, r))
    others = [r["ground_truth_mean"] for r in rows if r is not pick]
    return percentile(pick["ground_truth_mean"], others, report.get("higher_is_better", True))


def best_of_k_percentile(report: dict, k: int, by_loss: bool = False) -> float:
    """The expected ground-truth percentile (as `top_pick_percentile`) of the architecture the
    estimator ranks first (highest score, or lowest loss) within a uniformly drawn k-subset of the
    report's architectures. Exact: the i-th best of n is the pick of the C(n - 1 - i, k - 1) subsets
    that hold it and only worse-ranked others."""
    rows = [r for r in report["rows"] if r["ground_truth_mean"] == r["ground_truth_mean"]]
    if not 1 <= k <= len(rows):
        raise ValueError(f"--best-of {k}: between 1 and the {len(rows)} architectures of the pool")
    order = sorted(rows, key=(lambda r: r["one_shot_loss"]) if by_loss else (lambda r: -r["one_shot_score"]))
    higher = report.get("higher_is_better", True)
    total = 0.0
    for i, row in enumerate(order):
        others = [r["ground_truth_mean"] for r in rows if r is not row]
        total += comb(len(order) - 1 - i, k - 1) * percentile(row["ground_truth_mean"], others, higher)
    return total / comb(len(order), k)


def best_of_markdown(runs: str, reports: list[str], ks: list[int]) -> str:
    """Per report and strategy: the expected percentile of the best-of-k pick, by score and by loss."""
    lines = ["", "Best of K random architectures of the pool, as the estimator ranks them: the expected "
             "percentile of the pick (mean ± sd over the supernets)", "",
             "| estimator (report) | supernets of | seeds | K | ranked by score | ranked by loss |",
             "|---|---|---|---|---|---|"]
    for report in reports:
        by_run = load_reports(runs, report)
        strategies = sorted({s for s, _ in by_run})
        for strategy in strategies + (["all"] if len(strategies) > 1 else []):    # all: every supernet of the report
            found = [by_run[key] for key in sorted(by_run) if strategy in (key[0], "all")]
            seeds = ",".join(str(seed) for s, seed in sorted(by_run) if strategy in (s, "all"))
            with_loss = all("one_shot_loss" in row for r in found for row in r["rows"])
            for k in ks:
                by_loss = mean_sd([best_of_k_percentile(r, k, True) for r in found], 1) if with_loss else "-"
                lines.append(f"| {report_label(found[0])} ({report}) | {strategy} | {seeds} | {k} | "
                             f"{mean_sd([best_of_k_percentile(r, k) for r in found], 1)} | {by_loss} |")
    return "\n".join(lines) + "\n"


def consensus_tau(found: list[dict], by_loss: bool = False) -> float:
    """Kendall tau with the ground truth of the reports' consensus: each architecture's mean rank over
    the reports' scores (or over their negated losses), against each measurement of the ground truth as
    the reports group it (`average` trainings), mean over the measurements as `one_shot_tau` is.
    The reports must rank the same architectures; one whose estimate failed in any report, or whose
    training failed, is left out."""
    keyed = [{tuple(row["choices"]): row for row in r["rows"]} for r in found]
    if any(set(k) != set(keyed[0]) for k in keyed):
        raise ValueError(f"{found[0].get('run_dir', 'a report')} and the others rank different architectures: "
                         "a consensus needs the same pool (rank-check seed and num_archs)")
    archs = sorted(keyed[0])
    rank_sum = np.zeros(len(archs))
    for rows in keyed:
        values = [-rows[a]["one_shot_loss"] if by_loss else rows[a]["one_shot_score"] for a in archs]
        rank_sum += rankdata(values, nan_policy="omit")     # a failed estimate: a nan rank
    kept = [i for i, a in enumerate(archs)       # as the reports: a nan on either side leaves a cell out
            if np.isfinite(rank_sum[i]) and np.isfinite(keyed[0][a]["ground_truth"]).all()]
    runs = [list(t) for t in zip(*(keyed[0][archs[i]]["ground_truth"] for i in kept))]   # one list per training
    measured, _ = measurements(runs, found[0].get("average", 1))
    return statistics.fmean(kendall_tau(rank_sum[kept], m) for m in measured)


def consensus_curve(found: list[dict], by_loss: bool = False, subsets: int = 200, seed: int = 0) -> dict[int, float]:
    """{k: mean `consensus_tau` over k-subsets of the reports} for k = 1, 2, 4, ... and all of them:
    every subset where there are at most `subsets`, else `subsets` drawn without repeats (seeded)."""
    sizes = sorted({k for k in (2 ** i for i in range(len(found).bit_length())) if k <= len(found)} | {len(found)})
    curve = {}
    for k in sizes:
        if comb(len(found), k) <= subsets:
            chosen = list(combinations(range(len(found)), k))
        else:
            rng, drawn = random.Random(seed), set()
            while len(drawn) < subsets:
                drawn.add(tuple(sorted(rng.sample(range(len(found)), k))))
            chosen = sorted(drawn)
        curve[k] = statistics.fmean(consensus_tau([found[i] for i in c], by_loss) for c in chosen)
    return curve


def consensus_markdown(runs: str, reports: list[str]) -> str:
    """Per report and strategy of the supernets' searches (and all of them): each supernet's tau (the
    reports' convention: mean over measurements) and the consensus tau of k of them as k grows, by
    score and, where the rows keep it, by loss."""
    lines = ["", "Noise or bias? Kendall tau with the ground truth of the consensus of k supernets (each "
             "architecture's mean rank over their scores; mean over k-subsets)", "",
             "| estimator (report) | supernets of | seeds | ranked by | a single supernet (mean ± sd) | "
             "consensus tau as k grows | all |", "|---|---|---|---|---|---|---|"]
    for report in reports:
        by_run = load_reports(runs, report)
        strategies = sorted({s for s, _ in by_run})
        for strategy in strategies + (["all"] if len(strategies) > 1 else []):
            keys = [key for key in sorted(by_run) if strategy in (key[0], "all")]
            found = [by_run[key] for key in keys]
            seeds = ",".join(str(seed) for _, seed in keys) if strategy != "all" else f"{len(keys)} supernets"
            with_loss = all("one_shot_loss" in row for r in found for row in r["rows"])
            for by_loss in (False, True) if with_loss else (False,):
                single = [consensus_tau([r], by_loss) for r in found]
                curve = consensus_curve(found, by_loss)
                lines.append(f"| {report_label(found[0])} ({report}) | {strategy} | {seeds} | "
                             f"{'loss' if by_loss else 'score'} | {mean_sd(single)} | "
                             f"{', '.join(f'{k}: {t:.2f}' for k, t in curve.items())} | {curve[len(found)]:.2f} |")
    return "\n".join(lines) + "\n"


def summary_rows(runs: str, reports: list[str]) -> list[dict]:
    """One row per (report, strategy): the figures over the seeds found."""
    rows = []
    for report in reports:
        by_run = load_reports(runs, report)
        for strategy in sorted({s for s, _ in by_run}):
            found = [by_run[key] for key in sorted(by_run) if key[0] == strategy]
            taus = [r["one_shot_tau"] for r in found]
            ceilings = [r["noise_ceiling_tau"] for r in found]
            seconds = [r["one_shot"]["seconds"] / r["num_archs"] for r in found if "seconds" in r["one_shot"]]
            label = report_label(found[0])
            scores = [[ranking_value(r, row) for row in r["rows"]] for r in found]
            rows.append({"report": report, "estimator": label, "strategy": strategy,
                         "seeds": sorted(seed for s, seed in by_run if s == strategy), "taus": taus,
                         "ceiling": statistics.fmean(ceilings), "num_archs": found[0]["num_archs"],
                         "rho": [_figure(r, "spearman_rho") for r in found],
                         "top_k": [_figure(r, "top_k_overlap") for r in found], "seconds": seconds,
                         "self_tau": [kendall_tau(a, b) for a, b in combinations(scores, 2)],
                         "top_pick": [top_pick_percentile(r) for r in found]})
    return rows


def default_pairs(reports: list[str]) -> list[tuple[str, str]]:
    """(inherit<k>, standalone<k>) for each such pair among `reports`."""
    return [(report, "standalone" + report[len("inherit"):]) for report in reports
            if report.startswith("inherit") and "standalone" + report[len("inherit"):] in reports]


def paired_rows(runs: str, reports: list[str], pairs: list[tuple[str, str]] | None = None) -> list[dict]:
    """For each (report, baseline) of `pairs` (default: inherit<k> with standalone<k> among
    `reports`): tau(report) - tau(baseline) on each supernet that has both."""
    rows = []
    for report, baseline in default_pairs(reports) if pairs is None else pairs:
        inherit, standalone = load_reports(runs, report), load_reports(runs, baseline)
        both = sorted(set(inherit) & set(standalone))
        if not both:
            continue
        diffs = [inherit[k]["one_shot_tau"] - standalone[k]["one_shot_tau"] for k in both]
        rows.append({"inherit": report, "standalone": baseline, "runs": [f"{s} {n}" for s, n in both],
                     "diffs": diffs, "ahead": sum(d > 0 for d in diffs)})
    return rows


def loss_rows(runs: str, reports: list[str]) -> list[dict]:
    """Per (report, strategy), over the supernets whose rows keep the estimator's validation loss:
    Kendall tau with the mean ground truth of the accuracy score and of the negated loss (a lower
    loss ranks higher)."""
    rows = []
    for report in reports:
        by_run = {k: r for k, r in load_reports(runs, report).items()
                  if all("one_shot_loss" in row for row in r["rows"])}
        for strategy in sorted({s for s, _ in by_run}):
            found = [by_run[key] for key in sorted(by_run) if key[0] == strategy]
            kept = [[row for row in r["rows"] if row["ground_truth_mean"] == row["ground_truth_mean"]] for r in found]
            truth = [[row["ground_truth_mean"] for row in k] for k in kept]
            rows.append({"report": report, "strategy": strategy,
                         "seeds": sorted(seed for s, seed in by_run if s == strategy),
                         "by_score": [kendall_tau([row["one_shot_score"] for row in k], t)
                                      for k, t in zip(kept, truth)],
                         "by_loss": [kendall_tau([-row["one_shot_loss"] for row in k], t)
                                     for k, t in zip(kept, truth)]})
    return rows


def loss_markdown(runs: str, reports: list[str]) -> str:
    """The table of `loss_rows`."""
    lines = ["", "Ranked by accuracy or by loss (tau with the mean of all ground-truth trainings)", "",
             "| report | supernets of | seeds | tau by accuracy | tau by loss | loss ahead |",
             "|---|---|---|---|---|---|"]
    for r in loss_rows(runs, reports):
        ahead = sum(b > a for a, b in zip(r["by_score"], r["by_loss"]))
        lines.append(f"| {r['report']} | {r['strategy']} | {','.join(map(str, r['seeds']))} | "
                     f"{mean_sd(r['by_score'])} | {mean_sd(r['by_loss'])} | {ahead}/{len(r['seeds'])} |")
    return "\n".join(lines) + "\n"


def markdown(runs: str, reports: list[str], pairs: list[tuple[str, str]] | None = None) -> str:
    lines = ["| estimator (report) | supernets of | seeds | archs | noise-ceiling tau | Kendall tau (mean ± sd) "
             "| share of ceiling | Spearman rho | top-20% overlap | self-agreement tau | top pick's percentile "
             "| scoring s / arch |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary_rows(runs, reports):
        share = statistics.fmean(r["taus"]) / r["ceiling"] if r["ceiling"] else float("nan")
        lines.append(f"| {r['estimator']} ({r['report']}) | {r['strategy']} | {','.join(map(str, r['seeds']))} | "
                     f"{r['num_archs']} | {r['ceiling']:.3f} | {mean_sd(r['taus'])} | {share:.2f} | "
                     f"{mean_sd(r['rho'])} | {mean_sd(r['top_k'])} | {mean_sd(r['self_tau'])} | "
                     f"{mean_sd(r['top_pick'], 1)} | {mean_sd(r['seconds'], 1)} |")
    paired = paired_rows(runs, reports, pairs)
    if paired:
        lines += ["", "| report - baseline, same supernets | tau difference (mean ± sd) | report ahead | runs |",
                  "|---|---|---|---|"]
        for p in paired:
            lines.append(f"| {p['inherit']} - {p['standalone']} | {mean_sd(p['diffs'])} | "
                         f"{p['ahead']}/{len(p['diffs'])} | {', '.join(p['runs'])} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", help="folder of <strategy>_s<seed> search runs")
    parser.add_argument("reports", nargs="+", help="rank-check report stems (report=... of enas-rank-check)")
    parser.add_argument("--pair", action="append", metavar="REPORT:BASELINE",
                        help="paired tau difference of two reports (default: each inherit<k> with standalone<k>)")
    parser.add_argument("--loss", action="store_true", help="also rank each estimate by its validation loss")
    parser.add_argument("--consensus", action="store_true",
                        help="tau of the consensus of k supernets as k grows: noise that averages out, "
                             "or a shared bias")
    parser.add_argument("--best-of", type=int, action="append", default=[], metavar="K",
                        help="expected percentile of the best of K random pool architectures, as each estimator ranks them")
    args = parser.parse_args(argv)
    pairs = None if args.pair is None else [tuple(p.split(":", 1)) for p in args.pair]
    if pairs is not None and any(len(p) != 2 for p in pairs):
        parser.error("--pair takes REPORT:BASELINE")
    sys.stdout.write(markdown(args.runs, args.reports, pairs))
    if args.loss:
        sys.stdout.write(loss_markdown(args.runs, args.reports))
    if args.best_of:
        sys.stdout.write(best_of_markdown(args.runs, args.reports, args.best_of))
    if args.consensus:
        sys.stdout.write(consensus_markdown(args.runs, args.reports))


if __name__ == "__main__":
    main()
