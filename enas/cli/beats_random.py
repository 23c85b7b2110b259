"""enas-beats-random: does the searched architecture beat architectures drawn at random?

    enas-beats-random experiment=quality_fashion_micro strategies=[reinforce] seeds=[0,1,2] num_random=12 \
        out_dir=runs/beats_random/fashion

1. Draws `num_random` architectures uniformly (seed `random_seed`) and trains each from scratch
   with the experiment's `trainer` recipe once per seed of `train_seeds`, into
   <out_dir>/random/ (shared by every search run). The mean of each `average` consecutive
   seeds is one measurement; two measurements give the pool's noise ceiling.
2. For each strategy and seed: search, derive, train the derived architecture (exactly as
   `enas-compare`, into <out_dir>/<strategy>-seed<n>/), then train it as one pool measurement
   is trained (the first `average` train seeds, into <out_dir>/derived/).
3. Writes <out_dir>/beats_random.{md,csv,json,png}: each derived architecture's percentile
   among the random ones (per run, mean ± std per strategy), and the comparison tables.

`seeds=[]` trains only the random pool: a calibration of the recipe (its noise ceiling).
`resume=true` continues an interrupted run in the same out_dir (as enas-compare's; the pool and
derived trainings always reuse what is finished).
This module checks the options and composes each search run's config (as enas-compare); the
run itself is `enas.runs.run_beats_random`.
"""

from __future__ import annotations

import os

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from enas.cli.common import enas_main, plain, user_errors
from enas.cli.compare import (check_lists, check_out_dir, compose_run_config, forwarded_overrides, override_key,
                              run_compare, run_dirs, write_comparison)
from enas.cli.harness import check_average, check_engine, check_seeds, check_split
from enas.runs import run_beats_random
from enas.utils import UserError

# Keys of beats_random.yaml that are not forwarded to the search runs (compare drops its own).
OWN_KEYS = ("num_random", "random_seed", "train_seeds", "average", "split", "workers", "engine")


def check_options(options: dict, out_dir: str, overrides: list[str]) -> None:
    """The argument checks of enas-beats-random (before any training starts)."""
    strategies, seeds = options["strategies"], options["seeds"]
    if seeds:
        check_lists(strategies, seeds)
        check_out_dir(out_dir, strategies, seeds, overrides, options["resume"])
    check_split(options["split"])
    check_seeds(options["train_seeds"], "train_seeds")
    check_average(options["average"], options["train_seeds"], "average")
    check_engine(options["engine"], options["workers"], "")
    if options["num_random"] < 2:
        raise UserError(f"num_random={options['num_random']}: need at least 2 random architectures")


def search_runs(options: dict, overrides: list[str], out_dir: str):
    """enas-compare's runs of every strategy and seed (comparison.md/.csv written); each row
    with the path of its derived arch.json."""
    def run() -> list[dict]:
        rows = run_compare(options["strategies"], options["seeds"], out_dir, overrides, options["derive_top"],
                           options["resume"])
        write_comparison(out_dir, rows, f"Strategy comparison: {' '.join(overrides) or 'defaults'}")
        return [{**row, "arch": os.path.join(run_dirs(out_dir, row["strategy"], row["seed"])[0], "arch.json")}
                for row in rows]
    return run


@enas_main("beats_random")
@user_errors
def main(cfg: DictConfig) -> None:
    """Console script `enas-beats-random`."""
    hydra_cfg = HydraConfig.get()
    out_dir = hydra_cfg.runtime.output_dir        # ${out_dir}, resolved once by Hydra
    options = plain(cfg)
    task = [o for o in hydra_cfg.overrides.task if override_key(o) not in OWN_KEYS]
    overrides = forwarded_overrides(task, options["overrides"])
    check_options(options, out_dir, overrides)
    first = options["strategies"][0] if options["strategies"] else "random"
    config = plain(compose_run_config(overrides, first, options["train_seeds"][0]))
    run_beats_random(options, config, out_dir, overrides, search_runs(options, overrides, out_dir))


if __name__ == "__main__":
    main()
