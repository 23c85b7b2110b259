"""enas-rank-check: does the one-shot supernet rank architectures as standalone training does?

    enas-rank-check run_dir=runs/search/<...> num_archs=20 standalone.steps_per_epoch=50 standalone.workers=2

Reads the search's checkpoint and config (like enas-derive), draws `num_archs` architectures
uniformly (seeded), scores each with the supernet on the fixed validation subset, trains each
standalone with the low-fidelity knobs of `standalone.*`, prints both rankings and Kendall's
tau, and writes <run_dir>/rank_check.json and rank_check.md.
"""

from __future__ import annotations

import logging
import os
import sys

from omegaconf import DictConfig

from enas.arch import save_json
from enas.build import build_evaluator, restore_search, start_process
from enas.cli.common import enas_main, check_run_dir_argument, plain, user_errors
from enas.fileio import write_text
from enas.logs import Eta, run_log
from enas.runlock import locks_run_dir
from enas.ranking import format_rank_table, rank_check, sample_architectures
from enas.runs import user_targets
from enas.utils import UserError

log = logging.getLogger(__name__)


@locks_run_dir(lambda cfg: cfg["run_dir"], create=False)
def run_rank_check(cfg: dict) -> dict:
    """One-shot vs standalone ranking of cfg["num_archs"] architectures; the report dict."""
    run_dir = cfg["run_dir"]
    device, _ = start_process(cfg)
    eta = Eta(1)
    if cfg["num_archs"] < 2:
        raise UserError(f"num_archs={cfg['num_archs']}: need at least 2 architectures to compare rankings")
    with run_log(os.path.join(run_dir, "rank_check.log")):
        loop = restore_search(run_dir, device, user_targets(cfg))
        search_cfg = loop.metadata["config"]
        if loop.supernet is None:
            raise UserError(f"{loop.checkpoint_path}: the search used evaluator={search_cfg['evaluator']['name']!r}, "
                            f"which has no supernet; the rank check compares one-shot scores with standalone training")
        valid_batches = cfg["valid_batches"] if cfg["valid_batches"] is not None else search_cfg["derive"]["valid_batches"]
        archs = sample_architectures(loop.space, cfg["num_archs"], cfg["seed"])
        evaluator = build_evaluator({**search_cfg, "evaluator": {"name": "standalone"}}, loop.task, loop.space,
                                    None, loop.metadata["sizes"], run_dir, device,
                                    options={**cfg["standalone"], "journal": "rank_check_evaluations.jsonl"})
        try:
            report = rank_check(loop.task, loop.space, loop.supernet, archs, evaluator, valid_batches)
        finally:
            evaluator.close()
        report.update(run_dir=os.path.abspath(run_dir), seed=cfg["seed"], valid_batches=valid_batches,
                      standalone=cfg["standalone"], search_step=loop.global_step)
        save_json(os.path.join(run_dir, "rank_check.json"), report)
        write_text(os.path.join(run_dir, "rank_check.md"), f"# Ranking check: {loop.space.name}, search step "
                   f"{loop.global_step}\n\n" + format_rank_table(report, markdown=True) + "\n")
        log.info(format_rank_table(report))
        log.info(f"wrote {os.path.join(run_dir, 'rank_check.json')} and rank_check.md ({eta.text()})")
    return report


@enas_main("rank_check")
@user_errors
def _hydra_main(cfg: DictConfig) -> None:
    run_rank_check(plain(cfg))


def main() -> None:
    """Console script `enas-rank-check`."""
    check_run_dir_argument(sys.argv[1:])
    _hydra_main()


if __name__ == "__main__":
    main()
