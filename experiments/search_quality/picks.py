"""Which estimator should derive pick with? A table of derived architectures placed in a pool.

    python -m experiments.search_quality.picks /tmp/sq/s5/placed.jsonl > experiments/search_quality/picks.md
    python -m experiments.search_quality.picks experiments/search_quality/picks_s6.md placed_s7.jsonl --versus reinforce:random

Reads the JSON lines of `place_derived.py` for searches laid out as <runs>/<search>_s<seed>/pick_<estimator>/
(each pick_<estimator>/arch.json is what `enas-derive estimator=...` wrote for that search) and
prints, per (search, estimator of the pick), the percentile of the picked architecture among
the pool's random ones (mean ± sd over the seeds, and each seed's), its test accuracy, and how
many seeds picked the same architecture as another estimator did on the same supernet; then
the paired difference of each estimator against the first one named in --baseline; with
`--versus A:B` (e.g. reinforce:random), for each estimator that picked in both kinds of search,
how far A's picks are ahead of B's (the searches are not paired: the difference of the means,
and the share of (A seed, B seed) pairs in which A's pick is placed higher, ties counting half).
Tests: the paired differences get a two-sided sign test (ties dropped) and a two-sided Wilcoxon
signed-rank test, per search and over all searches; A against B a one-sided Mann-Whitney U test.
An input ending in .md is a table this script wrote (e.g. of a session whose placement lines are
gone): its per-seed percentiles are read back, without test accuracies or architectures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

from scipy import stats

from experiments.search_quality.table import ahead, mean_sd

PICK = re.compile(r"(?P<search>[^/]+)_s(?P<seed>\d+)/pick_(?P<pick>[^/]+)/?$")
#: A row of the first table this script writes: | search | pick | mean ± sd | s0 50.0, s1 25.0 | ...
TABLE_ROW = re.compile(r"^\| (?P<search>[^ |]+) \| (?P<pick>[^ |]+) \| [^|]+ \| (?P<seeds>(s\d+ [-\d.]+(, )?)+) \|")


def load_picks(lines) -> dict[tuple[str, str], dict[int, dict]]:
    """{(search, pick): {seed: the placement line}} of place_derived.py's output lines."""
    picks: dict[tuple[str, str], dict[int, dict]] = {}
    for line in lines:
        if not line.strip():
            continue
        entry = json.loads(line)
        match = PICK.search(entry["search"].rstrip("/"))
        if match is None:
            raise ValueError(f"{entry['search']}: not a <search>_s<seed>/pick_<estimator> folder")
        by_seed = picks.setdefault((match["search"], match["pick"]), {})
        if int(match["seed"]) in by_seed:
            raise ValueError(f"{entry.get('source', entry['search'])}: a second placement of {match['search']} seed "
                             f"{match['seed']}, pick {match['pick']}")
        by_seed[int(match["seed"])] = entry
    return picks


def table_lines(path: str, text: str) -> list[str]:
    """Placement lines (percentile only, value None) for the per-seed percentiles of a picks table
    this script wrote; `path` names their source."""
    lines = []
    for row in text.splitlines():
        match = TABLE_ROW.match(row)
        if match is None:
            continue
        for item in match["seeds"].split(", "):
            seed, percentile = item[1:].split(" ")
            lines.append(json.dumps({"search": f"{match['search']}_s{seed}/pick_{match['pick']}", "source": path,
                                     "value": None, "percentile": float(percentile)}))
    if not lines:
        raise ValueError(f"{path}: no per-seed rows of a picks table")
    return lines


def _choices(entry: dict) -> list | None:
    if "source" in entry:               # read back from a table: no architecture
        return None
    path = os.path.join(entry["search"], "arch.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)["choices"]


def markdown(picks: dict[tuple[str, str], dict[int, dict]], baseline: str) -> str:
    """The table of picks, then the paired differences against the `baseline` pick."""
    lines = ["| search | derive picks by | percentile (mean ± sd) | per seed | test acc | same pick as "
             f"{baseline} |", "|---|---|---|---|---|---|"]
    for (search, pick), by_seed in sorted(picks.items()):
        seeds = sorted(by_seed)
        values = [by_seed[s]["percentile"] for s in seeds]
        accs = [by_seed[s]["value"] for s in seeds if by_seed[s]["value"] is not None]
        base = picks.get((search, baseline), {})
        known = [s for s in seeds if s in base and None not in (_choices(by_seed[s]), _choices(base[s]))]
        same = sum(_choices(by_seed[s]) == _choices(base[s]) for s in known)
        lines.append(f"| {search} | {pick} | {mean_sd(values, 1)} | "
                     f"{', '.join(f's{s} {v:.1f}' for s, v in zip(seeds, values))} | {mean_sd(accs, 4) if accs else '-'} | "
                     f"{f'{same}/{len(known)}' if known else '-'} |")
    lines += ["", f"Paired on the same supernets: percentile of the pick minus that of the {baseline} pick", "",
              "| search | derive picks by | difference (mean ± sd) | better / worse / equal | sign test p | "
              "Wilcoxon p |", "|---|---|---|---|---|---|"]
    pooled: dict[str, dict[str, list[float]]] = {}         # pick -> search -> differences
    for (search, pick), by_seed in sorted(picks.items()):
        base = picks.get((search, baseline))
        if pick == baseline or not base:
            continue
        diffs = [by_seed[s]["percentile"] - base[s]["percentile"] for s in sorted(by_seed) if s in base]
        if diffs:
            lines.append(f"| {search} | {pick} | {_paired_cells(diffs)} |")
            pooled.setdefault(pick, {})[search] = diffs
    for pick, by_search in sorted(pooled.items()):
        if len(by_search) > 1:
            lines.append(f"| all searches | {pick} | {_paired_cells(sum(by_search.values(), []))} |")
    return "\n".join(lines) + "\n"


def _paired_cells(diffs: list[float]) -> str:
    """mean ± sd | better / worse / equal | sign test p | Wilcoxon p of paired differences."""
    better, worse = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    sign = stats.binomtest(better, better + worse).pvalue if better + worse else float("nan")
    nonzero = [d for d in diffs if d != 0]
    wilcoxon = stats.wilcoxon(nonzero).pvalue if len(nonzero) >= 2 else float("nan")
    return (f"{mean_sd(diffs, 1)} | {better} / {worse} / {len(diffs) - better - worse} | {sign:.3f} | "
            f"{wilcoxon:.3f}")


def versus(picks: dict[tuple[str, str], dict[int, dict]], first: str, second: str) -> str:
    """Searches `first` against `second` (e.g. reinforce against random search), per estimator of
    the pick: the difference of the mean percentiles and the probability of superiority (the
    share of seed pairs in which `first`'s pick is placed higher; ties count half)."""
    lines = ["", f"{first} against {second} (not paired: different supernets)", "",
             f"| derive picks by | {first} seeds | {second} seeds | difference of the means | "
             f"share of pairs with {first} ahead | Mann-Whitney p ({first} ahead, one-sided) |", "|---|---|---|---|---|---|"]
    for pick in sorted({p for s, p in picks if s == first} & {p for s, p in picks if s == second}):
        a = [e["percentile"] for e in picks[(first, pick)].values()]
        b = [e["percentile"] for e in picks[(second, pick)].values()]
        c = ahead(a, b)
        lines.append(f"| {pick} | {len(a)} | {len(b)} | {c['difference']:.1f} | {c['share']:.2f} | "
                     f"{c['p_ahead']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("placed", nargs="+", help="place_derived.py output files (JSON lines)")
    parser.add_argument("--baseline", default="one_shot", help="the pick the others are compared with")
    parser.add_argument("--versus", action="append", default=[], metavar="A:B",
                        help="searches A against searches B (e.g. reinforce:random), per estimator of the pick")
    args = parser.parse_args(argv)
    if any(len(v.split(":")) != 2 for v in args.versus):
        parser.error("--versus takes A:B")
    lines = []
    for path in args.placed:
        with open(path) as f:
            lines += table_lines(path, f.read()) if path.endswith(".md") else f.readlines()
    picks = load_picks(lines)
    sys.stdout.write(markdown(picks, args.baseline))
    for pair in args.versus:
        sys.stdout.write(versus(picks, *pair.split(":")))


if __name__ == "__main__":
    main()
