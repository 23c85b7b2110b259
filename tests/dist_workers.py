"""Worker processes of the distributed tests (tests/test_distributed.py).

`spawn_gloo` starts N processes with torch.multiprocessing, each joins a gloo group through a
file in the test's temporary directory and runs one of the jobs below; each rank saves what it
ended with to <out>/rank<r>.pt for the test to compare.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp

from enas.arch import load_arch_file
from enas.build import build_search, build_training
from enas.checkpoint import load_checkpoint
from enas.runs import _resume as resume_search
from enas.distributed import init_from_env


def spawn_gloo(job, world_size: int, tmp_dir: str, *args) -> list[dict]:
    """Run `job(dist, device, out_dir, *args)` in `world_size` gloo processes; each rank's result."""
    out_dir = os.path.join(tmp_dir, f"out{world_size}")
    os.makedirs(out_dir, exist_ok=True)
    init_file = os.path.join(tmp_dir, f"gloo-init-{world_size}")
    mp.spawn(_entry, args=(world_size, init_file, job, out_dir, args), nprocs=world_size, join=True)
    return [torch.load(os.path.join(out_dir, f"rank{r}.pt"), weights_only=False) for r in range(world_size)]


def _entry(rank: int, world_size: int, init_file: str, job, out_dir: str, args: tuple) -> None:
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    torch_dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        dist, device = init_from_env("cpu")          # joins the group above (enas's own entry path)
        result = job(dist, device, *args)
        torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        torch_dist.destroy_process_group()


def loop_result(loop) -> dict:
    """What a search ended with: weights, optimizer, strategy state, position, history."""
    return {"supernet": {k: v.clone() for k, v in loop.supernet.state_dict().items()},
            "momentum": [s.get("momentum_buffer") for s in loop.optimizer.state_dict()["state"].values()],
            "strategy": loop.strategy.state_dict(), "global_step": loop.global_step, "epoch": loop.epoch,
            "history": loop.history, "train_state": loop.train_state}


def search_job(dist, device, cfg: dict, run_root: str, steps: int, half: int) -> dict:
    """A search of `steps` omega steps in one go, and one of `half` steps resumed to `steps` the way
    enas-search resumes (rank 0 reads the checkpoint and sends it to the others)."""
    out = {}
    for name, stop in (("whole", steps), ("part", half)):
        cfg["search"]["max_steps"] = stop
        loop = build_search(cfg, os.path.join(run_root, name), device, dist=dist)
        loop.run()
        out[name] = loop_result(loop)
    cfg["search"]["max_steps"] = steps               # resumed into another dir: part/ keeps step `half`
    loop = build_search(cfg, os.path.join(run_root, "resumed"), device, dist=dist)
    loop.metadata["overrides"] = []
    resume_search(loop, os.path.join(run_root, "part", "checkpoint.pt"), device, dist)   # enas-search's own
    loop.run()
    out["resumed"] = loop_result(loop)
    return out


def train_job(dist, device, cfg: dict, run_root: str, epochs: int) -> dict:
    """Final training of cfg["arch"] for `epochs` in one go, and for 1 epoch resumed to `epochs`."""
    out = {}
    for name, stop in (("whole", epochs), ("part", 1)):
        cfg["trainer"]["epochs"] = stop
        out[name] = trainer_result(_trainer(dist, device, cfg, os.path.join(run_root, name), run=True))
    cfg["trainer"]["epochs"] = epochs
    trainer = _trainer(dist, device, cfg, os.path.join(run_root, "resumed"), run=False)
    trainer.load_state_dict(load_checkpoint(os.path.join(run_root, "part", "checkpoint.pt"), kind="train"))
    trainer.run()
    out["resumed"] = trainer_result(trainer)
    return out


def _trainer(dist, device, cfg: dict, run_dir: str, run: bool):
    _, _, trainer = build_training(cfg, load_arch_file(cfg["arch"]), cfg["arch"], device, run_dir, dist=dist)
    if run:
        trainer.run()
    return trainer


def trainer_result(trainer) -> dict:
    """What a final training ended with: weights, epoch, history without wall times."""
    return {"model": {k: v.clone() for k, v in trainer.model.state_dict().items()}, "epoch": trainer.epoch,
            "history": [{k: v for k, v in h.items() if k != "seconds"} for h in trainer.history]}


def search_and_train_job(dist, device, search_cfg: dict, train_cfg: dict, root: str, steps: int, half: int,
                         epochs: int) -> dict:
    """Both jobs in one process group (one start-up of the processes for the two tests)."""
    return {"search": search_job(dist, device, search_cfg, os.path.join(root, "search"), steps, half),
            "train": train_job(dist, device, train_cfg, os.path.join(root, "train"), epochs)}
