"""Speed options for GPUs (config section `accel`), each off by default.

| option            | what it does                                                  | results vs the default path |
|-------------------|---------------------------------------------------------------|-----------------------------|
| amp: bf16         | forward passes (and the loss) under torch.autocast(bfloat16)   | close: bf16 products (tests: loss within 2%) |
| tf32              | float32 matrix products on TF32 tensor cores (CUDA)            | close: ~1e-3 relative        |
| channels_last     | CNN models and images in NHWC memory format                    | equal up to rounding (1e-5)  |
| cudnn_benchmark   | cuDNN times its kernels once per shape and keeps the fastest   | equal up to rounding         |
| static_graph      | rnn_cell: the architecture-as-data supernet (one graph)        | equal up to rounding (1e-5)  |
| sync_free         | search omega steps read nothing back per step (training.py)    | same weights; a NaN storm stops at the next log/checkpoint point |
| cuda_graphs       | static_graph on CUDA: the whole omega step (forward, backward, | equal up to rounding; dropout masks differ (same distribution) |
|                   | clip, update) captured once and replayed; reward forwards too  |                              |
|                   | (one-architecture steps; fair_sampling groups run uncaptured)  |                              |
| compile           | static_graph: torch.compile the cell's timestep (fuses it)     | equal up to rounding         |
| eval_batch_size   | overrides data.eval_batch_size: the validation batch of rewards | different estimator: more tokens per reward |
| strategy_device   | cpu: the controller samples on the CPU while the GPU trains    | different random stream (same distribution) |

The build layer (enas/build.py) reads the section through `AccelOptions.from_config` and applies
it with the functions here; nothing below the build layer reads the config.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields

import torch

from enas.utils import UserError

log = logging.getLogger(__name__)

AMP_DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class AccelOptions:
    """The `accel` config section (see the module docstring)."""

    amp: str | None = None
    tf32: bool = False
    channels_last: bool = False
    cudnn_benchmark: bool = False
    static_graph: bool = False
    sync_free: bool = False
    cuda_graphs: bool = False
    compile: bool = False
    eval_batch_size: int | None = None
    strategy_device: str | None = None

    @classmethod
    def from_config(cls, section: dict | None) -> "AccelOptions":
        """Options from a plain dict (None or missing keys: defaults); unknown keys are an error."""
        section = dict(section or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(section) - known)
        if unknown:
            raise UserError(f"accel: unknown option(s) {unknown}; known: {sorted(known)}")
        options = cls(**section)
        if options.amp not in (None, "none", *AMP_DTYPES):
            raise UserError(f"accel.amp={options.amp!r}: use null or bf16")
        if options.strategy_device not in (None, "auto", "cpu"):
            raise UserError(f"accel.strategy_device={options.strategy_device!r}: use null (the run's device) or cpu")
        if options.eval_batch_size is not None and options.eval_batch_size < 1:
            raise UserError(f"accel.eval_batch_size={options.eval_batch_size}: must be >= 1 (or null)")
        return options

    @property
    def amp_dtype(self) -> torch.dtype | None:
        """The autocast dtype, or None for full precision."""
        return AMP_DTYPES.get(self.amp) if self.amp else None

    def for_device(self, device: torch.device) -> "AccelOptions":
        """These options with the CUDA-only ones (tf32, cudnn_benchmark, cuda_graphs) turned off
        on another device, saying so once."""
        if torch.device(device).type == "cuda":
            return self
        off = [name for name in ("tf32", "cudnn_benchmark", "cuda_graphs") if getattr(self, name)]
        if not off:
            return self
        log.info("accel: %s need CUDA; off on %s", ", ".join(off), device)
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update({name: False for name in off})
        return AccelOptions(**values)


def apply_backend(options: AccelOptions) -> None:
    """Process-wide backend switches: cudnn.benchmark and TF32 matrix products."""
    if options.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    if options.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def configure_task(task, options: AccelOptions) -> None:
    """Tell the task to run its forward passes under autocast and/or with NHWC images."""
    task.amp_dtype = options.amp_dtype
    if options.channels_last and task.kind == "image":
        task.channels_last = True


def prepare_model(model: torch.nn.Module, options: AccelOptions, kind: str) -> torch.nn.Module:
    """channels_last for image models (4-D weights become NHWC); others are returned unchanged."""
    if options.channels_last and kind == "image":
        return model.to(memory_format=torch.channels_last)
    return model


def data_section(data: dict, options: AccelOptions) -> dict:
    """The data config with `eval_batch_size` replaced when the option sets it."""
    if options.eval_batch_size is None:
        return data
    return {**data, "eval_batch_size": options.eval_batch_size}


def strategy_device(device: torch.device, options: AccelOptions) -> torch.device:
    """Where the strategy's parameters live: the run's device, or the CPU when asked."""
    return torch.device("cpu") if options.strategy_device == "cpu" else device
