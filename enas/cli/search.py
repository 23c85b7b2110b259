"""enas-search: search an architecture (omega/theta alternation), with checkpoints and TensorBoard.

    enas-search experiment=smoke_ptb hydra.run.dir=runs/demo
    enas-search experiment=smoke_ptb hydra.run.dir=runs/demo resume=true search.epochs=4
    enas-search space=custom space.target=mypkg.models:MyNet data=image_folder data.path=images/ trainer=cnn
"""

from __future__ import annotations

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from enas.cli.common import enas_main, plain, user_errors
from enas.runs import run_search


@enas_main("search")
@user_errors
def main(cfg: DictConfig) -> None:
    """Console script `enas-search`."""
    hydra_cfg = HydraConfig.get()
    run_search(plain(cfg), hydra_cfg.runtime.output_dir, list(hydra_cfg.overrides.task))


if __name__ == "__main__":
    main()
