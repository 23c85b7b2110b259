"""The summary table of experiments/search_quality from the harness's own reports.

    python -m experiments.search_quality.table /tmp/sq > experiments/search_quality/table.md

Reads <out>/<setting>/beats_random.json (enas-beats-random) and, for each search run in it,
<out>/<setting>/<strategy>-seed<n>/search/rank_check.json (enas-rank-check): one row per
setting and strategy with the pool's noise-ceiling tau, the mean one-shot tau over the seeds
(and its share of the ceiling), and the derived architecture's percentile among the random pool.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys


def _load(path: str) -> dict | None:
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


def rows(out: str) -> list[dict]:
    """One dict per (setting, strategy) found under `out`."""
    found = []
    for setting in sorted(os.listdir(out)):
        report = _load(os.path.join(out, setting, "beats_random.json"))
        if report is None or not report["runs"]:
            continue
        for strategy in dict.fromkeys(r["strategy"] for r in report["runs"]):
            runs = [r for r in report["runs"] if r["strategy"] == strategy]
            percentiles = [r["percentile"] for r in runs if r["status"] == "ok"]
            taus, ceilings = [], []
            for r in runs:
                check = _load(os.path.join(out, setting, f"{strategy}-seed{r['seed']}", "search", "rank_check.json"))
                if check is not None and check.get("one_shot_tau") is not None:
                    taus.append(check["one_shot_tau"])
                    ceilings.append(check["noise_ceiling_tau"])
            found.append({"setting": setting, "strategy": strategy, "noise": report["noise_ceiling_tau"],
                          "taus": taus, "ceilings": ceilings, "percentiles": percentiles,
                          "seeds": [r["seed"] for r in runs], "at_80": sum(p >= 80 for p in percentiles)})
    return found


def markdown(found: list[dict]) -> str:
    lines = ["| setting | strategy | noise-ceiling tau | one-shot tau (mean ± sd over seeds) | share of ceiling "
             "| derived percentile among 12 random (mean ± sd) | runs >= 80th | seeds |",
             "|---|---|---|---|---|---|---|---|"]
    for r in found:
        share = (f"{statistics.fmean(r['taus']) / r['noise']:.2f}" if r["taus"] and r["noise"] else "-")
        lines.append(f"| {r['setting']} | {r['strategy']} | {r['noise']:.3f} | {_mean_sd(r['taus'])} | {share} "
                     f"| {_mean_sd(r['percentiles'])} | {r['at_80']}/{len(r['percentiles'])} "
                     f"| {','.join(str(s) for s in r['seeds'])} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    sys.stdout.write(markdown(rows(parser.parse_args().out)))
