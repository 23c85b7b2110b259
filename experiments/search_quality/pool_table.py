"""A trained random pool as one small JSON file, so that later sessions can place picks in it.

    python -m experiments.search_quality.pool_table /tmp/sq/pool24 > experiments/search_quality/pool24_s7.json

    python -m experiments.search_quality.pool_table experiments/search_quality/pool12_micro.json --ceilings

A pool (the `random/` folder of `enas-beats-random`) is 144 trainings, an hour on 2 CPU cores,
and lives in a scratch folder that a new machine does not keep. What placing a derived
architecture needs from it is small: each architecture, its test accuracy under every training
seed, and the recipe the trainings used (their job.json). `place_derived.py` reads either the
pool folder or this file. `--ceilings` prints instead how the noise ceiling grows with the
trainings averaged into a measurement (Kendall tau over every split, `enas.ranking.split_ceilings`).
"""

from __future__ import annotations

import argparse
import glob
import json
import os

from enas.ranking import split_ceilings

POOL_TABLE_VERSION = 1


def export_pool(pool_dir: str, seeds: list[int]) -> dict:
    """The pool's architectures, test accuracies [seed][arch] and recipe (the first job.json)."""
    arch_dirs = sorted(glob.glob(os.path.join(pool_dir, "random", "arch*")))
    if not arch_dirs:
        raise ValueError(f"{pool_dir}: no random/arch* folders (not an enas-beats-random out_dir)")
    archs, table = [], [[] for _ in seeds]
    for arch_dir in arch_dirs:
        with open(os.path.join(arch_dir, "arch.json")) as f:
            archs.append({"name": os.path.basename(arch_dir), "arch": json.load(f)})
        for row, seed in zip(table, seeds):
            result_path = os.path.join(arch_dir, f"seed{seed}", "result.json")
            if not os.path.exists(result_path):
                raise ValueError(f"{result_path}: missing (is the pool still training?)")
            with open(result_path) as f:
                row.append(json.load(f)["test"]["acc"])
    with open(os.path.join(arch_dirs[0], f"seed{seeds[0]}", "job.json")) as f:
        config = json.load(f)
    return {"version": POOL_TABLE_VERSION, "metric": "test acc", "seeds": seeds, "archs": archs,
            "test_acc": table, "config": config}


def load_pool(path: str, seeds: list[int]) -> tuple[list[list[float]], dict]:
    """Test accuracy [seed][arch] for `seeds` and the recipe, from a pool folder or an exported file."""
    if os.path.isdir(path):
        pool = export_pool(path, seeds)
    else:
        with open(path) as f:
            pool = json.load(f)
        if pool.get("version") != POOL_TABLE_VERSION:
            raise ValueError(f"{path}: not a pool table of version {POOL_TABLE_VERSION}")
    missing = [s for s in seeds if s not in pool["seeds"]]
    if missing:
        raise ValueError(f"{path}: no trainings with seeds {missing} (it has {pool['seeds']})")
    return [pool["test_acc"][pool["seeds"].index(s)] for s in seeds], pool["config"]


def ceilings_markdown(table: list[list[float]]) -> str:
    """Per number of trainings averaged into a measurement (1 up to half the seeds): the noise
    ceiling over every split of the seeds into two such measurements."""
    lines = ["| trainings per measurement | splits | noise-ceiling tau, mean | min | max |", "|---|---|---|---|---|"]
    for k in range(1, len(table) // 2 + 1):
        c = split_ceilings(table, k)
        if c:
            lines.append(f"| {k} | {c['splits']} | {c['mean']:.3f} | {c['min']:.3f} | {c['max']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pool", help="an enas-beats-random out_dir with a trained random/ pool (or, with "
                                     "--ceilings, a table this command exported)")
    parser.add_argument("--seeds", default="0,1,2,3,4,5")
    parser.add_argument("--ceilings", action="store_true", help="print the noise ceiling per trainings averaged")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.ceilings:
        print(ceilings_markdown(load_pool(args.pool, seeds)[0]), end="")
    else:
        print(json.dumps(export_pool(args.pool, seeds), indent=1))


if __name__ == "__main__":
    main()
