"""What the benchmarks share."""

from __future__ import annotations

import platform


def cpu_model() -> str:
    """The CPU's model name (for the header of a result table)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def device_line(device) -> str:
    """'device cpu', or 'device cuda (<GPU name>, CUDA <version>)' for a result table's header."""
    import torch
    device = torch.device(device)
    if device.type != "cuda":
        return f"device {device}"
    return f"device cuda ({torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda})"
