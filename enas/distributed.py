"""Data parallelism with torch.distributed: one process per device, started by torchrun.

    torchrun --nproc_per_node=N -m enas.cli.search ...     (also enas-train, and the console scripts)

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; `init_from_env` reads
them (or, inside a submitit job of several tasks, sets them from the job: Hydra's submitit
launcher with tasks_per_node or nodes > 1) and joins the process group: NCCL on GPUs, each rank
on cuda:LOCAL_RANK; gloo on the CPU. Without them (or with WORLD_SIZE=1) it returns `SINGLE`, and every method below is a no-op or
the identity, so one process runs exactly the code it ran before this module existed.

What the rest of enas asks of it (`Dist`, the one handle, passed explicitly):

    broadcast_object / all_gather_object   small Python values (an architecture, a strategy's state)
    broadcast_module                       identical starting weights on every rank
    agree_finite_mean                      one all-reduce per step: every rank skips or steps together,
                                           and the logged loss is the mean over the global batch
    average_gradients                      the gradients that exist (the sampled subgraph's), averaged
    average_buffers                        BatchNorm running statistics, averaged (final training)
    gather_batch / shard_batch             a recurrent state (B, ...) <-> this rank's rows (B/N, ...)
    rng_states / restore_rng / seed_ranks  each rank's own RNG stream, saved and restored

Rank 0 alone writes (checkpoints, TensorBoard, logs, result files); the callers check `is_main`.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as torch_dist

from enas.rng import global_rng_state, restore_global_rng_state
from enas.utils import UserError, pick_device, seed_everything

log = logging.getLogger(__name__)

#: Minutes a rank waits in a collective before the job fails (ENAS_DIST_TIMEOUT_MIN). Rank 0
#: alone runs the theta phase while the others wait: long with standalone/inherit children.
DEFAULT_TIMEOUT_MIN = 60


def shard_slice(size: int, rank: int, world_size: int, what: str = "batch") -> slice:
    """Rows [rank * size/N, (rank + 1) * size/N) of a batch of `size`; equal shards or a UserError.

    Equal shards make the mean of the per-rank mean losses the mean over the global batch, so
    the averaged gradients are the gradients of one process with the whole batch.
    """
    if size % world_size:
        raise UserError(f"the {what} size {size} does not split into {world_size} equal shards "
                        f"(one per process): choose a multiple of {world_size}")
    per_rank = size // world_size
    return slice(rank * per_rank, (rank + 1) * per_rank)


def to_device(obj, device):
    """A copy of nested dicts/lists/tuples with every tensor moved to `device` (others as they are)."""
    if torch.is_tensor(obj):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


def _map_tensors(obj, fn):
    """Apply `fn` to every tensor of a recurrent state (a tensor, or tuples/lists of them)."""
    if obj is None:
        return None
    if torch.is_tensor(obj):
        return fn(obj)
    return type(obj)(_map_tensors(v, fn) for v in obj)


@dataclass(frozen=True)
class Dist:
    """This process's place in the job: rank, world size and the device its collectives run on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device | None = None
    owns_group: bool = False          # init_from_env joined the group (and `close` leaves it)

    @property
    def active(self) -> bool:
        """More than one process: the collectives below communicate."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and runs the strategy."""
        return self.rank == 0

    # --- Python objects ----------------------------------------------------------------------
    def broadcast_object(self, obj):
        """Rank 0's `obj` on every rank (tensors travel on the CPU and land on this rank's device)."""
        if not self.active:
            return obj
        box = [to_device(obj, "cpu") if self.is_main else None]
        torch_dist.broadcast_object_list(box, src=0, device=self._comm_device())
        return box[0] if self.is_main else to_device(box[0], self.device)

    def all_gather_object(self, obj) -> list:
        """[obj of rank 0, obj of rank 1, ...] on every rank (tensors on the CPU)."""
        if not self.active:
            return [obj]
        out = [None] * self.world_size
        torch_dist.all_gather_object(out, to_device(obj, "cpu"))
        return out

    # --- weights and gradients ---------------------------------------------------------------
    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Copy rank 0's parameters and buffers into every rank's `module`."""
        if not self.active:
            return
        for tensor in list(module.parameters()) + list(module.buffers()):
            torch_dist.broadcast(tensor.data, src=0)

    def agree_finite_mean(self, loss: torch.Tensor, finite: bool) -> tuple[bool, float]:
        """(finite on every rank, mean of the ranks' losses) in one all-reduce.

        A non-finite loss on any rank skips the step everywhere (one process with the whole
        batch would have seen a non-finite mean too), so the ranks never disagree on whether
        to all-reduce gradients.
        """
        local = [loss.item() if finite else 0.0, 0.0 if finite else 1.0]
        both = torch.tensor(local, dtype=torch.float64, device=self._comm_device())
        torch_dist.all_reduce(both)       # [sum of losses, number of non-finite ranks]
        nonfinite = both[1].item() > 0
        return not nonfinite, both[0].item() / self.world_size

    def average_gradients(self, parameters) -> None:
        """Average `.grad` over the ranks, in place, for the parameters that have one.

        Only the sampled subgraph's parameters get a gradient. Every rank trains the same
        architecture, so every rank has the same set, in the same order; the others keep
        `.grad = None`, so SGD's weight decay and momentum skip them as in one process.
        All of them travel in one flat buffer: one all-reduce per step.
        """
        if not self.active:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        if any(g.is_sparse for g in grads):
            raise UserError("sparse gradients are not supported with several processes")
        flat = torch.cat([g.reshape(-1) for g in grads])      # (sum of numels,)
        torch_dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def average_buffers(self, module: torch.nn.Module) -> None:
        """Average floating-point buffers (BatchNorm running mean/var) over the ranks, in place.

        Each rank's running mean follows its own shard; the running mean is linear in the batch
        means, so the average over equal shards is the running mean of one process with the
        whole batch (the running variance misses the spread between shards: close, not equal).
        """
        if not self.active:
            return
        for buffer in module.buffers():
            if buffer.is_floating_point():
                torch_dist.all_reduce(buffer.data)
                buffer.data /= self.world_size

    # --- recurrent states: batch rows ----------------------------------------------------------
    def gather_batch(self, state):
        """The global state from every rank's rows (dim 0 is the batch: (B/N, H) -> (B, H)).

        A checkpoint holds the global state, laid out as one process with the whole batch
        would hold it, so a run resumes with any number of processes.
        """
        if not self.active:
            return state

        def gather(t: torch.Tensor) -> torch.Tensor:
            parts = [torch.empty_like(t) for _ in range(self.world_size)]
            torch_dist.all_gather(parts, t.contiguous())
            return torch.cat(parts, dim=0)

        return _map_tensors(state, gather)

    def shard_batch(self, state):
        """This rank's rows of a global state (the inverse of `gather_batch`)."""
        if not self.active:
            return state
        return _map_tensors(state, lambda t: t[shard_slice(t.shape[0], self.rank, self.world_size,
                                                            "recurrent state batch")].clone())

    # --- random numbers ---------------------------------------------------------------------------
    def seed_ranks(self, seed: int, salt: int = 0) -> None:
        """Give ranks > 0 their own RNG streams (dropout, drop-path); rank 0 keeps its stream.

        Rank 0 draws the architectures and runs the strategy, so its stream is the one a single
        process draws from; the others must not repeat each other's dropout masks.
        """
        if self.active and not self.is_main:
            seed_everything(int(np.random.SeedSequence([seed, salt, self.rank]).generate_state(1)[0]))

    def rng_states(self) -> list | None:
        """Every rank's RNG states, for the checkpoint (None with one process)."""
        return self.all_gather_object(global_rng_state()) if self.active else None

    def restore_rng(self, state: dict, seed: int = 0) -> None:
        """Restore this rank's RNG from a checkpoint: its own stream when the checkpoint has one
        per rank for this many processes; else rank 0's, and ranks > 0 reseed (from `seed`)."""
        ranks = state.get("rng_ranks")
        if ranks is not None and len(ranks) == self.world_size:
            restore_global_rng_state(ranks[self.rank])
            return
        restore_global_rng_state(state["rng"])
        self.seed_ranks(seed, salt=1)

    def _comm_device(self) -> torch.device:
        """Where collective tensors live: this rank's GPU with NCCL, the CPU with gloo."""
        return self.device if self.device is not None and self.device.type == "cuda" else torch.device("cpu")

    def close(self) -> None:
        """Leave the process group if `init_from_env` joined it."""
        if self.owns_group and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


#: One process: no communication, rank 0 writes.
SINGLE = Dist()


def world_from_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) without it."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def rank_device(name: str, local_rank: int) -> torch.device:
    """The device of this rank: `auto`/`cuda` -> cuda:LOCAL_RANK when CUDA is there; `cpu`."""
    device = pick_device(name)                      # validates the name, flushes denormals
    if device.type != "cuda":
        return device
    if name not in ("auto", "cuda"):
        raise UserError(f"device={name}: with several processes give device=auto or cuda; each process "
                        f"takes cuda:LOCAL_RANK (choose the GPUs with CUDA_VISIBLE_DEVICES)")
    if local_rank >= torch.cuda.device_count():
        raise UserError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA devices: "
                        f"start at most that many processes per node (--nproc_per_node)")
    device = torch.device("cuda", local_rank)
    torch.cuda.set_device(device)
    return device


def export_submitit_env() -> None:
    """Inside a submitit job of several tasks, set torchrun's variables from the job's environment.

    hydra/launcher=submitit_slurm (or submitit_local) with tasks_per_node or nodes > 1 starts
    one task per device: they form the process group of one data-parallel run. Variables that
    are already set (torchrun inside the job) win; so do MASTER_ADDR and MASTER_PORT when the
    job sets them (submitit otherwise draws the port from the job id, and names the first node).
    """
    if "RANK" in os.environ or not os.environ.get("SUBMITIT_EXECUTOR"):
        return
    from submitit.helpers import TorchDistributedEnvironment   # present: submitit started us
    env = TorchDistributedEnvironment()                         # reads MASTER_PORT when it is set
    if env.world_size <= 1:
        return
    own_address = os.environ.get("MASTER_ADDR")
    env.export(set_cuda_visible_devices=False, overwrite=True)  # keep cuda:LOCAL_RANK meaningful
    if own_address:
        os.environ["MASTER_ADDR"] = own_address
    elif env.local_world_size == env.world_size:
        # every task is on this node: meet on the loopback, which always answers (submitit names
        # the node's hostname, which a container may resolve to a filtered address or not at all)
        os.environ["MASTER_ADDR"] = "127.0.0.1"


def init_from_env(device_name: str = "auto") -> tuple[Dist, torch.device]:
    """(Dist, device) of this process; joins the process group when torchrun (or a submitit job
    of several tasks) started several.

    A group that the caller already initialised (tests spawn their own) is used as it is.
    Ranks > 0 log errors only: every rank takes the same decisions (skipped steps, divergence
    warnings), so rank 0's lines are the one copy.
    """
    export_submitit_env()
    rank, world_size, local_rank = world_from_env()
    if torch_dist.is_available() and torch_dist.is_initialized():
        rank, world_size = torch_dist.get_rank(), torch_dist.get_world_size()
        device = rank_device(device_name, local_rank)
        dist = Dist(rank, world_size, local_rank, device, owns_group=False)
    elif world_size <= 1:
        return SINGLE, pick_device(device_name)
    else:
        device = rank_device(device_name, local_rank)
        backend = "nccl" if device.type == "cuda" else "gloo"
        timeout = datetime.timedelta(minutes=float(os.environ.get("ENAS_DIST_TIMEOUT_MIN", DEFAULT_TIMEOUT_MIN)))
        torch_dist.init_process_group(backend, timeout=timeout)   # env:// (torchrun's variables)
        dist = Dist(rank, world_size, local_rank, device, owns_group=True)
    if dist.world_size <= 1:
        return SINGLE, device
    if not dist.is_main:                  # the root too: under `python -m` a command logs as __main__
        for name in ("", "enas"):
            logging.getLogger(name).setLevel(logging.ERROR)
    log.info(f"data parallel: {dist.world_size} processes, backend {torch_dist.get_backend()}, "
             f"rank 0 on {device}")
    return dist, device
