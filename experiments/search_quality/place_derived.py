"""Place derived architectures of finished searches among a trained random pool.

    python -m experiments.search_quality.place_derived /tmp/sq/pool /tmp/sq/macro_main/reinforce-seed0/search ...
    python -m experiments.search_quality.place_derived experiments/search_quality/pool24_s7.json <search> ... \
        --data-path /tmp/cifar10_batches

For a search interrupted before `enas-beats-random` wrote its report: each search's arch.json is
trained exactly as enas-beats-random trains a derived architecture (the harness's own
`ground_truth_jobs` + `train_architectures` + `runs.train_job`: the pool's recipe, the first
`average` train seeds, into <search>/../derived/), then placed among the pool's measurements
with the harness's `percentile`. The pool's recipe is the config stored in its job.json files,
so nothing here can train differently from the pool (`--data-path` only says where the same data
lies on this machine). The pool is its folder or the file `pool_table.py` exported from it.
Prints one JSON line per search.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from enas.arch import load_arch_file
from enas.build import build_space
from enas.parallel import build_engine
from enas.quality import ground_truth_jobs, placement, train_architectures
from enas.ranking import measurements
from enas.runs import train_job
from experiments.search_quality.pool_table import load_pool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pool", help="the pool's enas-beats-random out_dir, or its table from pool_table.py")
    parser.add_argument("searches", nargs="+")
    parser.add_argument("--seeds", default="0,1,2,3,4,5")
    parser.add_argument("--average", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data-path", help="where the pool's dataset lies here (default: the path it was trained from)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    table, config = load_pool(args.pool, seeds)
    if args.data_path:
        config = {**config, "data": {**config["data"], "path": args.data_path}}
    measured, _ = measurements(table, args.average)
    space = build_space(config["space"])
    engine = build_engine("process", args.workers)
    try:
        for search in args.searches:
            arch_path = os.path.join(search, "arch.json")
            arch = space.arch_from_dict(load_arch_file(arch_path), source=arch_path)
            out = os.path.join(os.path.dirname(os.path.abspath(search)), "derived")
            jobs = ground_truth_jobs(config, space, [arch], seeds[:args.average], out)
            results = train_architectures(train_job, jobs, engine)
            failed = [r.get("error", "no test metrics") for r in results if "test" not in r]
            if failed:      # e.g. another process trains the same architecture into the same folder
                raise SystemExit(f"{search}: {len(failed)} of {len(results)} trainings failed: {failed[0]}")
            value = float(np.mean([r["test"]["acc"] for r in results]))
            per, mean = placement(value, measured)
            print(json.dumps({"search": search, "value": value, "percentile": mean,
                              "percentiles": per, "trainings": [r["test"]["acc"] for r in results]}), flush=True)
    finally:
        engine.shutdown()


if __name__ == "__main__":
    main()
