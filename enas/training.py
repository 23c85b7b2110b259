"""The one training step of enas, and its policy for non-finite losses.

Every gradient step of the framework goes through `StepRunner.step`: the supernet's omega
phase (enas.search_loop), final training and the standalone children (enas.final). One step:

    loss, state = task.loss(model, batch, state, arch, aux_weight)     # forward (the caller)
    finite?  no  -> skip: zero the gradients, count it, warn; N in a row -> NonFiniteLossError
             yes -> zero_grad, backward, clip the gradient norm, optimizer step

With several processes (enas.distributed) each rank's loss is the mean over its shard of the
global batch: the ranks agree on finiteness in one all-reduce (any non-finite shard skips the
step on every rank), the gradients are averaged over the ranks after backward, and clipping
then sees the norm of the averaged (global) gradient, as one process with the whole batch.

`NonFiniteLossError` is a `UserError`, so every command reports it as the same one line.

The sync-free step (`step_nosync`, option `accel.sync_free`, and inside a captured CUDA graph)
asks the host nothing: `torch.isfinite(loss)` in an `if` and `loss.item()` each wait for the
device to finish the step, which on a GPU empties the queue of launched kernels every step.
It runs the same policy on the device instead:

    ok = isfinite(loss) and isfinite(state)          # 0-dim bool tensor, never read by the host
    backward, clip, optimizer.step(ok=ok)            # MaskedSGD: ok False changes nothing
    counters (device): run of skips, longest run, skipped, loss sum and count of good steps
    state = where(ok, new state, zeros)              # a skipped step restarts the state at zeros

`check(where)` reads the counters (one sync) at the caller's log and checkpoint points: it warns
about skipped steps and raises NonFiniteLossError when a run of `max_nonfinite` skips happened.
The weights are the same as with `step` (skipped steps change nothing); what differs is when the
run stops: at the next check instead of at the Nth skip, and the warning counts the skips of a
window instead of naming each step. A backward pass still runs on a non-finite loss.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, Sequence

import torch

from enas.distributed import SINGLE, Dist
from enas.utils import UserError, state_is_finite

log = logging.getLogger(__name__)


@contextmanager
def eval_mode(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Evaluate `module` as a trained network: no dropout, no drop-path, BatchNorm on its running
    statistics (and not updating them); its previous train/eval mode is restored afterwards."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


class NonFiniteLossError(UserError):
    """Too many non-finite losses in a row: the run stops; the last checkpoint written stays."""


class StepRunner:
    """Backward, clip and optimizer step on finite losses; skips and counts the others.

    `checkpoint_path` (may be None) is named in the stop message when the file exists, so the
    user knows what is left to resume from. `dist`: the processes that share the step (default:
    this one alone).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, parameters: Iterable[torch.nn.Parameter],
                 grad_clip: float = 0.0, max_nonfinite: int = 10, checkpoint_path: str | None = None,
                 dist: Dist = SINGLE, sync_free: bool = False):
        self.optimizer = optimizer
        self.dist = dist
        self.parameters = [p for p in parameters]
        self.grad_clip = grad_clip
        self.max_nonfinite = max_nonfinite
        self.checkpoint_path = checkpoint_path
        self.nonfinite_total = 0          # skipped steps over the run (checkpointed by the owner)
        self.consecutive = 0              # skipped steps since the last good one
        self.sync_free = sync_free        # the owner calls step_nosync and check (see module docstring)
        self.counters: dict[str, torch.Tensor] | None = None   # device counters of step_nosync

    def step(self, loss: torch.Tensor, state=None, where: str = "") -> float | None:
        """One optimizer step on `loss`; None when the loss or the new recurrent state is not finite.

        Returns the loss: with several processes, the mean over the ranks (the global batch's).
        """
        return self.step_mean([lambda: (loss, state)], where)[0]

    def step_mean(self, forwards: Sequence[Callable[[], tuple]], where: str = "") -> tuple[float | None, object]:
        """One optimizer step on the mean loss of several forward passes (FairNAS: one batch through
        k architectures). Each `forward()` returns (loss, new state) and is backpropagated at once,
        so only one graph is alive at a time; any non-finite loss or state skips the whole step.
        Returns (mean loss, the last forward's state), or (None, None) when skipped.

        Several processes: every rank runs the same forwards on its shard; after each forward the
        ranks agree on finiteness (all skip together) and the returned loss is their mean; the
        accumulated gradients are averaged over the ranks before clipping.
        """
        self.optimizer.zero_grad(set_to_none=True)
        total, state = 0.0, None
        for forward in forwards:
            loss, state = forward()
            finite, value = self._agree(loss, state)
            if not finite:
                self._skip(loss, where if not self.dist.active else
                           f"{where} (on at least one of {self.dist.world_size} processes)")
                return None, None
            (loss / len(forwards)).backward()
            total += value
        self.dist.average_gradients(self.parameters)   # no-op in one process
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.parameters, self.grad_clip)
        self.optimizer.step()
        self.consecutive = 0
        return total / len(forwards), state

    def _agree(self, loss: torch.Tensor, state) -> tuple[bool, float]:
        """(finite, loss value); with several processes: finite on every rank, mean over the ranks."""
        finite = bool(torch.isfinite(loss)) and state_is_finite(state)
        if self.dist.active:              # one all-reduce: this rank's loss may be finite, another's not
            return self.dist.agree_finite_mean(loss, finite)
        return finite, loss.item() if finite else float("nan")

    def step_nosync(self, loss: torch.Tensor, state=None, skip: bool = False):
        """`step` with the non-finite policy on the device; returns the state to carry on.

        The optimizer must take `step(ok=...)` (enas.masked_sgd.MaskedSGD). `skip` forces a skip
        (warm-up runs before a CUDA graph capture); the caller restores the counters.
        """
        self.optimizer.zero_grad(set_to_none=True)
        return self._finish_nosync([loss], [loss], state, skip)

    def step_mean_nosync(self, forwards: Sequence[Callable[[], tuple]], skip: bool = False):
        """`step_mean` with the non-finite policy on the device; returns the last forward's state
        (zeros when skipped). Unlike `step_mean` every forward runs, also after a non-finite one
        (its dropout draws too), so after a skipped step the random streams differ from `step_mean`'s."""
        self.optimizer.zero_grad(set_to_none=True)
        losses, state = [], None
        for forward in forwards:
            loss, state = forward()
            (loss / len(forwards)).backward()
            losses.append(loss)
        return self._finish_nosync(losses, None, state, skip, backward_done=True)

    def _finish_nosync(self, losses: list, scaled: list | None, state, skip: bool, backward_done: bool = False):
        """Backward (unless done), clip, the masked optimizer step, device counters, state reset."""
        device = losses[0].device
        ok = _all_finite(state, device)
        for loss in losses:
            ok = ok & torch.isfinite(loss.detach())
        if skip:
            ok = ok & False
        if not backward_done:
            for loss in scaled:
                loss.backward()
        if self.dist.active:
            raise RuntimeError("the sync-free step runs in one process (accel.sync_free / cuda_graphs)")
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.parameters, self.grad_clip)
        self.optimizer.step(ok=ok)
        self._count(ok, torch.stack([loss.detach().float() for loss in losses]).mean())
        return _where_ok(ok, state)

    def _count(self, ok: torch.Tensor, loss: torch.Tensor) -> None:
        c = self.device_counters(loss.device)
        bad = (~ok).long()
        c["run"].add_(1).mul_(bad)                          # skips in a row so far (0 after a good step)
        torch.maximum(c["worst"], c["run"], out=c["worst"])
        c["skipped"].add_(bad)
        c["loss_sum"].add_(torch.where(ok, loss.float(), 0.0))
        c["good"].add_(1 - bad)

    def device_counters(self, device) -> dict[str, torch.Tensor]:
        """The 0-dim device tensors that step_nosync updates (made on first use)."""
        if self.counters is None:
            self.counters = {name: torch.zeros((), dtype=torch.int64, device=device)
                             for name in ("run", "worst", "skipped", "good")}
            self.counters["loss_sum"] = torch.zeros((), dtype=torch.float32, device=device)
            self.counters["run"].fill_(self.consecutive)
            self.counters["worst"].fill_(self.consecutive)
        return self.counters

    def check(self, where: str = "") -> tuple[float, int]:
        """Read the device counters (one host sync): (sum of the good losses, their count) since the
        last check. Warns about skipped steps; raises NonFiniteLossError after `max_nonfinite` in a row."""
        if self.counters is None:
            return 0.0, 0
        c = self.counters
        run, worst, skipped, good, loss_sum = torch.stack(
            [c[k].double() for k in ("run", "worst", "skipped", "good", "loss_sum")]).tolist()
        self.nonfinite_total += int(skipped)
        self.consecutive = int(run)
        for k in ("skipped", "good", "loss_sum"):
            c[k].zero_()
        c["worst"].copy_(c["run"])                         # a run still going continues into the next window
        if worst >= self.max_nonfinite:
            self.consecutive = int(worst)
            raise NonFiniteLossError(self._stop_message(where))
        if skipped:
            log.warning("%d non-finite loss(es) %s; those steps skipped", int(skipped), where)
        return loss_sum, int(good)

    def _skip(self, loss: torch.Tensor, where: str) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.nonfinite_total += 1
        self.consecutive += 1
        if self.consecutive >= self.max_nonfinite:
            raise NonFiniteLossError(self._stop_message(where))
        log.warning("non-finite loss (%s) %s; step skipped", loss.item(), where)

    def _stop_message(self, where: str) -> str:
        if self.checkpoint_path and os.path.exists(self.checkpoint_path):
            kept = f"the last good checkpoint is {self.checkpoint_path}"
        else:
            kept = "no checkpoint was written yet"
        return (f"{self.consecutive} non-finite losses in a row {where}: stopping (lower the learning rate "
                f"or clip gradients harder with a smaller grad_clip); {kept}")


class DivergenceWatch:
    """Warns when the training loss stays far above the uniform level (ln of the vocabulary or of
    the class count: what a model that knows nothing scores) for `windows` log windows in a row.

    Such a loss is a divergence, not slow learning: the warning names the likely fix. Returns
    True on the window that warns, so the caller can count it in TensorBoard.
    """

    def __init__(self, uniform_loss: float, lr_setting: str, margin: float = 1.0, windows: int = 3):
        self.limit = uniform_loss + margin
        self.uniform_loss = uniform_loss
        self.lr_setting = lr_setting
        self.windows = windows
        self.above = 0                # consecutive log windows above the limit
        self.warnings = 0

    def check(self, window_loss: float, where: str = "") -> bool:
        """Record one log window's mean loss; True when it warns."""
        self.above = self.above + 1 if window_loss > self.limit else 0
        if self.above < self.windows:
            return False
        self.above = 0
        self.warnings += 1
        log.warning(f"training is diverging {where}: loss {window_loss:.2f} has stayed above the uniform level "
                    f"{self.uniform_loss:.2f} + {self.limit - self.uniform_loss:.1f} for {self.windows} log windows; "
                    f"lower the learning rate ({self.lr_setting}) or clip gradients harder")
        return True


def recalibrate_bn(model, task, arch, batches: int) -> None:
    """Re-estimate the running statistics of `model`'s BN layers for `arch` on `batches` training
    batches (an exact average, no gradient), then leave `model` in eval mode. A network whose
    running statistics lag behind its weights (a supernet's shared BN, or a child trained only a
    few steps with the usual momentum) is then evaluated with statistics of its own weights."""
    norms = [m for m in model.modules()
             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None                       # a cumulative average over the batches seen
    model.train()
    state = task.init_state(model, "train")
    with torch.no_grad():
        for i, batch in enumerate(task.train_batches(0)):
            if i >= batches:
                break
            _, state = task.loss(model, batch, state, arch)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()


def _all_finite(state, device) -> torch.Tensor:
    """0-dim bool tensor: every element of the recurrent state (tensor, tuple or None) is finite."""
    ok = torch.ones((), dtype=torch.bool, device=device)
    if state is None:
        return ok
    if torch.is_tensor(state):
        return torch.isfinite(state).all()
    for s in state:
        ok = ok & _all_finite(s, device)
    return ok


def _where_ok(ok: torch.Tensor, state):
    """The state where `ok`, else zeros of its shape (tensor, tuple or None)."""
    if state is None:
        return None
    if torch.is_tensor(state):
        return torch.where(ok, state, torch.zeros_like(state))
    return type(state)(_where_ok(ok, s) for s in state)
