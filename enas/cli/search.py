"""enas-search: search an architecture (omega/theta alternation), with checkpoints and TensorBoard.

    enas-search experiment=smoke_ptb hydra.run.dir=runs/demo
    enas-search experiment=smoke_ptb hydra.run.dir=runs/demo resume=true search.epochs=4
"""

from __future__ import annotations

import os

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from enas.checkpoint import check_compatible, checkpoint_exists, load_latest_checkpoint
from enas.cli.common import (CONFIG_DIR, build_evaluator_from, build_space_from, build_strategy_from, build_surrogate_from, build_task, lr_kwargs,
                             model_sizes, plain, user_errors)
from enas.optim import build_sgd
from enas.runlock import locks_run_dir
from enas.search_loop import NonFiniteLossError, SearchLoop, SearchSettings, print_flush
from enas.tb import open_writer
from enas.utils import UserError, pick_device, seed_everything


# Evaluators that score architectures with (or start from) the shared supernet's weights.
SUPERNET_EVALUATORS = ("one_shot", "inherit")


def search_settings(search: dict) -> SearchSettings:
    optim = search["optim"]
    return SearchSettings(
        epochs=search["epochs"], omega_steps=search.get("omega_steps"), max_steps=search.get("max_steps"),
        strategy_steps=search["strategy_steps"], archs_per_step=search["archs_per_step"],
        lr=optim["lr"], lr_schedule=optim.get("schedule", "constant"), lr_kwargs=lr_kwargs(optim),
        grad_clip=optim.get("grad_clip", 0.0), valid_batches=search.get("valid_batches"),
        checkpoint_every=search.get("checkpoint_every", 0), log_every=search.get("log_every", 50),
        max_nonfinite=search.get("max_nonfinite", 10), keep_checkpoints=search.get("keep_checkpoints", 2))


def build_search(cfg: dict, run_dir: str, device, writer=None, printer=print_flush) -> SearchLoop:
    """Everything a search needs, from a plain config dict (also used by enas-derive)."""
    seed_everything(cfg["seed"])
    task = build_task(cfg["data"], device, cfg["seed"])
    space = build_space_from(cfg["space"])
    sizes = model_sizes(cfg["space"], task)
    supernet = optimizer = None
    if cfg["evaluator"]["name"] in SUPERNET_EVALUATORS:
        try:
            supernet = space.build_supernet(**sizes).to(device)
        except NotImplementedError as e:
            raise UserError(f"space {space.name!r}: {e}") from None
        optim = cfg["search"]["optim"]
        optimizer = build_sgd(supernet.parameters(), lr=optim["lr"], momentum=optim.get("momentum", 0.0),
                              weight_decay=optim.get("weight_decay", 0.0), nesterov=optim.get("nesterov", False))
    strategy = build_strategy_from(cfg["strategy"], space, cfg["seed"], device)
    context = {"config": cfg, "sizes": sizes, "run_dir": run_dir, "device": str(device)}
    evaluator = build_evaluator_from(cfg["evaluator"], task, space, supernet, context)
    surrogate = build_surrogate_from(cfg["search"].get("surrogate"), space)
    metadata = {"space": space.name, "structure": space.structure(), "sizes": sizes,
                "strategy_name": strategy.name, "config": cfg}
    return SearchLoop(task, space, supernet, strategy, evaluator, optimizer, search_settings(cfg["search"]),
                      run_dir=run_dir, writer=writer, metadata=metadata, printer=printer, surrogate=surrogate)


@locks_run_dir(lambda cfg, run_dir: run_dir)
def run_search(cfg: DictConfig, run_dir: str) -> dict:
    config = plain(cfg)
    device = pick_device(config["device"])
    checkpoint = os.path.join(run_dir, "checkpoint.pt")
    if checkpoint_exists(checkpoint) and not config["resume"]:
        raise UserError(f"{checkpoint} exists: continue it with resume=true, or choose another hydra.run.dir")
    writer = open_writer(run_dir)
    loop = build_search(config, run_dir, device, writer)
    if config["resume"]:
        state = load_latest_checkpoint(checkpoint, map_location=device, warn=print_flush,
                                       set_aside=True)
        if state.get("kind") != "search":
            raise UserError(f"{checkpoint}: a {state.get('kind')!r} checkpoint, not a search")
        check_compatible(checkpoint, state, {"space": loop.space.name, "structure": loop.space.structure(),
                                             "sizes": loop.metadata["sizes"],
                                             "strategy_name": loop.strategy.name})
        loop.load_state_dict(state)
        print_flush(f"resumed {checkpoint} at epoch {loop.epoch + 1}, step {loop.global_step}")
    shared = (f"{sum(p.numel() for p in loop.supernet.parameters()):,} shared parameters"
              if loop.supernet is not None else "no supernet")
    print_flush(f"search: space {loop.space.name}, strategy {loop.strategy.name}, evaluator "
                f"{loop.evaluator.name}, {shared}, device {device}")
    print_flush(f"run dir: {run_dir}")
    try:
        summary = loop.run()
    except NonFiniteLossError as e:
        raise UserError(str(e)) from None
    finally:
        writer.close()
        if hasattr(loop.evaluator, "close"):
            loop.evaluator.close()      # worker processes of standalone evaluators
    print_flush(f"done. checkpoint: {loop.checkpoint_path}")
    print_flush(f"TensorBoard: tensorboard --logdir {os.path.join(run_dir, 'tb')}")
    print_flush(f"next: enas-derive run_dir={run_dir}")
    return summary


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="search")
@user_errors
def main(cfg: DictConfig) -> None:
    """Console script `enas-search`."""
    run_search(cfg, HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
