"""enas-train: train an architecture from scratch and report its test metric.

    enas-train arch=runs/search/<...>/arch.json experiment=smoke_ptb
    enas-train arch=... hydra.run.dir=runs/train/x resume=true trainer.epochs=20
"""

from __future__ import annotations

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from enas.cli.common import enas_main, plain, user_errors
from enas.runs import run_train


@enas_main("train")
@user_errors
def main(cfg: DictConfig) -> None:
    """Console script `enas-train`."""
    run_train(plain(cfg), HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
