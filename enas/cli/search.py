"""enas-search: search an architecture (omega/theta alternation), with checkpoints and TensorBoard.

    enas-search experiment=smoke_ptb hydra.run.dir=runs/demo
    enas-search experiment=smoke_ptb hydra.run.dir=runs/demo resume=true search.epochs=4
"""

from __future__ import annotations

import logging
import os

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from enas.build import build_search
from enas.checkpoint import check_compatible, load_checkpoint
from enas.cli.common import CONFIG_DIR, plain, user_errors
from enas.logs import run_log
from enas.tb import open_writer
from enas.utils import UserError, pick_device

log = logging.getLogger(__name__)


def run_search(config: dict, run_dir: str) -> dict:
    """Search into `run_dir` (resume its checkpoint when config["resume"]); the last epoch summary."""
    device = pick_device(config["device"])
    checkpoint = os.path.join(run_dir, "checkpoint.pt")
    if os.path.exists(checkpoint) and not config["resume"]:
        raise UserError(f"{checkpoint} exists: continue it with resume=true, or choose another hydra.run.dir")
    with run_log(os.path.join(run_dir, "search.log")):
        writer = open_writer(run_dir)
        loop = build_search(config, run_dir, device, writer)
        try:
            if config["resume"]:
                state = load_checkpoint(checkpoint, map_location=device, kind="search")
                check_compatible(checkpoint, state, {"space": loop.space.name, "structure": loop.space.structure(),
                                                     "sizes": loop.metadata["sizes"],
                                                     "strategy_name": loop.strategy.name})
                loop.load_state_dict(state)
                log.info(f"resumed {checkpoint} at epoch {loop.epoch + 1}, step {loop.global_step}")
            shared = (f"{sum(p.numel() for p in loop.supernet.parameters()):,} shared parameters"
                      if loop.supernet is not None else "no supernet")
            log.info(f"search: space {loop.space.name}, strategy {loop.strategy.name}, evaluator "
                     f"{loop.evaluator.name}, {shared}, device {device}")
            log.info(f"run dir: {run_dir}")
            summary = loop.run()
        finally:
            writer.close()
            loop.evaluator.close()      # worker processes of standalone evaluators
        log.info(f"done. checkpoint: {loop.checkpoint_path}")
        log.info(f"TensorBoard: tensorboard --logdir {os.path.join(run_dir, 'tb')}")
        log.info(f"next: enas-derive run_dir={run_dir}")
    return summary


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="search")
@user_errors
def main(cfg: DictConfig) -> None:
    """Console script `enas-search`."""
    run_search(plain(cfg), HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
