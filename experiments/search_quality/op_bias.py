"""What do one-shot scores and the ground truth reward? Kendall tau of each with simple counts
of the pool's networks: pooling layers and skip connections (macro), pooling and separable
convolutions (micro, `--features pools,sep_convs`).

    python -m experiments.search_quality.op_bias /tmp/sq [--check rank_check_24.json] \
        > experiments/search_quality/op_bias.md
    python -m experiments.search_quality.op_bias /tmp/sq/s4 --runs '*_s?' --check inherit20.json
    python -m experiments.search_quality.op_bias /tmp/sqmt6 --check rank_check_6seeds.json \
        --features pools,sep_convs --derived

Reads every <out>/<dir>/<strategy>-seed<n>/search/rank_check_2000.json (enas-rank-check with the
one-shot scores on the whole validation split; see run.sh; `--check` names another, e.g. the
24-architecture checks; `--runs` another folder pattern, e.g. the fourth session's
<strategy>_s<seed> runs; the scores may come from any estimator) and writes one markdown row
per supernet: tau(one-shot, ground truth), then per counted feature tau(ground truth, feature)
and tau(one-shot, feature). The ground truth is the mean of the check's trainings. `--derived`
adds each search's derived architecture (its arch.json) counted the same way.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import sys

from enas.arch import load_arch_file
from enas.build import build_space
from enas.ranking import kendall_tau

CHECK = "rank_check_2000.json"
RUNS = os.path.join("*", "*-seed*", "search")           # the run folders of enas-beats-random (run.sh)
POOLS = ("max_pool3x3", "avg_pool3x3")
FEATURES = ("pools", "skips")                            # the macro default
KNOWN_FEATURES = ("pools", "skips", "sep_convs")


def counts(genotype: str) -> dict[str, int]:
    """Pooling ops, skip connections (macro) and separable convolutions (micro) of a genotype
    string ("layer0_op=conv3x3 layer1_op=max_pool3x3 layer1_skip=skip[1] ...",
    "normal_node0_op_a=sep_conv3x3 ...")."""
    found = dict.fromkeys(KNOWN_FEATURES, 0)
    for item in genotype.split():
        name, _, value = item.partition("=")
        if name.endswith("_skip"):
            found["skips"] += value.removeprefix("skip[").removesuffix("]").count("1")
        elif "_op" in name:
            found["pools"] += value in POOLS
            found["sep_convs"] += value.startswith("sep_conv")
    return found


def supernet_row(report: dict, features: tuple = FEATURES) -> dict:
    """tau(one-shot, truth) and, per feature, tau(truth, feature) and tau(one-shot, feature)."""
    rows = report["rows"]
    one_shot = [r["one_shot_score"] for r in rows]
    truth = [r["ground_truth_mean"] for r in rows]
    counted = [counts(r["genotype"]) for r in rows]
    row = {"one_shot_vs_truth": kendall_tau(one_shot, truth)}
    for feature in features:
        values = [c[feature] for c in counted]
        row[f"truth_vs_{feature}"] = kendall_tau(truth, values)
        row[f"one_shot_vs_{feature}"] = kendall_tau(one_shot, values)
    return row


def derived_counts(search: str) -> dict[str, int] | None:
    """The feature counts of the architecture a search derived (its arch.json; None: not derived)."""
    path = os.path.join(search, "arch.json")
    if not os.path.exists(path):
        return None
    data = load_arch_file(path)
    space = build_space({"name": data["space"]}, data.get("structure", {}))
    return counts(space.describe(space.arch_from_dict(data, source=path)))


def markdown(out_dir: str, check: str = CHECK, runs: str = RUNS, features: tuple = FEATURES,
             derived: bool = False) -> str:
    """The table over every rank check named `check` in the run folders `runs` (a glob under
    out_dir), then the mean row; `derived`: a column per feature with the derived architecture's count."""
    columns = ["one_shot_vs_truth"] + [f"{side}_vs_{f}" for f in features for side in ("truth", "one_shot")]
    header = ["supernet", "tau(one-shot, truth)"]
    header += [f"tau({side}, {f.replace('_', ' ')})" for f in features for side in ("truth", "one-shot")]
    header += [f"derived: {f.replace('_', ' ')}" for f in features] if derived else []
    found = []
    for path in sorted(glob.glob(os.path.join(out_dir, runs, check))):
        with open(path) as f:
            row = supernet_row(json.load(f), features)
        name = os.path.relpath(os.path.dirname(path), out_dir).removesuffix(os.sep + "search")
        mine = derived_counts(os.path.dirname(path)) if derived else None
        row.update({f"derived_{f}": (mine[f] if mine else None) for f in features})
        found.append((name, row))
    columns += [f"derived_{f}" for f in features] if derived else []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([name] + [_cell(row[c]) for c in columns]) + " |" for name, row in found]
    if found:
        means = [[row[c] for _, row in found if row[c] is not None] for c in columns]
        lines.append("| " + " | ".join([f"mean of {len(found)}"] +
                                       [_cell(statistics.fmean(m)) if m else "-" for m in means]) + " |")
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    return "-" if value is None else (str(value) if isinstance(value, int) else f"{value:.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="the folder of the runs (run.sh's OUT)")
    parser.add_argument("--check", default=CHECK, help=f"the rank check file of each search (default {CHECK})")
    parser.add_argument("--runs", default=RUNS, help=f"the run folders, a glob under out_dir (default {RUNS})")
    parser.add_argument("--features", default=",".join(FEATURES),
                        help=f"counted features, comma-separated, of {', '.join(KNOWN_FEATURES)}")
    parser.add_argument("--derived", action="store_true", help="count the derived architecture of each search too")
    args = parser.parse_args(argv)
    features = tuple(args.features.split(","))
    unknown = [f for f in features if f not in KNOWN_FEATURES]
    if unknown:
        parser.error(f"--features: unknown feature {unknown[0]!r}; known: {', '.join(KNOWN_FEATURES)}")
    sys.stdout.write(markdown(args.out_dir, args.check, args.runs, features, args.derived))


if __name__ == "__main__":
    main()
