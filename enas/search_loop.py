"""The search loop: alternate the shared weights (omega) and the strategy (theta).

    for epoch in range(epochs):
        omega phase: for each training minibatch, take one architecture from
                     `strategy.train_samples(1)`, cross-entropy through the supernet, clip, SGD
                     (sync_free: enas.training.StepRunner.step_nosync; cuda_graphs: the whole
                     step replayed from one captured graph, enas.graphed.GraphedStep)
        theta phase: `strategy_steps` times: archs = strategy.ask(n); rewards = evaluator(archs);
                     strategy.tell(archs, rewards)
        validation of the epoch's best architecture, TensorBoard, checkpoint
    (a few-shot supernet, enas.spaces.few_shot, splits at the start of `few_shot_split_epoch`)

The loop's whole state (weights, strategy, optimizer, positions, recurrent states, RNG) is
saved every `checkpoint_every` omega steps and at the end of each epoch; `resume` continues
exactly where the checkpoint was written.

Host syncs per omega step (one process): the strategy's sample (an Architecture is host data;
the controller's sampling reads each choice) and, on the default path, the step's finite check
and loss value. With sync_free (or cuda_graphs) the step itself reads nothing back: the loss and
the non-finite counters are read at log points, before each checkpoint and at the end of the
phase. Rewards (theta phase) are read per architecture: the strategy learns from them.

Several processes (`dist`, enas.distributed): every rank trains the shared weights on its shard
of each minibatch (the task keeps only its rows) with the same architecture, which rank 0 draws
from the strategy and broadcasts; the training step averages the gradients. Rank 0 alone runs
the theta phase and the epoch's validation (the others wait at the next broadcast) and writes
the checkpoint; at every checkpoint the others receive its strategy, evaluator and history, so
every rank holds the same state. The checkpoint holds the global recurrent state (every rank's
rows) and every rank's RNG state: a run resumes exactly with the same number of processes, and
with another number continues from the same weights, strategy and data position.
"""

from __future__ import annotations

import logging
import math
import os
import statistics
import time
from collections import Counter
from dataclasses import dataclass

import torch

from enas.arch import Architecture
from enas.strategies.base import fair_group, uniform_architecture
from enas.checkpoint import save_checkpoint
from enas.distributed import SINGLE, Dist
from enas.logs import Eta, format_duration
from enas.optim import scheduled_lr, set_lr
from enas.rng import global_rng_state, restore_global_rng_state
from enas.spaces.few_shot import FewShotSupernet
from enas.tasks import format_metric
from enas.tb import log_arch_image, log_scalars
from enas.training import DivergenceWatch, StepRunner, eval_mode

log = logging.getLogger(__name__)


@dataclass
class SearchSettings:
    """Numbers that shape a search run (the entry point fills them from the config)."""

    epochs: int = 10
    omega_steps: int | None = None        # omega steps per epoch (None: one pass over the data)
    max_steps: int | None = None          # stop after this many omega steps in total
    strategy_steps: int = 10              # theta steps per epoch
    archs_per_step: int = 1               # architectures scored per theta step
    lr: float = 0.25
    lr_schedule: str = "constant"
    lr_kwargs: dict | None = None         # decay, decay_start, t0, t_mul, lr_min
    grad_clip: float = 0.0
    aux_weight: float = 0.0               # weight of the auxiliary head's loss (spaces that have one)
    warmup_epochs: int = 0                # first epochs: uniform omega samples, no theta phase
    fair_sampling: bool = False           # FairNAS: each omega step = one strict-fairness group
    few_shot_split_epoch: int = 0         # a FewShotSupernet splits at the start of this epoch
    valid_batches: int | None = None      # batches for the epoch's validation (None: all)
    checkpoint_every: int = 0             # omega steps between checkpoints (0: epoch ends only)
    log_every: int = 50
    max_nonfinite: int = 10               # consecutive non-finite losses before stopping
    keep_checkpoints: int = 2             # checkpoint.pt, checkpoint.prev.pt, ...
    sync_free: bool = False               # omega steps without host syncs; non-finite checks at log/save points
    cuda_graphs: bool = False             # capture the whole omega step once (static-graph supernet; enas.graphed)


class SearchLoop:
    """Runs a search (see module docstring); `state_dict()` is the checkpoint's content."""

    def __init__(self, task, space, supernet, strategy, evaluator, optimizer, settings: SearchSettings,
                 run_dir: str, writer=None, metadata: dict | None = None, surrogate=None, dist: Dist = SINGLE):
        self.task, self.space, self.supernet = task, space, supernet
        self.dist = dist                  # the processes sharing the omega phase (one by default)
        self.strategy, self.evaluator, self.optimizer = strategy, evaluator, optimizer
        self.s = settings
        self.surrogate = surrogate        # optional pre-screening of proposals (enas.surrogate)
        self.run_dir = run_dir
        self.writer = writer
        self.metadata = metadata or {}
        self.epoch = 0                    # current epoch
        self.batch = 0                    # omega batches done in the current epoch
        self.theta_done = False           # theta phase of the current epoch finished
        self.global_step = 0              # omega steps done in total
        self.strategy_updates = 0         # strategy.tell calls in total (the x axis of its TensorBoard tags)
        self.train_state = None           # recurrent state along the training stream
        self.stepper = None if optimizer is None else StepRunner(
            optimizer, supernet.parameters(), settings.grad_clip, settings.max_nonfinite, self.checkpoint_path,
            dist=dist, sync_free=settings.sync_free or settings.cuda_graphs)
        self.graphed = None               # the captured omega step (cuda_graphs), made at the first step
        if settings.cuda_graphs and self.stepper is not None:
            from enas.graphed import GraphedStep
            self.graphed = GraphedStep(task, supernet, self.stepper, aux_weight=settings.aux_weight)
        self.window = [0.0, 0]            # training loss sum and count since the last log line
        if supernet is not None:
            dist.broadcast_module(supernet)   # the same starting weights on every rank
        self.history: list[dict] = []     # per-epoch summary
        self.best_so_far = -math.inf
        self.epoch_rewards: list[float] = []
        self.epoch_archs: list = []
        self._eta = Eta(settings.epochs)
        self.divergence = DivergenceWatch(task.uniform_loss(), "search.optim.lr")

    @property
    def checkpoint_path(self) -> str:
        return os.path.join(self.run_dir, "checkpoint.pt")

    # --- the loop -----------------------------------------------------------------------------
    def run(self) -> dict:
        """Run (or continue) until `epochs` or `max_steps`; returns the last epoch summary, with
        `search_seconds`: the time this call spent searching (start-up excluded)."""
        self._eta = Eta(self.s.epochs, self.epoch)
        while self.epoch < self.s.epochs:
            start = time.time()
            self._split_if_due()
            if not self._omega_phase():
                self.save()
                log.info(f"stopped at max_steps={self.s.max_steps} (step {self.global_step}); checkpoint "
                         f"{self.checkpoint_path}; continue with resume=true and a larger search.max_steps "
                         f"(or search.max_steps=null)")
                break
            omega_done = time.time()
            if not self.theta_done:
                if self.in_warmup:
                    log.info(f"epoch {self.epoch + 1}/{self.s.epochs}: warm-up (uniform samples), no theta phase")
                elif self.dist.is_main:   # the strategy lives on rank 0; the others get it at save()
                    self._theta_phase()
                self.theta_done = True
            # wall seconds of this epoch's phases in this process (logged, not in the history:
            # a resumed run must have the same history as an uninterrupted one)
            self._seconds = (start, omega_done - start, time.time() - omega_done)
            self._end_epoch()
        summary = dict(self.history[-1]) if self.history else {}
        summary["search_seconds"] = self._eta.elapsed
        return summary

    def _split_if_due(self) -> None:
        """A few-shot supernet splits into its copies at the start of `few_shot_split_epoch`
        (every rank does it: the copies are made from the same weights)."""
        few_shot = self.supernet
        due = self.epoch >= self.s.few_shot_split_epoch
        if isinstance(few_shot, FewShotSupernet) and due and not few_shot.is_split:
            few_shot.split()
            log.info(f"epoch {self.epoch + 1}/{self.s.epochs}: few-shot split on {few_shot.decision.name}: "
                     f"{len(few_shot.parts)} copies of the shared weights, one per option")

    def _steps_this_epoch(self) -> int:
        if self.supernet is None or self.s.omega_steps == 0:
            return 0                      # no shared weights to train (standalone evaluation)
        return min(self.s.omega_steps or self.task.num_train_batches, self.task.num_train_batches)

    def _omega_phase(self) -> bool:
        """Train the shared weights; False when `max_steps` stopped it early."""
        steps = self._steps_this_epoch()
        if self.batch >= steps:
            return True
        lr = scheduled_lr(self.s.lr, self.s.lr_schedule, self.s.lr_kwargs, self.epoch, self.s.epochs)
        set_lr(self.optimizer, lr)
        self.supernet.train()
        if self.batch == 0 or self.train_state is None:
            self.train_state = self.task.init_state(self.supernet, "train")
        self.window, t0 = [0.0, 0], time.time()
        for batch in self.task.train_batches(self.epoch, self.batch, epoch_steps=steps):
            if self.batch >= steps:
                break
            if self.s.max_steps is not None and self.global_step >= self.s.max_steps:
                return False
            loss = self._omega_step(batch)
            self.batch += 1
            self.global_step += 1
            if loss is not None:
                self.window = [self.window[0] + loss, self.window[1] + 1]
            if self.s.log_every and self.global_step % self.s.log_every == 0:
                self._sync_point()
                if self.window[1]:
                    self._log_train(self.window[0] / self.window[1], lr, steps, time.time() - t0)
                    self.window, t0 = [0.0, 0], time.time()
            if self.s.checkpoint_every and self.global_step % self.s.checkpoint_every == 0:
                self.save()
        self._sync_point()
        return True

    def _sync_point(self) -> None:
        """Sync-free steps: read the device counters into the loss window; stops the run after
        `max_nonfinite` non-finite losses in a row (enas.training). Nothing to do otherwise."""
        if self.stepper is None or not self.stepper.sync_free:
            return
        before = self.stepper.nonfinite_total
        total, count = self.stepper.check(where=f"by step {self.global_step}")
        self.window = [self.window[0] + total, self.window[1] + count]
        if self.stepper.nonfinite_total != before:
            log_scalars(self.writer, "supernet", {"nonfinite_steps": self.stepper.nonfinite_total}, self.global_step)

    def _train_archs(self) -> list[Architecture]:
        """The architectures of one omega step: a strict-fairness group (fair_sampling), a uniform
        sample during the warm-up, else the strategy's own sample (the controller's, for ENAS).
        Uniform draws come from the strategy's `train_rng`, which its checkpoint holds."""
        rng, decisions = self.strategy.train_rng, self.strategy.decisions
        if self.s.fair_sampling:
            return fair_group(self.space.name, decisions, rng)
        if self.in_warmup:
            return [uniform_architecture(self.space.name, decisions, rng)]
        return self.strategy.train_samples(1)

    @property
    def in_warmup(self) -> bool:
        """The first `warmup_epochs` epochs train the shared weights only (uniform samples)."""
        return self.epoch < self.s.warmup_epochs

    def _omega_step(self, batch) -> float | None:
        """One SGD step on the mean loss of this step's architectures over one batch; None when the
        loss was not finite."""
        archs = self._shared_train_archs()
        if self.graphed is not None and len(archs) == 1:   # forward, backward, update: one CUDA graph replay
            self.train_state = self.graphed(batch, self.train_state, archs[0])
            return None
        forwards = [lambda arch=arch: self.task.loss(self.supernet, batch, self.train_state, arch,
                                                     aux_weight=self.s.aux_weight)
                    for arch in archs]
        if self.stepper.sync_free:        # the loss joins the window at the next sync point
            self.train_state = self.stepper.step_mean_nosync(forwards)
            return None
        value, state = self.stepper.step_mean(forwards, where=f"at step {self.global_step}")
        if value is None:                 # skipped: restart the recurrent state
            self.train_state = self.task.init_state(self.supernet, "train")
            log_scalars(self.writer, "supernet", {"nonfinite_steps": self.stepper.nonfinite_total}, self.global_step)
        else:
            self.train_state = state
        return value

    def _shared_train_archs(self) -> list[Architecture]:
        """This omega step's architectures: rank 0 draws them (`_train_archs`), every rank gets them."""
        if not self.dist.active:
            return self._train_archs()
        choices = [a.plain_choices() for a in self._train_archs()] if self.dist.is_main else None
        return [Architecture.from_plain(self.space.name, c) for c in self.dist.broadcast_object(choices)]

    @property
    def nonfinite_total(self) -> int:
        """Omega steps skipped for a non-finite loss over the whole run."""
        return 0 if self.stepper is None else self.stepper.nonfinite_total

    def _log_train(self, loss: float, lr: float, steps: int, seconds: float) -> None:
        values = {"train_loss": loss, "lr": lr}
        if self.task.kind == "lm":
            values["train_ppl"] = math.exp(min(loss, 50.0))
        log_scalars(self.writer, "supernet", values, self.global_step)
        rate = self.s.log_every / max(seconds, 1e-9)
        extra = f" ppl {values['train_ppl']:.1f}" if "train_ppl" in values else ""
        log.info(f"epoch {self.epoch + 1}/{self.s.epochs} step {self.batch}/{steps} "
                 f"loss {loss:.3f}{extra} lr {lr:.4g} | {rate:.1f} steps/s")
        if self.divergence.check(loss, f"at step {self.global_step}"):
            log_scalars(self.writer, "supernet", {"divergence_warnings": self.divergence.warnings}, self.global_step)

    def _theta_phase(self) -> None:
        """Score strategy proposals with the evaluator and tell the strategy.

        Synchronous evaluators score `archs_per_step` architectures per step; an asynchronous
        one keeps its workers busy and reports each result as it arrives (NAS-RL), for the
        same budget of architectures.
        """
        budget = self.s.strategy_steps * self.s.archs_per_step
        self.evaluator.begin_phase(self.epoch)
        start = time.time()
        log.info(f"epoch {self.epoch + 1}/{self.s.epochs} theta: {budget} architectures, evaluator "
                 f"{self.evaluator.name}")
        if self.evaluator.asynchronous:
            self.evaluator.run_async(self._propose, self._tell, budget)
        else:
            for _ in range(self.s.strategy_steps):
                archs = self._propose(self.s.archs_per_step)
                self._tell(archs, self.evaluator.evaluate(archs))
        log.info(f"epoch {self.epoch + 1}/{self.s.epochs} theta done in {format_duration(time.time() - start)}")
        if self.supernet is not None:
            self.supernet.train()

    def _propose(self, n: int) -> list:
        """n architectures to evaluate; with a surrogate, the best n of a larger pool it ranked."""
        if self.surrogate is None:
            return self.strategy.ask(n)
        pool = self.strategy.ask(max(n, math.ceil(n / self.surrogate.share)))
        return self.surrogate.select(pool, n)

    def _tell(self, archs, rewards) -> None:
        stats = self.strategy.tell(archs, rewards)
        if self.surrogate is not None:
            self.surrogate.observe(archs, rewards)
        self.epoch_rewards.extend(rewards)
        self.epoch_archs.extend(archs)
        self.strategy_updates += 1
        log_scalars(self.writer, self.strategy.log_prefix, stats, self.strategy_updates)

    def _end_epoch(self) -> None:
        summary = self._epoch_summary() if self.dist.is_main else None   # the others get it at save()
        if summary is not None:
            self.history.append(summary)
        self.epoch += 1
        self._eta.update(self.epoch)
        if summary is not None:
            log.info(self._format_summary(summary) + self._format_seconds() + f" | {self._eta.text()}")
        self.batch = 0
        self.theta_done = False
        self.train_state = None
        self.epoch_rewards, self.epoch_archs = [], []
        self.save()

    def _epoch_summary(self) -> dict:
        step = self.global_step
        summary = {"epoch": self.epoch + 1, "step": step, "archs_evaluated": len(self.epoch_rewards)}
        if self.epoch_rewards:
            best_i = max(range(len(self.epoch_rewards)), key=self.epoch_rewards.__getitem__)
            best_arch = self.epoch_archs[best_i]
            self.best_so_far = max(self.best_so_far, self.epoch_rewards[best_i])
            rewards = self.epoch_rewards
            summary.update(reward_mean=statistics.fmean(rewards), reward_max=max(rewards),
                           reward_min=min(rewards), reward_std=statistics.pstdev(rewards),
                           best_so_far=self.best_so_far)
            log_scalars(self.writer, "search", {k: summary[k] for k in
                                                ("reward_mean", "reward_max", "reward_min", "reward_std",
                                                 "best_so_far")}, step)
            if self.writer is not None:
                self.writer.add_histogram("search/rewards", torch.tensor(rewards), step)
            self._log_arch_stats(self.epoch_archs, step)
            if self.supernet is not None:
                with eval_mode(self.supernet):      # as the rewards: no dropout
                    metrics = self.task.evaluate(self.supernet, "valid", best_arch, self.s.valid_batches)
                summary.update({f"valid_{k}": v for k, v in metrics.items()})
                log_scalars(self.writer, "supernet", {f"valid_{k}": v for k, v in metrics.items()}, step)
            summary["best_arch"] = self.space.describe(best_arch)
            log_arch_image(self.writer, "search/best_arch_of_epoch", self.space, best_arch, step,
                           title=f"epoch {self.epoch + 1} reward {self.epoch_rewards[best_i]:.4f}")
        return summary

    def _format_seconds(self) -> str:
        """' | 41.2s (omega 30.1s, theta 8.0s, epoch end 3.1s)': this epoch's wall time in this process."""
        start, omega, theta = getattr(self, "_seconds", (None, 0.0, 0.0))
        if start is None:
            return ""
        total = time.time() - start
        return f" | {total:.1f}s (omega {omega:.1f}s, theta {theta:.1f}s, epoch end {total - omega - theta:.1f}s)"

    def _format_summary(self, s: dict) -> str:
        where = f"step {s['step']}" if self.supernet is not None else f"{s['archs_evaluated']} architectures evaluated"
        parts = [f"== epoch {s['epoch']}/{self.s.epochs} done ({where})"]
        if "reward_mean" in s:
            parts.append(f"reward mean {s['reward_mean']:.4f} max {s['reward_max']:.4f} "
                         f"best so far {s['best_so_far']:.4f}")
            metric = self.task.metric
            if "valid_" + metric in s:
                parts.append(f"valid {format_metric(metric, s['valid_' + metric])} of the epoch's best")
        return " | ".join(parts)

    def _log_arch_stats(self, archs, step: int) -> None:
        """Share of each op label and skip rate among the sampled architectures."""
        ops, bits_on, bits = Counter(), 0, 0
        decisions = self.space.decisions()
        for arch in archs:
            for d, c in zip(decisions, arch.choices):
                if d.kind == "op":
                    ops[(d.labels, c)] += 1
                elif d.kind == "skip":
                    bits_on, bits = bits_on + sum(c), bits + len(c)
        per_label = Counter()
        for (labels, c), n in ops.items():
            per_label[labels[c]] += n
        total = sum(per_label.values())
        if total:
            log_scalars(self.writer, "arch/op_share", {k: v / total for k, v in per_label.items()}, step)
        if bits:
            log_scalars(self.writer, "arch", {"skip_rate": bits_on / bits}, step)

    # --- checkpointing ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "kind": "search",
            **self.metadata,
            "supernet": None if self.supernet is None else self.supernet.state_dict(),
            "strategy": self.strategy.state_dict(),
            "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
            "surrogate": None if self.surrogate is None else self.surrogate.state_dict(),
            "evaluator": self.evaluator.state_dict(),
            "position": {"epoch": self.epoch, "batch": self.batch, "theta_done": self.theta_done,
                         "global_step": self.global_step, "strategy_updates": self.strategy_updates},
            "train_state": self.train_state,
            "nonfinite_total": self.nonfinite_total,
            "history": self.history,
            "best_so_far": self.best_so_far,
            "epoch_rewards": list(self.epoch_rewards),
            "epoch_archs": [a.plain_choices() for a in self.epoch_archs],
            "best": [{"choices": a.plain_choices(), "reward": r} for a, r in self.strategy.best()],
            "rng": global_rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Load a checkpoint (of any number of processes: this rank takes its rows of the
        recurrent state, and its own RNG stream when the checkpoint has one)."""
        if self.supernet is not None:
            self.supernet.load_state_dict(state["supernet"])
            self.optimizer.load_state_dict(state["optimizer"])
        self._load_replicated(state)
        pos = state["position"]
        self.epoch, self.batch = pos["epoch"], pos["batch"]
        self.theta_done, self.global_step = pos["theta_done"], pos["global_step"]
        self.strategy_updates = pos.get("strategy_updates", 0)   # absent from checkpoints before it was kept
        self.train_state = self.dist.shard_batch(state["train_state"])
        if self.stepper is not None:
            self.stepper.nonfinite_total = state["nonfinite_total"]
        if self.dist.active:
            self.dist.restore_rng(state, seed=self.global_step)
        else:
            restore_global_rng_state(state["rng"])

    #: What rank 0 alone computes (theta phase, epoch summaries) and sends to the others at save().
    REPLICATED = ("strategy", "evaluator", "surrogate", "history", "best_so_far", "epoch_rewards", "epoch_archs")

    def _load_replicated(self, state: dict) -> None:
        if self.surrogate is not None:
            self.surrogate.load_state_dict(state["surrogate"])
        self.strategy.load_state_dict(state["strategy"])
        self.evaluator.load_state_dict(state["evaluator"])
        self.history = state["history"]
        self.best_so_far = state["best_so_far"]
        self.epoch_rewards = list(state["epoch_rewards"])
        self.epoch_archs = [Architecture.from_plain(self.space.name, c) for c in state["epoch_archs"]]

    def save(self) -> None:
        """Write the checkpoint (rank 0); with several processes, every rank calls it at the same
        step: it gathers the ranks' recurrent states and RNG states and replicates rank 0's
        strategy, evaluator and history to the others."""
        self._sync_point()                # sync-free: never write a checkpoint past an unnoticed stop
        state = self.state_dict()
        if self.dist.active:
            state["train_state"] = self.dist.gather_batch(self.train_state)
            state["rng_ranks"] = self.dist.rng_states()
            shared = self.dist.broadcast_object({k: state[k] for k in self.REPLICATED})
            if not self.dist.is_main:
                self._load_replicated(shared)
        if self.dist.is_main:
            save_checkpoint(self.checkpoint_path, state, keep=self.s.keep_checkpoints)
