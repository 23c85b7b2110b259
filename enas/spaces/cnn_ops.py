"""Convolutional operations shared by the CNN search spaces (macro_cnn, micro_cnn, ...).

Every candidate op keeps the number of channels and is built as

    make_op(label, channels, stride, affine, track_running_stats, sep_stack=1)

- Convolutions are ReLU -> conv -> BN (the order of ENAS's micro cells and of DARTS), so an
  op's output is normalised and the next op starts from a ReLU. A separable conv is
  ReLU -> depthwise kxk conv -> pointwise 1x1 conv -> BN, repeated `sep_stack` times (only the
  first repeat has the stride). The official micro child stacks it twice, in the supernet and
  the final network alike (melodyguan/enas src/cifar10/micro_child.py:579-623 `_enas_conv`,
  stack_conv=2; :341-367 `_fixed_conv`, stack_convs=2).
- Pools are 3x3 with padding 1 and no parameters (channels never change, so no 1x1 conv).
- `identity` with stride 2 is a factorized reduction (two offset 1x1 convs of stride 2).
- `affine`: BatchNorm has a learnable scale/shift. Supernets use affine=False (one shared
  scale/shift would serve every sampled architecture; ENAS and DARTS search without it),
  standalone networks use affine=True.
- `track_running_stats`: supernets use False, so BN always normalises with the statistics of
  the current batch (running statistics accumulated over many different architectures
  mislead the ranking of architectures); standalone networks use normal BN (True).

All tensors are (B, C, H, W).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def batch_norm(channels: int, affine: bool, track_running_stats: bool) -> nn.BatchNorm2d:
    """BatchNorm2d with the space's choice of affine / running statistics."""
    return nn.BatchNorm2d(channels, affine=affine, track_running_stats=track_running_stats)


class ReLUConvBN(nn.Sequential):
    """ReLU -> kxk conv (same padding) -> BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, affine: bool, track_running_stats: bool):
        super().__init__(
            nn.ReLU(),  # not in place: the input may feed other ops too
            nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
            batch_norm(c_out, affine, track_running_stats),
        )


class SepConv(nn.Sequential):
    """Depthwise-separable conv: (ReLU -> depthwise kxk -> pointwise 1x1 -> BN) x `stack`.

    The modules form one flat sequence (4 per repeat), so a single repeat keeps the names
    0..3 it always had.
    """

    def __init__(self, channels: int, kernel: int, stride: int, affine: bool, track_running_stats: bool,
                 stack: int = 1):
        if isinstance(stack, bool) or not isinstance(stack, int) or stack < 1:
            raise ValueError(f"SepConv: stack must be an integer >= 1, got {stack!r}")
        layers = []
        for r in range(stack):
            layers += [
                nn.ReLU(),
                nn.Conv2d(channels, channels, kernel, stride if r == 0 else 1, kernel // 2,
                          groups=channels, bias=False),
                nn.Conv2d(channels, channels, 1, bias=False),
                batch_norm(channels, affine, track_running_stats),
            ]
        super().__init__(*layers)


class FactorizedReduce(nn.Module):
    """Halve H and W: ReLU, two 1x1 convs of stride 2 on pixel grids offset by one, concat, BN.

    A single strided 1x1 conv would only ever see the even pixels; the second path sees the odd ones.
    """

    def __init__(self, c_in: int, c_out: int, affine: bool, track_running_stats: bool):
        super().__init__()
        self.conv_a = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_b = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = batch_norm(c_out, affine, track_running_stats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))  # (B, C, H, W), moved up-left by one pixel
        return self.bn(torch.cat([self.conv_a(x), self.conv_b(shifted)], dim=1))  # (B, c_out, H/2, W/2)


def _identity(channels: int, stride: int, affine: bool, track_running_stats: bool) -> nn.Module:
    if stride == 1:
        return nn.Identity()
    return FactorizedReduce(channels, channels, affine, track_running_stats)


#: label -> constructor(channels, stride, affine, track_running_stats, sep_stack)
OPS = {
    "conv3x3": lambda c, s, a, t, k: ReLUConvBN(c, c, 3, s, a, t),
    "conv5x5": lambda c, s, a, t, k: ReLUConvBN(c, c, 5, s, a, t),
    "sep_conv3x3": lambda c, s, a, t, k: SepConv(c, 3, s, a, t, k),
    "sep_conv5x5": lambda c, s, a, t, k: SepConv(c, 5, s, a, t, k),
    "max_pool3x3": lambda c, s, a, t, k: nn.MaxPool2d(3, s, 1),
    "avg_pool3x3": lambda c, s, a, t, k: nn.AvgPool2d(3, s, 1, count_include_pad=False),
    "identity": lambda c, s, a, t, k: _identity(c, s, a, t),
}


def make_op(label: str, channels: int, stride: int, affine: bool, track_running_stats: bool,
            sep_stack: int = 1) -> nn.Module:
    """Build the op called `label` (one of OPS); separable convs repeat `sep_stack` times."""
    if label not in OPS:
        raise ValueError(f"unknown CNN op {label!r}; known: {', '.join(OPS)}")
    if stride not in (1, 2):
        raise ValueError(f"op {label!r}: stride must be 1 or 2, got {stride!r}")
    return OPS[label](channels, stride, affine, track_running_stats, sep_stack)


def drop_path(x: torch.Tensor, drop_prob: float, training: bool = True) -> torch.Tensor:
    """Zero whole samples of `x` with probability `drop_prob`, scale the kept ones by 1/keep."""
    if not training or drop_prob <= 0.0:
        return x
    if drop_prob >= 1.0:
        raise ValueError(f"drop_path: drop_prob must be below 1, got {drop_prob}")
    keep = 1.0 - drop_prob
    mask = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x * mask / keep  # (B, ...) with whole samples zeroed
