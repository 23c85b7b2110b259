"""enas-derive: the best architecture of a search run -> <run_dir>/arch.json + arch.png.

    enas-derive run_dir=runs/search/<...>
    enas-derive run_dir=runs/search/<...> space.target=mypkg.models:MyNet   # a custom space: name it again
"""

from __future__ import annotations

import sys

from omegaconf import DictConfig

from enas.cli.common import check_run_dir_argument, enas_main, plain, user_errors
from enas.runs import run_derive


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
