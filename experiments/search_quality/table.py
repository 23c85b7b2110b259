"""The summary table of experiments/search_quality from the harness's own reports.

    python -m experiments.search_quality.table /tmp/sq --group main=main_reinforce_s2,main_random_s01 \
        > experiments/search_quality/table.md

Reads every <out>/<dir>/beats_random.json (enas-beats-random; or placed.jsonl, the lines of
place_derived.py for an interrupted run) and, for each search run, its
<strategy>-seed<n>/search/rank_check.json (enas-rank-check): one row per setting and strategy
with the pool's noise-ceiling tau (the one the harness's verdict reads: the mean over every split
of the trainings where the report has it, `enas.ranking.judged_ceiling`), the one-shot tau over
the seeds (and its share of the ceiling) for each rank check of `CHECKS` found beside the search
(1,000 validation images; the whole split, 2,000 images; 24 architectures, with their own
ceiling; the whole split against a ground truth of 6 trainings per architecture, or of 4 trainings
of 6 epochs), and the derived
architecture's percentile among the random pool. `--group` names
the directories whose runs form one setting (the default: each directory is a setting);
`--pool` names another pool's beats_random.json (the 24-architecture one) among whose
measurements each derived architecture is placed again (its own column). `--versus A:B` (rows
named setting/strategy, e.g. few_shot/reinforce:main/random) adds how far A's derived percentiles
are ahead of B's: not paired (different supernets), with one-sided Mann-Whitney tests both ways.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys

from scipy import stats

from enas.quality import placement
from enas.ranking import judged_ceiling

# The rank checks of a search (run.sh): file, column label, whether it has its own noise ceiling
# (another set of architectures) or shares the 12-architecture pool's.
CHECKS = (("rank_check.json", "1,000 valid images", False),
          ("rank_check_2000.json", "2,000 valid images", False),
          ("rank_check_24.json", "24 archs, 2,000 valid images", True),
          ("rank_check_6seeds.json", "2,000 valid images, 6 trainings", False),   # the micro pool of section 4
          ("rank_check_e6.json", "2,000 valid images, 6 epochs", False))          # its 6-epoch pool (section 6)


def _load(path: str) -> dict | None:
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def mean_sd(values: list[float], digits: int = 2) -> str:
    """Mean ± sd of the values as text, e.g. 0.24 ± 0.06 (a single value alone; none: -)."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.fmean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _judged(report: dict) -> float | None:
    """The noise ceiling a report's verdict reads (`judged_ceiling`; older reports: their own tau)."""
    return judged_ceiling(report["noise_ceiling_tau"], report.get("noise_ceiling_splits"))[0]


def runs_of(folder: str) -> tuple[list[dict], float | None]:
    """(runs {"strategy", "seed", "percentile", "value"}, noise-ceiling tau) of one out_dir."""
    report = _load(os.path.join(folder, "beats_random.json"))
    if report is not None:
        return ([{"strategy": r["strategy"], "seed": r["seed"], "percentile": r["percentile"], "value": r["value"]}
                 for r in report["runs"] if r["status"] == "ok"], _judged(report))
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


def rows(out: str, groups: dict[str, list[str]], pool: dict | None = None, checks: tuple = CHECKS) -> list[dict]:
    """One dict per (setting, strategy) found under `out`; `pool`: another pool's report
    (beats_random.json) to place the derived architectures in as well; `checks`: the rank checks
    of `CHECKS` to read."""
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
            found_checks = {name: {"taus": [], "noise": None} for name, _, _ in checks}
            for r in mine:
                search = os.path.join(out, r["dir"], f"{strategy}-seed{r['seed']}", "search")
                for name, _, _ in checks:
                    check = _load(os.path.join(search, name))
                    if check is not None and check.get("one_shot_tau") is not None:
                        found_checks[name]["taus"].append(check["one_shot_tau"])
                        found_checks[name]["noise"] = found_checks[name]["noise"] or _judged(check)
            if noise is None:                         # no beats_random.json: the ceiling of a check of the same pool
                noise = next((found_checks[name]["noise"] for name, _, own in checks
                              if not own and found_checks[name]["noise"]), None)
            percentiles = [r["percentile"] for r in mine]
            in_pool = ([placement(r["value"], pool["random"]["measurements"])[1] for r in mine]
                       if pool is not None else [])
            found.append({"setting": setting, "strategy": strategy, "noise": noise, "checks": found_checks,
                          "pool_percentiles": in_pool, "pool_size": pool["random"]["num_archs"] if pool else None,
                          "percentiles": percentiles, "values": [r["value"] for r in mine],
                          "seeds": [r["seed"] for r in mine], "at_80": sum(p >= 80 for p in percentiles)})
    return found


def _share(taus: list[float], noise: float | None) -> str:
    return f"{statistics.fmean(taus) / noise:.2f}" if taus and noise else "-"


def _ceiling(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "-"


def markdown(found: list[dict]) -> str:
    """The table: per check that `rows` read, its one-shot tau (mean ± sd over seeds) and share of
    the ceiling."""
    checks = tuple(c for c in CHECKS if c[0] in found[0]["checks"]) if found else CHECKS
    header = ["setting", "strategy", "noise-ceiling tau (12 archs)"]
    for _, label, own_ceiling in checks:
        header += ([f"noise-ceiling tau ({label.split(',')[0]})"] if own_ceiling else [])
        header += [f"one-shot tau, {label}", "share of ceiling"]
    header += ["derived test acc", "derived percentile among 12 random (mean ± sd)", "runs >= 80th"]
    size = next((r["pool_size"] for r in found if r["pool_size"]), None)     # the --pool's architectures
    header += ([f"derived percentile among {size} random"] if size else []) + ["seeds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in found:
        cells = [r["setting"], r["strategy"], _ceiling(r["noise"])]
        for name, _, own_ceiling in checks:
            check = r["checks"][name]
            ceiling = check["noise"] if own_ceiling else r["noise"]
            cells += [_ceiling(ceiling)] if own_ceiling else []
            cells += [mean_sd(check["taus"]), _share(check["taus"], ceiling)]
        cells += [mean_sd(r["values"], 4), mean_sd(r["percentiles"], 1), f"{r['at_80']}/{len(r['percentiles'])}"]
        cells += [mean_sd(r["pool_percentiles"], 1)] if size else []
        cells += [",".join(str(s) for s in r["seeds"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def ahead(a: list[float], b: list[float]) -> dict:
    """Percentiles `a` against `b` (not paired): the difference of the means, the share of (a, b)
    pairs with a ahead (ties count half), and the one-sided Mann-Whitney p for a ahead and b ahead."""
    share = sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in a for y in b) / (len(a) * len(b))
    return {"difference": statistics.fmean(a) - statistics.fmean(b), "share": share,
            "p_ahead": stats.mannwhitneyu(a, b, alternative="greater").pvalue,
            "p_behind": stats.mannwhitneyu(a, b, alternative="less").pvalue}


def versus(found: list[dict], pairs: list[str]) -> str:
    """A table of `A:B` comparisons of the rows' derived percentiles (rows named setting/strategy)."""
    by_name = {f"{r['setting']}/{r['strategy']}": r for r in found}
    lines = ["", "| A | B | seeds A / B | percentile A - B | share of pairs with A ahead | "
             "Mann-Whitney p, A ahead | p, B ahead |", "|---|---|---|---|---|---|---|"]
    for pair in pairs:
        first, second = pair.split(":")
        missing = [name for name in (first, second) if name not in by_name]
        if missing:
            raise SystemExit(f"--versus {pair}: no row {missing[0]!r}; rows: {', '.join(by_name)}")
        a, b = by_name[first]["percentiles"], by_name[second]["percentiles"]
        c = ahead(a, b)
        lines.append(f"| {first} | {second} | {len(a)} / {len(b)} | {c['difference']:+.1f} | {c['share']:.2f} | "
                     f"{c['p_ahead']:.2f} | {c['p_behind']:.2f} |")
    return "\n".join(lines) + "\n"


def select_checks(names: list[str]) -> tuple:
    """The entries of CHECKS with these file names, in CHECKS' order (an unknown name: SystemExit)."""
    known = {name for name, _, _ in CHECKS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"--checks: unknown rank check {unknown[0]!r}; known: {', '.join(sorted(known))}")
    return tuple(c for c in CHECKS if c[0] in names)


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
    parser.add_argument("--pool", help="another pool's beats_random.json: place the derived architectures in it too")
    parser.add_argument("--checks", help="comma-separated rank-check files of CHECKS to show (default: all)")
    parser.add_argument("--versus", action="append", default=[], metavar="A:B",
                        help="setting/strategy A against B: derived percentiles, Mann-Whitney both ways")
    args = parser.parse_args()
    if any(len(v.split(":")) != 2 for v in args.versus):
        parser.error("--versus takes A:B, each setting/strategy")
    checks = select_checks(args.checks.split(",")) if args.checks else CHECKS
    found = rows(args.out, parse_groups(args.group), _load(args.pool) if args.pool else None, checks)
    sys.stdout.write(markdown(found))
    if args.versus:
        sys.stdout.write(versus(found, args.versus))
