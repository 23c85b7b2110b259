"""enas-train: train an architecture from scratch and report its test metric.

    enas-train arch=runs/search/<...>/arch.json experiment=smoke_ptb
    enas-train arch=... hydra.run.dir=runs/train/x resume=true trainer.epochs=20
"""

from __future__ import annotations

import logging
import os

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from enas.arch import load_arch_file, save_json
from enas.build import build_training, start_process
from enas.checkpoint import check_compatible, checkpoint_exists, load_latest_checkpoint
from enas.cli.common import enas_main, plain, user_errors
from enas.final import perplexity_or_accuracy
from enas.logs import Eta, run_log
from enas.runlock import locks_run_dir
from enas.tb import open_writer
from enas.utils import UserError

log = logging.getLogger(__name__)


@locks_run_dir(lambda cfg, run_dir: run_dir)
def run_train(cfg: dict, run_dir: str) -> dict:
    """Train cfg["arch"] from scratch into `run_dir`; the result dict (also written to result.json)."""
    arch_path = arch_file(cfg["arch"])
    arch_data = load_arch_file(arch_path)
    device, threads = start_process(cfg)
    checkpoint = os.path.join(run_dir, "checkpoint.pt")
    if checkpoint_exists(checkpoint) and not cfg["resume"]:
        raise UserError(f"{checkpoint} exists: continue it with resume=true, or choose another hydra.run.dir")
    if cfg["resume"] and not checkpoint_exists(checkpoint):
        raise UserError(f"resume=true, but {checkpoint} does not exist (check hydra.run.dir)")
    eta = Eta(1)
    with run_log(os.path.join(run_dir, "train.log")):
        warn_if_other_data(arch_path, arch_data, cfg["data"])
        writer = open_writer(run_dir)
        try:
            space, arch, trainer = build_training(cfg, arch_data, arch_path, device, run_dir, writer)
            if cfg["resume"]:
                state = load_latest_checkpoint(checkpoint, map_location=device, set_aside=True, kind="train")
                check_compatible(checkpoint, state, {"space": space.name, "structure": space.structure(),
                                                     "sizes": trainer.metadata["sizes"],
                                                     "arch": trainer.metadata["arch"]})
                trainer.load_state_dict(state)
                log.info(f"resumed {checkpoint} at epoch {trainer.epoch + 1}")
            params = sum(p.numel() for p in trainer.model.parameters())
            log.info(f"train: {space.name} {space.describe(arch)[:120]}")
            log.info(f"{params:,} parameters, device {device}, {threads} CPU threads, run dir {run_dir}")
            trainer.run()
            valid = _timed("valid", lambda: trainer.task.evaluate(trainer.model, "valid", None, None), trainer.task)
            test = _timed("test", trainer.test, trainer.task)
        finally:
            writer.close()
        result = {"arch": os.path.abspath(arch_path), "epochs": trainer.epoch, "params": params,
                  "valid": valid, "test": test}
        save_json(os.path.join(run_dir, "result.json"), result)
        log.info(f"final: valid {perplexity_or_accuracy(trainer.task, valid)}  "
                 f"test {perplexity_or_accuracy(trainer.task, test)}")
        log.info(f"wrote {os.path.join(run_dir, 'result.json')}; TensorBoard: tensorboard --logdir "
                 f"{os.path.join(run_dir, 'tb')} ({eta.text()})")
    return result


def arch_file(path: str) -> str:
    """The arch.json to train: `path` itself, or `<path>/arch.json` when `path` is a run directory."""
    if os.path.isdir(path):
        inside = os.path.join(path, "arch.json")
        if not os.path.isfile(inside):
            raise UserError(f"arch={path} is a directory without arch.json (run enas-derive run_dir={path} first)")
        return inside
    return path


def warn_if_other_data(arch_path: str, arch_data: dict, data: dict) -> None:
    """Warn when the architecture was searched on other data than this training uses."""
    searched = arch_data.get("search_data")
    if not isinstance(searched, dict):
        return
    differ = [key for key in ("name", "path") if searched.get(key) != data.get(key)]
    if differ:
        what = ", ".join(f"data.{k}={data.get(k)!r} (search: {searched.get(k)!r})" for k in differ)
        log.warning(f"{arch_path} was searched on other data than this training uses: {what}; "
                    f"give the search's data settings (e.g. its experiment= and data.path=)")


def _timed(split: str, evaluate, task) -> dict:
    """The final evaluation of one split, with a line before (it can take minutes) and after."""
    log.info(f"evaluating the {split} split ({task.num_batches(split)} batches) ...")
    eta = Eta(1)
    metrics = evaluate()
    log.info(f"{split} done ({eta.text()})")
    return metrics


@enas_main("train")
@user_errors
def main(cfg: DictConfig) -> None:
    """Console script `enas-train`."""
    run_train(plain(cfg), HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
