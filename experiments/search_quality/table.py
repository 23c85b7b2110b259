"""The summary table of experiments/search_quality from the harness's own reports.

    python -m experiments.search_quality.table /tmp/sq --group main=main_reinforce_s2,main_random_s01 \
        > experiments/search_quality/table.md

Reads every <out>/<dir>/beats_random.json (enas-beats-random; or placed.jsonl, the lines of
place_derived.py for an interrupted run) and, for each search run, its
<strategy>-seed<n>/search/rank_check.json (enas-rank-check): one row per setting and strategy
with the pool's noise-ceiling tau, the one-shot tau over the seeds (and its share of the
ceiling), the one-shot tau of the same check scored on the whole validation split (2,000
images: `rank_check_2000.json` beside it, where run.sh wrote one), and the derived
architecture's percentile among the random pool. `--group` names
the directories whose runs form one setting (the default: each directory is a setting).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys


WHOLE_SPLIT_CHECK = "rank_check_2000.json"    # the same rank check, one-shot scores on the whole validation split


def _load(path: str) -> dict | None:
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _mean_sd(values: list[float], digits: int = 2) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.fmean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def runs_of(folder: str) -> tuple[list[dict], float | None]:
    """(runs {"strategy", "seed", "percentile", "value"}, noise-ceiling tau) of one out_dir."""
    report = _load(os.path.join(folder, "beats_random.json"))
    if report is not None:
        return ([{"strategy": r["strategy"], "seed": r["seed"], "percentile": r["percentile"], "value": r["value"]}
                 for r in report["runs"] if r["status"] == "ok"], report["noise_ceiling_tau"])
    placed = os.path.join(folder, "placed.jsonl")
    if not os.path.exists(placed):
        return [], None
    runs = []
    with open(placed) as f:
        for line in f:
            r = json.loads(line)
            strategy, seed = re.search(r"([a-z_]+)-seed(\d+)/search/?$", r["search"]).groups()
            runs.append({"strategy": strategy, "seed": int(seed), "percentile": r["percentile"], "value": r["value"]})
    return runs, None


def rows(out: str, groups: dict[str, list[str]]) -> list[dict]:
    """One dict per (setting, strategy) found under `out`."""
    grouped = {d for dirs in groups.values() for d in dirs}
    settings = dict(groups)
    for d in sorted(os.listdir(out)):
        if d not in grouped and os.path.isdir(os.path.join(out, d)):
            settings[d] = [d]
    found = []
    for setting, dirs in settings.items():
        runs, noise = [], None
        for d in dirs:
            mine, ceiling = runs_of(os.path.join(out, d))
            runs += [{**r, "dir": d} for r in mine]
            noise = noise if ceiling is None else ceiling
        for strategy in dict.fromkeys(r["strategy"] for r in runs):
            mine = sorted((r for r in runs if r["strategy"] == strategy), key=lambda r: r["seed"])
            taus, taus_whole = [], []
            for r in mine:
                search = os.path.join(out, r["dir"], f"{strategy}-seed{r['seed']}", "search")
                check = _load(os.path.join(search, "rank_check.json"))
                if check is not None and check.get("one_shot_tau") is not None:
                    taus.append(check["one_shot_tau"])
                    noise = check["noise_ceiling_tau"] if noise is None else noise
                whole = _load(os.path.join(search, WHOLE_SPLIT_CHECK))
                if whole is not None and whole.get("one_shot_tau") is not None:
                    taus_whole.append(whole["one_shot_tau"])
            percentiles = [r["percentile"] for r in mine]
            found.append({"setting": setting, "strategy": strategy, "noise": noise, "taus": taus,
                          "taus_whole": taus_whole,
                          "percentiles": percentiles, "values": [r["value"] for r in mine],
                          "seeds": [r["seed"] for r in mine], "at_80": sum(p >= 80 for p in percentiles)})
    return found


def _share(taus: list[float], noise: float | None) -> str:
    return f"{statistics.fmean(taus) / noise:.2f}" if taus and noise else "-"


def markdown(found: list[dict]) -> str:
    lines = ["| setting | strategy | noise-ceiling tau | one-shot tau (mean ± sd over seeds) | share of ceiling "
             "| one-shot tau, 2,000 valid images | share of ceiling "
             "| derived test acc | derived percentile among 12 random (mean ± sd) | runs >= 80th | seeds |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in found:
        noise = f"{r['noise']:.3f}" if r["noise"] is not None else "-"
        lines.append(f"| {r['setting']} | {r['strategy']} | {noise} | {_mean_sd(r['taus'])} | {_share(r['taus'], r['noise'])} "
                     f"| {_mean_sd(r['taus_whole'])} | {_share(r['taus_whole'], r['noise'])} "
                     f"| {_mean_sd(r['values'], 4)} | {_mean_sd(r['percentiles'], 1)} | {r['at_80']}/{len(r['percentiles'])} "
                     f"| {','.join(str(s) for s in r['seeds'])} |")
    return "\n".join(lines) + "\n"


def parse_groups(items: list[str]) -> dict[str, list[str]]:
    """["main=a,b", ...] -> {"main": ["a", "b"], ...}."""
    groups = {}
    for item in items:
        name, _, dirs = item.partition("=")
        groups[name] = [d for d in dirs.split(",") if d]
    return groups


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--group", action="append", default=[], help="name=dir1,dir2: these runs form one setting")
    args = parser.parse_args()
    sys.stdout.write(markdown(rows(args.out, parse_groups(args.group))))
