"""What do one-shot scores and the ground truth reward? Kendall tau of each with simple counts
of the pool's networks (macro space): pooling layers and skip connections.

    python -m experiments.search_quality.op_bias /tmp/sq [--check rank_check_24.json] \
        > experiments/search_quality/op_bias.md
    python -m experiments.search_quality.op_bias /tmp/sq/s4 --runs '*_s?' --check inherit20.json

Reads every <out>/<dir>/<strategy>-seed<n>/search/rank_check_2000.json (enas-rank-check with the
one-shot scores on the whole validation split; see run.sh; `--check` names another, e.g. the
24-architecture checks; `--runs` another folder pattern, e.g. the fourth session's
<strategy>_s<seed> runs; the scores may come from any estimator) and writes one markdown row
per supernet: tau(one-shot, ground truth), tau(ground truth, pools), tau(one-shot, pools),
tau(ground truth, skips), tau(one-shot, skips).
The ground truth is the mean of the 6 trainings.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import sys

from enas.ranking import kendall_tau

CHECK = "rank_check_2000.json"
RUNS = os.path.join("*", "*-seed*", "search")           # the run folders of enas-beats-random (run.sh)
POOLS = ("max_pool3x3", "avg_pool3x3")


def counts(genotype: str) -> tuple[int, int]:
    """(pooling layers, skip connections) of a macro genotype string
    ("layer0_op=conv3x3 layer1_op=max_pool3x3 layer1_skip=skip[1] ...")."""
    pools = skips = 0
    for item in genotype.split():
        name, _, value = item.partition("=")
        if name.endswith("_op"):
            pools += value in POOLS
        elif name.endswith("_skip"):
            skips += value.removeprefix("skip[").removesuffix("]").count("1")
    return pools, skips


def supernet_row(report: dict) -> dict:
    """The five taus of one rank check."""
    rows = report["rows"]
    one_shot = [r["one_shot_score"] for r in rows]
    truth = [r["ground_truth_mean"] for r in rows]
    pools, skips = zip(*(counts(r["genotype"]) for r in rows))
    return {"one_shot_vs_truth": kendall_tau(one_shot, truth),
            "truth_vs_pools": kendall_tau(truth, pools), "one_shot_vs_pools": kendall_tau(one_shot, pools),
            "truth_vs_skips": kendall_tau(truth, skips), "one_shot_vs_skips": kendall_tau(one_shot, skips)}


COLUMNS = ("one_shot_vs_truth", "truth_vs_pools", "one_shot_vs_pools", "truth_vs_skips", "one_shot_vs_skips")
HEADER = ("supernet", "tau(one-shot, truth)", "tau(truth, pools)", "tau(one-shot, pools)", "tau(truth, skips)",
          "tau(one-shot, skips)")


def markdown(out_dir: str, check: str = CHECK, runs: str = RUNS) -> str:
    """The table over every rank check named `check` in the run folders `runs` (a glob under
    out_dir), then the mean row."""
    found = []
    for path in sorted(glob.glob(os.path.join(out_dir, runs, check))):
        with open(path) as f:
            name = os.path.relpath(os.path.dirname(path), out_dir).removesuffix(os.sep + "search")
            found.append((name, supernet_row(json.load(f))))
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join([name] + [f"{row[c]:.2f}" for c in COLUMNS]) + " |" for name, row in found]
    if found:
        means = [statistics.fmean(row[c] for _, row in found) for c in COLUMNS]
        lines.append("| " + " | ".join([f"mean of {len(found)}"] + [f"{m:.2f}" for m in means]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="the folder of the runs (run.sh's OUT)")
    parser.add_argument("--check", default=CHECK, help=f"the rank check file of each search (default {CHECK})")
    parser.add_argument("--runs", default=RUNS, help=f"the run folders, a glob under out_dir (default {RUNS})")
    args = parser.parse_args(argv)
    sys.stdout.write(markdown(args.out_dir, args.check, args.runs))


if __name__ == "__main__":
    main()
