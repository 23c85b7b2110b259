"""enas-derive: the best architecture of a search run -> <run_dir>/arch.json + arch.png.

    enas-derive run_dir=runs/search/<...>
"""

from __future__ import annotations

import logging
import os
import sys

from omegaconf import DictConfig

from enas.arch import save_json
from enas.build import clamp_batches, restore_search, start_process, train_overrides
from enas.cli.common import enas_main, check_run_dir_argument, plain, user_errors
from enas.derive import format_table, rank_candidates
from enas.draw import save_png
from enas.logs import Eta, run_log
from enas.runlock import locks_run_dir
from enas.ranking import rank_by_recorded_rewards
from enas.utils import UserError, seed_everything

log = logging.getLogger(__name__)


@locks_run_dir(lambda cfg: cfg["run_dir"], create=False)
def run_derive(cfg: dict) -> dict:
    """Rank the candidates of the search in cfg["run_dir"]; the arch.json content it wrote."""
    run_dir = cfg["run_dir"]
    device, _ = start_process(cfg)
    with run_log(os.path.join(run_dir, "derive.log")):
        loop = restore_search(run_dir, device)
        search_cfg = loop.metadata["config"]
        options = {k: cfg[k] if cfg[k] is not None else search_cfg["derive"][k]
                   for k in ("num_samples", "valid_batches", "seed")}
        if loop.supernet is not None:
            options["valid_batches"] = clamp_batches("derive.valid_batches", options["valid_batches"],
                                                     loop.task.num_batches("valid"))
        seed_everything(options["seed"])
        eta = Eta(1)
        ranked = _rank(loop, options)
        data = _write_arch(loop, ranked, options, run_dir, cfg["top"], cfg.get("hints", True))
        log.info(f"derive done: {eta.text()}")
    return data


def _rank(loop, options: dict) -> list:
    """(architecture, metrics, score) of every candidate, best first."""
    if loop.supernet is None:
        # Standalone evaluation: no shared weights to score with; rank by the rewards the
        # children earned when they were trained during the search.
        ranked = rank_by_recorded_rewards(loop.strategy, options["num_samples"], loop.task)
        log.info(f"derive: {len(ranked)} best architectures seen by strategy {loop.strategy.name}, ranked by "
                 f"their standalone rewards ({loop.evaluator.name} evaluator)")
        if not ranked:
            raise UserError(f"{loop.checkpoint_path}: the search recorded no evaluated architecture yet")
        return ranked
    candidates = loop.strategy.proposals(options["num_samples"])
    log.info(f"derive: {len(candidates)} candidates from strategy {loop.strategy.name}, each scored on the "
             f"first {options['valid_batches']} validation batches")
    return rank_candidates(loop.task, loop.supernet, candidates, options["valid_batches"], progress=True)


def _write_arch(loop, ranked: list, options: dict, run_dir: str, top: int, hints: bool) -> dict:
    """arch.json and arch.png of the best candidate; the ranked table on the console."""
    best, metrics, score = ranked[0]
    space, metric = loop.space, loop.task.metric
    search_cfg = loop.metadata["config"]
    data = space.arch_to_dict(
        best, score=score, metrics=metrics, derived_from=os.path.abspath(run_dir),
        derive=options, search_step=loop.global_step, search_data=search_cfg["data"],
        ranking=[{"score": s, metric: m[metric], "choices": a.plain_choices()} for a, m, s in ranked[:top]])
    arch_path = os.path.join(run_dir, "arch.json")
    save_json(arch_path, data)
    png_path = os.path.join(run_dir, "arch.png")
    save_png(space.graph(best), png_path, title=f"{space.name}: score {score:.4f}")
    log.info(format_table(space, ranked, metric, top))
    log.info(f"best: {space.describe(best)}")
    log.info(f"wrote {arch_path} and {png_path}")
    if hints:
        command = " ".join(["enas-train", f"arch={arch_path}", *train_overrides(loop.metadata.get("overrides", []))])
        log.info(f"next: {command}")
    return data


@enas_main("derive")
@user_errors
def _hydra_main(cfg: DictConfig) -> None:
    run_derive(plain(cfg))


def main() -> None:
    """Console script `enas-derive`."""
    check_run_dir_argument(sys.argv[1:])
    _hydra_main()


if __name__ == "__main__":
    main()
