"""Write the arch.json of a uniformly random architecture (a baseline for derived ones).

    python -m experiments.random_arch --space micro_cnn --structure '{"num_nodes": 4}' --seed 0 --out random.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from enas.arch import save_json
from enas.spaces import build_space
from enas.strategies.base import uniform_architecture


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", required=True)
    parser.add_argument("--structure", default="{}", help="the space's structure as JSON")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    space = build_space(args.space, **json.loads(args.structure))
    arch = uniform_architecture(space.name, space.decisions(), np.random.default_rng(args.seed))
    save_json(args.out, space.arch_to_dict(arch, note=f"uniformly random, seed {args.seed}"))
    print(space.describe(arch))


if __name__ == "__main__":
    main()
