"""enas-train: train an architecture from scratch and report its test metric.

    enas-train arch=runs/search/<...>/arch.json experiment=smoke_ptb
    enas-train arch=... hydra.run.dir=runs/train/x resume=true trainer.epochs=20
"""

from __future__ import annotations

import os

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from enas.arch import load_arch_file, save_json
from enas.checkpoint import check_compatible, checkpoint_exists, load_latest_checkpoint
from enas.cli.common import CONFIG_DIR, build_space_from, build_task, lr_kwargs, model_sizes, plain, user_errors
from enas.final import Trainer, TrainSettings, perplexity_or_accuracy
from enas.optim import build_sgd
from enas.runlock import locks_run_dir
from enas.search_loop import print_flush
from enas.tb import open_writer
from enas.utils import UserError, pick_device, seed_everything


def train_settings(trainer: dict) -> TrainSettings:
    optim = trainer["optim"]
    return TrainSettings(
        epochs=trainer["epochs"], steps_per_epoch=trainer.get("steps_per_epoch"), lr=optim["lr"],
        lr_schedule=optim.get("schedule", "constant"), lr_kwargs=lr_kwargs(optim),
        grad_clip=optim.get("grad_clip", 0.0), aux_weight=trainer.get("aux_weight", 0.0),
        drop_path=trainer.get("drop_path", 0.0), valid_batches=trainer.get("valid_batches"),
        log_every=trainer.get("log_every", 100), keep_checkpoints=trainer.get("keep_checkpoints", 2))


def build_training(cfg: dict, arch_data: dict, arch_path: str, device, run_dir: str | None, writer=None,
                   printer=print_flush):
    """Task, network and Trainer for one architecture (also used by the standalone evaluator)."""
    if arch_data["space"] != cfg["space"]["name"]:
        raise UserError(f"{arch_path}: architecture of space {arch_data['space']!r}, but this config trains "
                        f"space {cfg['space']['name']!r} (choose the matching experiment=...)")
    space = build_space_from(cfg["space"], arch_data.get("structure") or None)
    arch = space.arch_from_dict(arch_data, source=arch_path)
    trainer_cfg = cfg["trainer"]
    seed_everything(cfg["seed"])
    task = build_task(cfg["data"], device, cfg["seed"], batch_size=trainer_cfg.get("batch_size"),
                      cutout=trainer_cfg.get("cutout"))
    sizes = model_sizes(cfg["space"], task, trainer_cfg.get("sizes"))
    model = space.build_network(arch, **sizes).to(device)
    optim = trainer_cfg["optim"]
    optimizer = build_sgd(model.parameters(), lr=optim["lr"], momentum=optim.get("momentum", 0.0),
                          weight_decay=optim.get("weight_decay", 0.0), nesterov=optim.get("nesterov", False))
    metadata = {"space": space.name, "structure": space.structure(), "sizes": sizes,
                "arch": space.arch_to_dict(arch), "config": cfg}
    trainer = Trainer(task, model, optimizer, train_settings(trainer_cfg), run_dir=run_dir, writer=writer,
                      metadata=metadata, printer=printer)
    return space, arch, trainer


@locks_run_dir(lambda cfg, run_dir: run_dir)
def run_train(cfg: dict, run_dir: str) -> dict:
    device = pick_device(cfg["device"])
    arch_path = cfg["arch"]
    arch_data = load_arch_file(arch_path)
    checkpoint = os.path.join(run_dir, "checkpoint.pt")
    if checkpoint_exists(checkpoint) and not cfg["resume"]:
        raise UserError(f"{checkpoint} exists: continue it with resume=true, or choose another hydra.run.dir")
    writer = open_writer(run_dir)
    space, arch, trainer = build_training(cfg, arch_data, arch_path, device, run_dir, writer)
    if cfg["resume"]:
        state = load_latest_checkpoint(checkpoint, map_location=device, warn=print_flush,
                                       set_aside=True)
        if state.get("kind") != "train":
            raise UserError(f"{checkpoint}: a {state.get('kind')!r} checkpoint, not a training run")
        check_compatible(checkpoint, state, {"space": space.name, "structure": space.structure(),
                                             "sizes": trainer.metadata["sizes"],
                                             "arch": trainer.metadata["arch"]})
        trainer.load_state_dict(state)
        print_flush(f"resumed {checkpoint} at epoch {trainer.epoch + 1}")
    params = sum(p.numel() for p in trainer.model.parameters())
    print_flush(f"train: {space.name} {space.describe(arch)[:120]}")
    print_flush(f"{params:,} parameters, device {device}, run dir {run_dir}")
    try:
        trainer.run()
    finally:
        writer.flush()
    valid = trainer.task.evaluate(trainer.model, "valid", None, None)
    test = trainer.test()
    writer.close()
    result = {"arch": os.path.abspath(arch_path), "epochs": trainer.epoch, "params": params,
              "valid": valid, "test": test}
    save_json(os.path.join(run_dir, "result.json"), result)
    print_flush(f"final: valid {perplexity_or_accuracy(trainer.task, valid)}  "
                f"test {perplexity_or_accuracy(trainer.task, test)}")
    print_flush(f"wrote {os.path.join(run_dir, 'result.json')}; TensorBoard: tensorboard --logdir "
                f"{os.path.join(run_dir, 'tb')}")
    return result


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@user_errors
def main(cfg: DictConfig) -> None:
    """Console script `enas-train`."""
    run_train(plain(cfg), HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
