"""TensorBoard logging helpers (names say what they are: supernet/, controller/, final/)."""

from __future__ import annotations

import os

from torch.utils.tensorboard import SummaryWriter


def open_writer(run_dir: str, subdir: str = "tb") -> SummaryWriter:
    """An event-file writer under `<run_dir>/<subdir>`."""
    return SummaryWriter(log_dir=os.path.join(run_dir, subdir))


def log_scalars(writer: SummaryWriter | None, prefix: str, values: dict, step: int) -> None:
    """Write every scalar of `values` as `<prefix>/<key>`."""
    if writer is None:
        return
    for key, value in values.items():
        if value is not None:
            writer.add_scalar(f"{prefix}/{key}", float(value), step)


def log_arch_image(writer: SummaryWriter | None, tag: str, space, arch, step: int, title: str = "") -> None:
    """Draw an architecture into TensorBoard's image tab."""
    if writer is None:
        return
    from enas.draw import to_array
    writer.add_image(tag, to_array(space.graph(arch), title=title), step, dataformats="HWC")
