"""SGD that leaves parts of the model alone: unused rows of a stacked parameter, and skipped steps.

`MaskedSGD` is torch.optim.SGD (momentum, Nesterov, weight decay; no dampening) with two masks:

- rows: `rows_for(p)` may return an int64 index tensor; then weight decay, the momentum buffer and
  the step touch only those rows (dim 0) of p, and every other row of p and of its momentum
  buffer stays bit-identical. The static-graph recurrent supernet stacks every edge weight in
  one (E, H, 2H) parameter whose unused rows get a zero gradient (not None); plain SGD would
  decay them and move them by their old momentum, where the eager supernet's unused edges
  (gradient None) are left alone. Rows make the two the same.
- ok: `step(ok=flag)` with a 0-dim bool tensor; where it is False no parameter and no buffer
  changes. The sync-free step (enas.training.StepRunner.step_nosync) skips a non-finite step
  this way, on the device, without asking the host.

With `capturable=True` the learning rate is read from a device tensor that `sync_lr()` refreshes
from `param_groups[i]["lr"]`, so a captured CUDA graph replays the current learning rate.

Without rows and ok the updates are torch.optim.SGD's, operation for operation (the same
in-place ops on the same tensors); momentum buffers start at zero, which gives the same first
step as SGD's copy of the first gradient (0 * momentum + d_p = d_p exactly).
"""

from __future__ import annotations

from typing import Callable

import torch


class MaskedSGD(torch.optim.SGD):
    """torch.optim.SGD with row masks (`rows_for`) and a device-side skip flag (`step(ok=...)`)."""

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False,
                 rows_for: Callable[[torch.Tensor], torch.Tensor | None] | None = None,
                 capturable: bool = False):
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
        self.rows_for = rows_for
        self.capturable = capturable
        self._lr_tensors: dict[int, tuple[float, torch.Tensor]] = {}

    def sync_lr(self) -> None:
        """Copy each group's `lr` into its device tensor (capturable mode; a no-op when unchanged)."""
        for index, group in enumerate(self.param_groups):
            self._lr_tensor(index, group)

    def _lr_tensor(self, index: int, group: dict) -> torch.Tensor | None:
        params = [p for p in group["params"]]
        if not params:
            return None
        cached = self._lr_tensors.get(index)
        if cached is None:
            tensor = torch.tensor(float(group["lr"]), dtype=torch.float32, device=params[0].device)
            self._lr_tensors[index] = (float(group["lr"]), tensor)
            return tensor
        value, tensor = cached
        if value != float(group["lr"]):
            tensor.fill_(float(group["lr"]))  # a device op: no host sync
            self._lr_tensors[index] = (float(group["lr"]), tensor)
        return tensor

    @torch.no_grad()
    def step(self, closure=None, ok: torch.Tensor | None = None):
        """One update; `ok` (0-dim bool tensor) False leaves everything as it was."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for index, group in enumerate(self.param_groups):
            if group.get("dampening", 0) or group.get("maximize", False):
                raise ValueError("MaskedSGD supports neither dampening nor maximize")
            lr_t = self._lr_tensor(index, group) if self.capturable else None
            for p in group["params"]:
                if p.grad is None:
                    continue  # as torch.optim.SGD: no decay, no momentum for a parameter without gradient
                rows = self.rows_for(p) if self.rows_for is not None else None
                self._update(p, rows, ok, group, lr_t)
        return loss

    def _update(self, p: torch.Tensor, rows: torch.Tensor | None, ok: torch.Tensor | None, group: dict,
                lr_t: torch.Tensor | None) -> None:
        momentum, weight_decay, nesterov = group["momentum"], group["weight_decay"], group["nesterov"]
        state = self.state[p]
        if momentum != 0 and state.get("momentum_buffer") is None:
            state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        buf_all = state.get("momentum_buffer") if momentum != 0 else None
        if rows is None and ok is None:
            _sgd_in_place(p, p.grad, buf_all, group, lr_t)
            return
        # Out of place on the rows used (all rows when `rows` is None), then written back.
        param = p if rows is None else p.index_select(0, rows)
        grad = p.grad if rows is None else p.grad.index_select(0, rows)
        d_p = grad if weight_decay == 0 else grad.add(param, alpha=weight_decay)
        buf = new_buf = None
        if buf_all is not None:
            buf = buf_all if rows is None else buf_all.index_select(0, rows)
            new_buf = buf.mul(momentum).add_(d_p, alpha=1)
            d_p = d_p.add(new_buf, alpha=momentum) if nesterov else new_buf
        new_param = _apply_lr(param, d_p, group["lr"], lr_t)
        if ok is not None:
            new_param = torch.where(ok, new_param, param)
            if new_buf is not None:
                new_buf = torch.where(ok, new_buf, buf)
        _write_back(p, rows, new_param)
        if new_buf is not None:
            _write_back(buf_all, rows, new_buf)


def _apply_lr(param: torch.Tensor, d_p: torch.Tensor, lr: float, lr_t: torch.Tensor | None) -> torch.Tensor:
    """param - lr * d_p (out of place), with the lr of the group or of its device tensor."""
    if lr_t is None:
        return param.add(d_p, alpha=-lr)
    return param.addcmul(d_p, lr_t.to(d_p.dtype), value=-1)


def _write_back(full: torch.Tensor, rows: torch.Tensor | None, values: torch.Tensor) -> None:
    if rows is None:
        full.copy_(values)
    else:
        full.index_copy_(0, rows, values)


def _sgd_in_place(p: torch.Tensor, grad: torch.Tensor, buf: torch.Tensor | None, group: dict,
                  lr_t: torch.Tensor | None) -> None:
    """torch.optim.SGD's single-tensor update, op for op (buf, when given, is the momentum buffer)."""
    momentum, weight_decay, nesterov = group["momentum"], group["weight_decay"], group["nesterov"]
    d_p = grad if weight_decay == 0 else grad.add(p, alpha=weight_decay)
    if buf is not None:
        buf.mul_(momentum).add_(d_p, alpha=1)
        d_p = d_p.add(buf, alpha=momentum) if nesterov else buf
    if lr_t is None:
        p.add_(d_p, alpha=-group["lr"])
    else:
        p.addcmul_(d_p, lr_t.to(d_p.dtype), value=-1)
