"""enas-rank-check: does the one-shot supernet rank architectures as standalone training does?

    enas-rank-check run_dir=runs/search/<...> num_archs=20 standalone.steps_per_epoch=50 standalone.workers=2

Reads the search's checkpoint and config (like enas-derive), draws `num_archs` architectures
uniformly (seeded), scores each with the supernet on the fixed validation subset, trains each
standalone with the low-fidelity knobs of `standalone.*`, prints both rankings and Kendall's
tau, and writes <run_dir>/rank_check.json and rank_check.md.
"""

from __future__ import annotations

import os

import hydra
from omegaconf import DictConfig

from enas.arch import save_json
from enas.checkpoint import load_latest_checkpoint
from enas.cli.common import CONFIG_DIR, plain, user_errors
from enas.cli.search import build_search
from enas.evaluators import Standalone
from enas.fileio import write_text
from enas.ranking import format_rank_table, rank_check, sample_architectures
from enas.runlock import locks_run_dir
from enas.search_loop import print_flush
from enas.utils import UserError, pick_device


@locks_run_dir(lambda cfg: cfg["run_dir"], create=False)
def run_rank_check(cfg: dict) -> dict:
    run_dir = cfg["run_dir"]
    checkpoint = os.path.join(run_dir, "checkpoint.pt")
    device = pick_device(cfg["device"])
    state = load_latest_checkpoint(checkpoint, map_location=device, warn=print_flush)
    if state.get("kind") != "search":
        raise UserError(f"{checkpoint}: a {state.get('kind')!r} checkpoint, not a search run")
    search_cfg = state["config"]
    loop = build_search(search_cfg, run_dir, device)
    if loop.supernet is None:
        raise UserError(f"{checkpoint}: the search used evaluator={search_cfg['evaluator']['name']!r}, which has "
                        f"no supernet; the rank check compares one-shot scores with standalone training")
    loop.load_state_dict(state)
    if cfg["num_archs"] < 2:
        raise UserError(f"num_archs={cfg['num_archs']}: need at least 2 architectures to compare rankings")
    valid_batches = cfg["valid_batches"] if cfg["valid_batches"] is not None else search_cfg["derive"]["valid_batches"]
    archs = sample_architectures(loop.space, cfg["num_archs"], cfg["seed"])
    context = {"config": search_cfg, "sizes": loop.metadata["sizes"], "run_dir": run_dir, "device": str(device)}
    evaluator = Standalone(loop.task, loop.space, None, context, journal="rank_check_evaluations.jsonl",
                           printer=print_flush, **cfg["standalone"])
    try:
        report = rank_check(loop.task, loop.space, loop.supernet, archs, evaluator, valid_batches, print_flush)
    finally:
        evaluator.close()
    report.update(run_dir=os.path.abspath(run_dir), seed=cfg["seed"], valid_batches=valid_batches,
                  standalone=cfg["standalone"], search_step=loop.global_step)
    save_json(os.path.join(run_dir, "rank_check.json"), report)
    write_text(os.path.join(run_dir, "rank_check.md"), f"# Ranking check: {loop.space.name}, search step "
               f"{loop.global_step}\n\n" + format_rank_table(report, markdown=True) + "\n")
    print_flush(format_rank_table(report))
    print_flush(f"wrote {os.path.join(run_dir, 'rank_check.json')} and rank_check.md")
    return report


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="rank_check")
@user_errors
def main(cfg: DictConfig) -> None:
    """Console script `enas-rank-check`."""
    run_rank_check(plain(cfg))


if __name__ == "__main__":
    main()
