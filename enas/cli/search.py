"""enas-search: search an architecture (omega/theta alternation), with checkpoints and TensorBoard.

    enas-search experiment=smoke_ptb hydra.run.dir=runs/demo
    enas-search experiment=smoke_ptb hydra.run.dir=runs/demo resume=true search.epochs=4
"""

from __future__ import annotations

import logging
import os

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from enas.build import build_search, start_process
from enas.checkpoint import check_compatible, checkpoint_exists, load_latest_checkpoint
from enas.cli.common import enas_main, plain, user_errors
from enas.logs import format_duration, run_log
from enas.runlock import locks_run_dir
from enas.tb import open_writer
from enas.utils import UserError

log = logging.getLogger(__name__)


@locks_run_dir(lambda config, run_dir, *args, **kwargs: run_dir)
def run_search(config: dict, run_dir: str, overrides: list[str] | tuple = (), hints: bool = True) -> dict:
    """Search into `run_dir` (resume its checkpoint when config["resume"]); the last epoch summary.

    `overrides`: the command line that composed `config` (kept in the checkpoint, so enas-derive
    can print the matching enas-train command); `hints`: print what to run next.
    """
    device, threads = start_process(config)
    checkpoint = os.path.join(run_dir, "checkpoint.pt")
    if checkpoint_exists(checkpoint) and not config["resume"]:
        raise UserError(f"{checkpoint} exists: continue it with resume=true, or choose another hydra.run.dir")
    if config["resume"] and not checkpoint_exists(checkpoint):
        raise UserError(f"resume=true, but {checkpoint} does not exist (check hydra.run.dir)")
    with run_log(os.path.join(run_dir, "search.log")):
        writer = open_writer(run_dir)
        loop = build_search(config, run_dir, device, writer)
        loop.metadata["overrides"] = list(overrides)
        try:
            if config["resume"]:
                _resume(loop, checkpoint, device)
                if loop.epoch >= loop.s.epochs:
                    log.info(f"{run_dir}: the search is finished ({loop.epoch}/{loop.s.epochs} epochs); extend it "
                             f"with resume=true search.epochs=<more than {loop.s.epochs}>, or derive it: "
                             f"enas-derive run_dir={run_dir}")
                    return dict(loop.history[-1]) if loop.history else {}
            shared = (f"{sum(p.numel() for p in loop.supernet.parameters()):,} shared parameters"
                      if loop.supernet is not None else "no supernet")
            log.info(f"search: space {loop.space.name}, strategy {loop.strategy.name}, evaluator "
                     f"{loop.evaluator.name}, {shared}, device {device}, {threads} CPU threads")
            log.info(f"run dir: {run_dir}")
            summary = loop.run()
        finally:
            writer.close()
            loop.evaluator.close()      # worker processes of standalone evaluators
        log.info(f"done in {format_duration(summary['search_seconds'])}. checkpoint: {loop.checkpoint_path}")
        if hints:
            log.info(f"TensorBoard: tensorboard --logdir {os.path.join(run_dir, 'tb')}")
            log.info(f"next: enas-derive run_dir={run_dir}")
    return summary


def _resume(loop, checkpoint: str, device) -> None:
    """Load the run's checkpoint into `loop`, refusing one written by another space or size."""
    state = load_latest_checkpoint(checkpoint, map_location=device, set_aside=True, kind="search")
    check_compatible(checkpoint, state, {"space": loop.space.name, "structure": loop.space.structure(),
                                         "sizes": loop.metadata["sizes"], "strategy_name": loop.strategy.name})
    overrides = loop.metadata["overrides"]
    loop.load_state_dict(state)
    loop.metadata["overrides"] = state.get("overrides") or overrides
    log.info(f"resumed {checkpoint} at epoch {loop.epoch + 1}, step {loop.global_step}")


@enas_main("search")
@user_errors
def main(cfg: DictConfig) -> None:
    """Console script `enas-search`."""
    hydra_cfg = HydraConfig.get()
    run_search(plain(cfg), hydra_cfg.runtime.output_dir, list(hydra_cfg.overrides.task))


if __name__ == "__main__":
    main()
