"""The ENAS macro CNN space: a chain of L layers, each picks an op and skip connections.

Structure (constructor): `num_layers` L (12 for search, 24 final in ENAS; at least 3).

Decisions, in order, for layer i = 0..L-1 (all in group "main"):
    layer{i}_op    op: one of MACRO_OPS
    layer{i}_skip  skip (i >= 1): one bit for each earlier layer 0..i-1
The last decision of every layer is an anchor (the controller's attention targets).

Network:

    images (B, C_in, H, W) -> stem: conv3x3 to `channels` + BN
      layer i: h = op_i(x)                                  # x: output of layer i-1 (or the stem)
               h = BN(h + sum of outputs of earlier layers j whose skip bit is on)
      after layers d-1 and 2d-1 (d = L // 3; ENAS's pool layers, so three stages of about L/3
      layers): every earlier output still needed later is halved in size in place by its own
      factorized reduction (channels stay `channels`, as in the ENAS search)
    -> global average pool -> dropout -> linear -> logits (B, K)

Skip inputs are summed (not concatenated), then the layer's BN normalises the sum; the BN
is applied after every layer, layer 0 included. Ops are ReLU -> conv -> BN (see cnn_ops), or,
with `branch_conv1x1=True`, the official branches of melodyguan/enas
src/cifar10/general_child.py (`_conv_branch` :483-544, `_pool_branch` :546-589): every branch
starts with a 1x1 conv -> BN -> ReLU, then a kxk conv (or one separable conv: depthwise kxk +
pointwise) -> BN -> ReLU, or a 3x3 pool (stride 1, no BN after it).

Sizes (builder kwargs): `num_classes`, `in_channels`, `image_size` (from the data; the
network pools globally so any image of at least 4x4 works), `channels` (36), `dropout` (0.0),
`branch_conv1x1` (False; ENAS: True).

Supernet vs standalone: the same `MacroCNN` module. The supernet holds every op of every
layer (`layers.{i}.ops.{op_index}`) and a reduction for every earlier layer at each
reduction point (`reductions.{r}.{j}`), uses non-affine BN on batch statistics, and runs
only the ops the architecture picks. A standalone network holds only the chosen op of each
layer and the reductions its skips need, under the same names, with normal affine BN;
`load_inherited` copies by name (BN scale/shift and statistics keep their fresh values).
"""

from __future__ import annotations

import torch
from torch import nn

from enas.arch import Architecture, ArchitectureError, Decision
from enas.spaces.base import Graph, SearchSpace, check_int, register_space
from enas.spaces.cnn_ops import FactorizedReduce, batch_norm, make_op

MACRO_OPS = ("conv3x3", "conv5x5", "sep_conv3x3", "sep_conv5x5", "max_pool3x3", "avg_pool3x3")

# A genotype is one (op index, skip bits) pair per layer; layer 0 has no skip bits.
Genotype = list[tuple[int, tuple[int, ...]]]


def reduction_layers(num_layers: int) -> tuple[int, int]:
    """Indices of the layers after which the spatial size halves (ENAS: d-1 and 2d-1, d = L // 3)."""
    d = num_layers // 3
    return (d - 1, 2 * d - 1)


def needed_after(genotype: Genotype, layer: int) -> list[int]:
    """Layers j <= `layer` whose output is used after `layer`: the chain input and skip sources."""
    needed = {layer}
    for op_index, skips in genotype[layer + 1:]:
        needed.update(j for j, bit in enumerate(skips) if bit and j <= layer)
    return sorted(needed)


#: official branch body per op label: ("conv" | "sep" | "max" | "avg", kernel size)
_BRANCH_BODY = {"conv3x3": ("conv", 3), "conv5x5": ("conv", 5), "sep_conv3x3": ("sep", 3),
                "sep_conv5x5": ("sep", 5), "max_pool3x3": ("max", 3), "avg_pool3x3": ("avg", 3)}


def official_branch(label: str, channels: int, affine: bool, track: bool) -> nn.Sequential:
    """An ENAS macro branch: conv1x1-BN-ReLU, then conv-BN-ReLU, sepconv-BN-ReLU or a pool.

    general_child.py:500-504 (1x1 before every conv branch), :506-543 (kxk or separable conv,
    BN, ReLU), :562-580 (1x1 before every pool branch, then the 3x3 pool of stride 1).
    """
    kind, k = _BRANCH_BODY[label]
    c = channels
    layers = [nn.Conv2d(c, c, 1, bias=False), batch_norm(c, affine, track), nn.ReLU()]
    if kind == "conv":
        layers += [nn.Conv2d(c, c, k, padding=k // 2, bias=False)]
    elif kind == "sep":
        layers += [nn.Conv2d(c, c, k, padding=k // 2, groups=c, bias=False), nn.Conv2d(c, c, 1, bias=False)]
    elif kind == "max":
        return nn.Sequential(*layers, nn.MaxPool2d(3, 1, 1))
    else:
        return nn.Sequential(*layers, nn.AvgPool2d(3, 1, 1, count_include_pad=False))
    return nn.Sequential(*layers, batch_norm(c, affine, track), nn.ReLU())


def _macro_op(label: str, channels: int, affine: bool, track: bool, branch_conv1x1: bool) -> nn.Module:
    """The official branch, or the project's op (ReLU-conv-BN / pool, see cnn_ops)."""
    if branch_conv1x1:
        return official_branch(label, channels, affine, track)
    return make_op(label, channels, 1, affine, track)


class MacroLayer(nn.Module):
    """One layer: candidate ops keyed by op index (all of them in the supernet) and the BN after the sum."""

    def __init__(self, op_indices: list[int], channels: int, affine: bool, track_running_stats: bool,
                 branch_conv1x1: bool = False):
        super().__init__()
        self.ops = nn.ModuleDict({str(k): _macro_op(MACRO_OPS[k], channels, affine, track_running_stats,
                                                    branch_conv1x1) for k in op_indices})
        self.bn = batch_norm(channels, affine, track_running_stats)


class MacroCNN(nn.Module):
    """The macro network: a supernet when `genotype` is None, else the standalone network of it."""

    def __init__(self, space: "MacroCNNSpace", genotype: Genotype | None, num_classes: int, in_channels: int,
                 channels: int, dropout: float, affine: bool, track_running_stats: bool,
                 branch_conv1x1: bool = False):
        super().__init__()
        self.space = space
        self.genotype = genotype
        num_layers = space.num_layers
        self.reduce_after = reduction_layers(num_layers)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
                                  batch_norm(channels, affine, track_running_stats))
        all_ops = list(range(len(MACRO_OPS)))
        self.layers = nn.ModuleList(
            MacroLayer(all_ops if genotype is None else [genotype[i][0]], channels, affine, track_running_stats,
                       branch_conv1x1)
            for i in range(num_layers))
        self.reductions = nn.ModuleDict()
        for r in self.reduce_after:
            sources = range(r + 1) if genotype is None else needed_after(genotype, r)
            self.reductions[str(r)] = nn.ModuleDict(
                {str(j): FactorizedReduce(channels, channels, affine, track_running_stats) for j in sources})
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, images: torch.Tensor, arch: Architecture | None = None) -> torch.Tensor:
        """images (B, C, H, W) -> logits (B, K). A standalone network ignores `arch`."""
        genotype = self.genotype if self.genotype is not None else self.space.genotype(arch)
        x = self.stem(images)  # (B, C, H, W)
        outputs: list[torch.Tensor | None] = []  # layer outputs at the current spatial size (None: not needed)
        for i, (op_index, skips) in enumerate(genotype):
            layer = self.layers[i]
            h = layer.ops[str(op_index)](x)
            for j, bit in enumerate(skips):
                if bit:
                    h = h + outputs[j]
            outputs.append(layer.bn(h))
            if i in self.reduce_after:
                reduce = self.reductions[str(i)]
                keep = set(needed_after(genotype, i))
                outputs = [reduce[str(j)](o) if j in keep else None for j, o in enumerate(outputs)]
            x = outputs[-1]
        return self.classifier(self.dropout(x.mean(dim=(2, 3))))  # (B, K)


@register_space("macro_cnn")
class MacroCNNSpace(SearchSpace):
    """ENAS macro space: per layer an op and skip connections to every earlier layer."""

    task = "image"

    def __init__(self, num_layers: int = 12):
        check_int("macro_cnn", "num_layers (three stages)", num_layers, 3)
        self.num_layers = num_layers

    def structure(self) -> dict:
        return {"num_layers": self.num_layers}

    def decisions(self) -> list[Decision]:
        out = []
        for i in range(self.num_layers):
            out.append(Decision(f"layer{i}_op", "op", len(MACRO_OPS), MACRO_OPS, anchor=(i == 0)))
            if i >= 1:
                out.append(Decision(f"layer{i}_skip", "skip", i, anchor=True))
        return out

    def genotype(self, arch: Architecture | None) -> Genotype:
        """Validate `arch` and return one (op index, skip bits) pair per layer."""
        if arch is None:
            raise ArchitectureError("macro_cnn supernet: forward needs an architecture (model(images, arch))")
        choices = self.validate(arch).choices
        genotype, pos = [], 0
        for i in range(self.num_layers):
            skips = choices[pos + 1] if i >= 1 else ()
            genotype.append((choices[pos], skips))
            pos += 2 if i >= 1 else 1
        return genotype

    def build_supernet(self, num_classes: int, in_channels: int, image_size: int, channels: int = 36,
                       dropout: float = 0.0, branch_conv1x1: bool = False) -> MacroCNN:
        _check_ints(num_classes, in_channels, image_size, channels)
        return MacroCNN(self, None, num_classes, in_channels, channels, dropout,
                        affine=False, track_running_stats=False, branch_conv1x1=bool(branch_conv1x1))

    def build_network(self, arch: Architecture, num_classes: int, in_channels: int, image_size: int,
                      channels: int = 36, dropout: float = 0.0, branch_conv1x1: bool = False) -> MacroCNN:
        _check_ints(num_classes, in_channels, image_size, channels)
        return MacroCNN(self, self.genotype(arch), num_classes, in_channels, channels, dropout,
                        affine=True, track_running_stats=True, branch_conv1x1=bool(branch_conv1x1))

    def graph(self, arch: Architecture) -> Graph:
        genotype = self.genotype(arch)
        reduce_after = reduction_layers(self.num_layers)
        g = Graph(nodes=[("input", "images")], edges=[])
        prev = "input"
        for i, (op_index, skips) in enumerate(genotype):
            node = f"layer{i}"
            g.nodes.append((node, f"{i}: {MACRO_OPS[op_index]}"))
            g.edges.append((prev, node, "reduce" if i - 1 in reduce_after else ""))
            g.edges.extend((f"layer{j}", node, "skip") for j, bit in enumerate(skips) if bit)
            prev = node
        g.nodes.append(("output", "avgpool + linear"))
        g.edges.append((prev, "output", ""))
        return g


def _check_ints(num_classes: int, in_channels: int, image_size: int, channels: int) -> None:
    for name, value, low in (("num_classes", num_classes, 1), ("in_channels", in_channels, 1),
                             ("image_size", image_size, 4), ("channels", channels, 2)):
        check_int("macro_cnn", name, value, low)
