"""enas-train: train an architecture from scratch and report its test metric.

    enas-train arch=runs/search/<...>/arch.json experiment=smoke_ptb
    enas-train arch=... hydra.run.dir=runs/train/x resume=true trainer.epochs=20
"""

from __future__ import annotations

import logging
import os

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from enas.arch import load_arch_file, save_json
from enas.build import build_training
from enas.checkpoint import check_compatible, load_checkpoint
from enas.cli.common import CONFIG_DIR, plain, user_errors
from enas.final import perplexity_or_accuracy
from enas.logs import run_log
from enas.tb import open_writer
from enas.utils import UserError, pick_device

log = logging.getLogger(__name__)


def run_train(cfg: dict, run_dir: str) -> dict:
    """Train cfg["arch"] from scratch into `run_dir`; the result dict (also written to result.json)."""
    device = pick_device(cfg["device"])
    arch_path = cfg["arch"]
    arch_data = load_arch_file(arch_path)
    checkpoint = os.path.join(run_dir, "checkpoint.pt")
    if os.path.exists(checkpoint) and not cfg["resume"]:
        raise UserError(f"{checkpoint} exists: continue it with resume=true, or choose another hydra.run.dir")
    with run_log(os.path.join(run_dir, "train.log")):
        writer = open_writer(run_dir)
        try:
            space, arch, trainer = build_training(cfg, arch_data, arch_path, device, run_dir, writer)
            if cfg["resume"]:
                state = load_checkpoint(checkpoint, map_location=device, kind="train")
                check_compatible(checkpoint, state, {"space": space.name, "structure": space.structure(),
                                                     "sizes": trainer.metadata["sizes"],
                                                     "arch": trainer.metadata["arch"]})
                trainer.load_state_dict(state)
                log.info(f"resumed {checkpoint} at epoch {trainer.epoch + 1}")
            params = sum(p.numel() for p in trainer.model.parameters())
            log.info(f"train: {space.name} {space.describe(arch)[:120]}")
            log.info(f"{params:,} parameters, device {device}, run dir {run_dir}")
            trainer.run()
            valid = trainer.task.evaluate(trainer.model, "valid", None, None)
            test = trainer.test()
        finally:
            writer.close()
        result = {"arch": os.path.abspath(arch_path), "epochs": trainer.epoch, "params": params,
                  "valid": valid, "test": test}
        save_json(os.path.join(run_dir, "result.json"), result)
        log.info(f"final: valid {perplexity_or_accuracy(trainer.task, valid)}  "
                 f"test {perplexity_or_accuracy(trainer.task, test)}")
        log.info(f"wrote {os.path.join(run_dir, 'result.json')}; TensorBoard: tensorboard --logdir "
                 f"{os.path.join(run_dir, 'tb')}")
    return result


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@user_errors
def main(cfg: DictConfig) -> None:
    """Console script `enas-train`."""
    run_train(plain(cfg), HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
