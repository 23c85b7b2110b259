"""enas-derive: the best architecture of a search run -> <run_dir>/arch.json + arch.png.

    enas-derive run_dir=runs/search/<...>
"""

from __future__ import annotations

import os
import sys

import hydra
from omegaconf import DictConfig

from enas.arch import save_json
from enas.checkpoint import load_latest_checkpoint
from enas.cli.common import CONFIG_DIR, plain, user_errors
from enas.cli.search import build_search
from enas.derive import format_table, rank_candidates
from enas.ranking import rank_by_recorded_rewards
from enas.draw import save_png
from enas.runlock import locks_run_dir
from enas.search_loop import print_flush
from enas.utils import UserError, pick_device, seed_everything


@locks_run_dir(lambda cfg: cfg["run_dir"], create=False)
def run_derive(cfg: dict) -> dict:
    run_dir = cfg["run_dir"]
    checkpoint = os.path.join(run_dir, "checkpoint.pt")
    device = pick_device(cfg["device"])
    state = load_latest_checkpoint(checkpoint, map_location=device, warn=print_flush)
    if state.get("kind") != "search":
        raise UserError(f"{checkpoint}: a {state.get('kind')!r} checkpoint, not a search run")
    search_cfg = state["config"]
    options = {k: cfg[k] if cfg[k] is not None else search_cfg["derive"][k]
               for k in ("num_samples", "valid_batches", "seed")}
    loop = build_search(search_cfg, run_dir, device)
    loop.load_state_dict(state)
    seed_everything(options["seed"])
    if loop.supernet is None:
        # Standalone evaluation: no shared weights to score with; rank by the rewards the
        # children earned when they were trained during the search.
        ranked = rank_by_recorded_rewards(loop.strategy, options["num_samples"], loop.task)
        print_flush(f"derive: {len(ranked)} best architectures seen by strategy {loop.strategy.name}, ranked by "
                    f"their standalone rewards ({loop.evaluator.name} evaluator)")
        if not ranked:
            raise UserError(f"{checkpoint}: the search recorded no evaluated architecture yet")
    else:
        candidates = loop.strategy.proposals(options["num_samples"])
        print_flush(f"derive: {len(candidates)} candidates from strategy {loop.strategy.name}, each scored on the "
                    f"first {options['valid_batches']} validation batches")
        ranked = rank_candidates(loop.task, loop.supernet, candidates, options["valid_batches"], print_flush)
    best, metrics, score = ranked[0]
    space, metric = loop.space, loop.task.metric
    data = space.arch_to_dict(
        best, score=score, metrics=metrics, derived_from=os.path.abspath(run_dir),
        derive=options, search_step=loop.global_step,
        ranking=[{"score": s, metric: m[metric], "choices": space.arch_to_dict(a)["choices"]}
                 for a, m, s in ranked[:cfg["top"]]])
    arch_path = os.path.join(run_dir, "arch.json")
    save_json(arch_path, data)
    png_path = os.path.join(run_dir, "arch.png")
    save_png(space.graph(best), png_path, title=f"{space.name}: score {score:.4f}")
    print_flush(format_table(space, ranked, metric, cfg["top"]))
    print_flush(f"best: {space.describe(best)}")
    print_flush(f"wrote {arch_path} and {png_path}")
    print_flush(f"next: enas-train arch={arch_path} experiment=<the search's experiment>")
    return data


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="derive")
@user_errors
def _hydra_main(cfg: DictConfig) -> None:
    run_derive(plain(cfg))


def main() -> None:
    """Console script `enas-derive`."""
    args = sys.argv[1:]
    # hydra.run.dir is ${run_dir}: without it Hydra fails before our code runs, so check first.
    if not any(a.startswith("run_dir=") for a in args) and not any(a.startswith("-") for a in args):
        print("error: missing value for run_dir (give it on the command line: run_dir=runs/search/<...>)",
              file=sys.stderr, flush=True)
        sys.exit(2)
    _hydra_main()


if __name__ == "__main__":
    main()
