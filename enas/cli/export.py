"""enas-export: the trained network of an enas-train run -> model.pt2 + state_dict.pt + arch.json.

    enas-export run_dir=runs/train/<...>                      # writes <run_dir>/export/
    enas-export run_dir=runs/train/<...> out_dir=model/ space.target=mypkg.models:MyNet   # a custom space

model.pt2 runs with plain torch (torch.export.load(path).module()); state_dict.pt + arch.json
load back into the module with enas.load_model(out_dir). See enas/deploy.py.
"""

from __future__ import annotations

import sys

from omegaconf import DictConfig

from enas.cli.common import check_run_dir_argument, enas_main, plain, user_errors
from enas.runs import run_export


@enas_main("export")
@user_errors
def _hydra_main(cfg: DictConfig) -> None:
    run_export(plain(cfg))


def main() -> None:
    """Console script `enas-export`."""
    check_run_dir_argument(sys.argv[1:], kind="train")
    _hydra_main()


if __name__ == "__main__":
    main()
