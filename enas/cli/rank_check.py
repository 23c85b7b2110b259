"""enas-rank-check: does the one-shot supernet rank architectures as training them from scratch does?

    enas-rank-check run_dir=runs/search/<...> num_archs=20 ground_truth.seeds=[0,1]

Reads the search's checkpoint and config (like enas-derive), draws `num_archs` architectures
uniformly (seeded), scores each with the supernet on the validation split (or at least
`one_shot.valid_images` images; `estimator.name=inherit estimator.steps=k`: after k training
steps from the shared weights; `standalone`: after k steps from scratch, the baseline), trains
each from scratch with the search config's `trainer` recipe (the enas-train code path) once
per seed of `ground_truth.seeds` (into <run_dir>/rank_check_runs/),
and reports Kendall's tau, Spearman's rho and the top-20% overlap with bootstrap intervals,
beside the noise ceiling (tau between two trainings). Writes <run_dir>/rank_check.json,
rank_check.md and rank_check.png (also in TensorBoard: <run_dir>/tb, image quality/rank_check);
`report=<stem>` names them otherwise.
The run itself is `enas.runs.run_rank_check`.
"""

from __future__ import annotations

import os
import sys

from omegaconf import DictConfig

from enas.cli.common import check_run_dir_argument, enas_main, plain, user_errors
from enas.cli.harness import check_average, check_engine, check_seeds, check_split, parse_overrides
from enas.evaluators import EVALUATORS
from enas.runs import RANK_BY, run_rank_check
from enas.utils import UserError


def check_options(cfg: dict) -> dict:
    """The argument checks of enas-rank-check; returns the parsed ground_truth.overrides."""
    truth, stats = cfg["ground_truth"], cfg["stats"]
    if cfg["num_archs"] < 2:
        raise UserError(f"num_archs={cfg['num_archs']}: need at least 2 architectures to compare rankings")
    check_split(truth["split"])
    check_seeds(truth["seeds"], "ground_truth.seeds")
    check_average(truth["average"], truth["seeds"], "ground_truth.average")
    check_engine(truth["engine"], truth["workers"], "ground_truth.")
    if cfg["one_shot"]["bn"] not in ("auto", "batch", "recalibrate"):
        raise UserError(f"one_shot.bn={cfg['one_shot']['bn']!r}: choose auto, batch or recalibrate")
    check_estimator(cfg["estimator"])
    if not cfg["report"] or os.sep in cfg["report"] or cfg["report"].startswith("."):
        raise UserError(f"report={cfg['report']!r}: give a file name stem without a directory, e.g. rank_check_inherit")
    if not 0 < stats["top_fraction"] <= 1 or not 0 < stats["level"] < 1:
        raise UserError(f"stats.top_fraction={stats['top_fraction']}, stats.level={stats['level']}: "
                        f"give top_fraction in (0, 1] and level in (0, 1)")
    return parse_overrides(truth["overrides"], "ground_truth.overrides")


def check_estimator(estimator: dict) -> None:
    """estimator.name is one_shot (no steps, one score) or inherit / standalone with steps >= 1,
    lr > 0, repeats >= 1 and recalibrate_bn >= 0; rank_by is score or loss."""
    name, steps, lr, repeats = estimator["name"], estimator["steps"], estimator["lr"], estimator["repeats"]
    if name not in EVALUATORS:          # the search evaluators of the same names score the architectures
        raise UserError(f"estimator.name={name!r}: choose one_shot, inherit or standalone")
    if name == "one_shot" and steps:
        raise UserError(f"estimator.steps={steps}: one_shot scores the shared weights without training; "
                        f"train them first with estimator.name=inherit")
    if name != "one_shot" and steps < 1:
        raise UserError(f"estimator.name={name} trains each architecture before scoring it: give estimator.steps >= 1")
    if lr is not None and not lr > 0:
        raise UserError(f"estimator.lr={lr}: give a positive learning rate (or null: the recipe's)")
    if repeats < 1 or (name == "one_shot" and repeats != 1):
        raise UserError(f"estimator.repeats={repeats}: inherit / standalone average repeats >= 1 differently "
                        f"seeded trainings; one_shot scores are deterministic (repeats=1)")
    if estimator["rank_by"] not in RANK_BY:
        raise UserError(f"estimator.rank_by={estimator['rank_by']!r}: choose one of {', '.join(RANK_BY)} "
                        f"(the estimator's score, or its validation loss)")
    batches = estimator["recalibrate_bn"]
    if batches < 0 or (name == "one_shot" and batches):
        raise UserError(f"estimator.recalibrate_bn={batches}: a number of training batches >= 0 for inherit / "
                        f"standalone (one-shot scores: one_shot.bn=recalibrate one_shot.bn_batches=n)")


@enas_main("rank_check")
@user_errors
def _hydra_main(cfg: DictConfig) -> None:
    options = plain(cfg)
    run_rank_check(options, check_options(options))


def main() -> None:
    """Console script `enas-rank-check`."""
    check_run_dir_argument(sys.argv[1:])
    _hydra_main()


if __name__ == "__main__":
    main()
