"""The NAS-RL convolutional search space (Zoph & Le, ICLR 2017), space `nas_cnn`.

Every layer is conv(fh x fw, n filters, stride) + BatchNorm + ReLU. The controller picks,
for each layer i, in this order:

    layer{i}_fh       filter height       (op, labels "1","3","5","7")
    layer{i}_fw       filter width        (op)
    layer{i}_filters  number of filters   (op, labels "24","36","48","64")
    layer{i}_stride   stride              (op; only when more than one stride is given)
    layer{i}_skip     for i >= 1: one bit per earlier layer j < i, "layer j feeds layer i"
                      (kind "skip": the controller's attention over the anchors + sigmoid)

The last decision of every layer is an anchor, so the skip decision of layer i attends over
exactly the i anchors of layers 0..i-1.

Wiring (one flag, `connect_previous`):
- True (default): layer i's input is the depth-concatenation of layer i-1's output (always)
  and of the outputs of the earlier layers whose skip bit is on; bit i-1 is then redundant.
- False (the paper's exact rule): only the layers whose bit is on feed layer i; a layer with
  no input layer reads the image.
Layer 0 always reads the image. When inputs differ in spatial size (strides), each is
average-pooled down to the smallest size among them (NAS-RL pads the smaller ones with zeros
instead). Layers that feed no later layer are global-average-pooled and concatenated (NAS-RL:
"all layers that have no output connections are concatenated and sent to the final hidden
layer"), then dropout and a linear classifier.

Children are trained from scratch (evaluator=standalone): filter shapes and counts differ per
layer, so weight sharing would need kernel and channel slicing, which this space does not do.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from enas.arch import Architecture, Decision
from enas.spaces.base import Graph, SearchSpace, check_int, register_space


def _positive_ints(field: str, values, odd: bool = False) -> tuple[int, ...]:
    """Check a structure list (positive, distinct ints; odd when asked) and return it as a tuple."""
    values = tuple(values)
    if not values:
        raise ValueError(f"nas_cnn: {field} must not be empty")
    for v in values:
        check_int("nas_cnn", f"each of {field}", v, 1)
        if odd and v % 2 == 0:
            raise ValueError(f"nas_cnn: {field} must be odd (same padding), got {v}")
    if len(set(values)) != len(values):
        raise ValueError(f"nas_cnn: {field} has duplicates: {list(values)}")
    return values


def scaled_filters(num_filters: int, width_multiplier: float) -> int:
    """Filter count after the width multiplier (the low-fidelity knob), at least 1."""
    return max(1, int(round(num_filters * width_multiplier)))


class ConvBNReLU(nn.Module):
    """conv(fh x fw, stride, same padding) + BatchNorm + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, fh: int, fw: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, (fh, fw), stride=stride,
                              padding=(fh // 2, fw // 2), bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def concat_inputs(inputs: list[torch.Tensor]) -> torch.Tensor:
    """Depth-concatenate (B, C_k, H_k, W_k) tensors, average-pooling each to the smallest H, W."""
    height = min(x.shape[2] for x in inputs)
    width = min(x.shape[3] for x in inputs)
    resized = [x if x.shape[2:] == (height, width) else F.adaptive_avg_pool2d(x, (height, width))
               for x in inputs]
    return torch.cat(resized, dim=1)  # (B, sum C_k, height, width)


class NASCNNNetwork(nn.Module):
    """A standalone NAS-RL CNN for one architecture: `model(images (B,C,H,W), arch=None) -> (B,K)`.

    layers: one (fh, fw, filters, stride) tuple per layer (filters already scaled).
    inputs: for each layer the list of sources it concatenates; -1 is the image.
    """

    def __init__(self, layers: list[tuple[int, int, int, int]], inputs: list[list[int]],
                 num_classes: int, in_channels: int, dropout: float = 0.0):
        super().__init__()
        self.inputs = [list(src) for src in inputs]
        channels = {-1: in_channels}
        self.layers = nn.ModuleList()
        for i, (fh, fw, filters, stride) in enumerate(layers):
            cin = sum(channels[j] for j in self.inputs[i])
            self.layers.append(ConvBNReLU(cin, filters, fh, fw, stride))
            channels[i] = filters
        used = {j for src in self.inputs for j in src}
        # Layers with no output connection make up the final hidden layer.
        self.outputs = [i for i in range(len(layers)) if i not in used]
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(sum(channels[i] for i in self.outputs), num_classes)

    def layer_outputs(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's output (B, C_i, H_i, W_i), in order."""
        outs = {-1: images}
        for i, layer in enumerate(self.layers):
            outs[i] = layer(concat_inputs([outs[j] for j in self.inputs[i]]))
        return [outs[i] for i in range(len(self.layers))]

    def forward(self, images: torch.Tensor, arch: Architecture | None = None) -> torch.Tensor:
        outs = self.layer_outputs(images)
        # Global average pooling before the concatenation makes differing spatial sizes harmless.
        hidden = torch.cat([outs[i].mean(dim=(2, 3)) for i in self.outputs], dim=1)  # (B, C_out)
        return self.classifier(self.dropout(hidden))  # (B, K)


@register_space("nas_cnn")
class NASCNNSpace(SearchSpace):
    """NAS-RL CNN space: per-layer filter height/width, filter count, stride, skip connections."""

    task = "image"

    def __init__(self, num_layers: int = 6, filter_sizes=(1, 3, 5, 7), num_filters=(24, 36, 48, 64),
                 strides=(1,), connect_previous: bool = True):
        check_int("nas_cnn", "num_layers", num_layers, 1)
        self.num_layers = num_layers
        self.filter_sizes = _positive_ints("filter_sizes", filter_sizes, odd=True)
        self.num_filters = _positive_ints("num_filters", num_filters)
        self.strides = _positive_ints("strides", strides)
        self.connect_previous = bool(connect_previous)

    def structure(self) -> dict:
        return {"num_layers": self.num_layers, "filter_sizes": list(self.filter_sizes),
                "num_filters": list(self.num_filters), "strides": list(self.strides),
                "connect_previous": self.connect_previous}

    def decisions(self) -> list[Decision]:
        sizes = tuple(str(k) for k in self.filter_sizes)
        out = []
        for i in range(self.num_layers):
            layer = [Decision(f"layer{i}_fh", "op", len(sizes), sizes),
                     Decision(f"layer{i}_fw", "op", len(sizes), sizes),
                     Decision(f"layer{i}_filters", "op", len(self.num_filters),
                              tuple(str(n) for n in self.num_filters))]
            if len(self.strides) > 1:
                layer.append(Decision(f"layer{i}_stride", "op", len(self.strides),
                                      tuple(str(s) for s in self.strides)))
            if i >= 1:
                layer.append(Decision(f"layer{i}_skip", "skip", i))
            last = layer[-1]
            layer[-1] = Decision(last.name, last.kind, last.num_choices, last.labels, anchor=True)
            out.extend(layer)
        return out

    def parse(self, arch: Architecture) -> tuple[list[tuple[int, int, int, int]], list[list[int]]]:
        """Validate `arch`; return per-layer (fh, fw, filters, stride) and input lists (-1 = image)."""
        arch = self.validate(arch)
        values = dict(zip((d.name for d in self.decisions()), arch.choices))
        layers, inputs = [], []
        for i in range(self.num_layers):
            stride = self.strides[values[f"layer{i}_stride"]] if len(self.strides) > 1 else self.strides[0]
            layers.append((self.filter_sizes[values[f"layer{i}_fh"]], self.filter_sizes[values[f"layer{i}_fw"]],
                           self.num_filters[values[f"layer{i}_filters"]], stride))
            bits = values.get(f"layer{i}_skip", ())
            src = [j for j, bit in enumerate(bits) if bit]
            if i >= 1 and self.connect_previous and i - 1 not in src:
                src.append(i - 1)
            inputs.append(sorted(src) or [-1])
        return layers, inputs

    def build_supernet(self, **sizes) -> nn.Module:
        raise NotImplementedError(
            "nas_cnn has no supernet: filter shapes and counts differ per layer, so weight sharing would "
            "need kernel/channel slicing, which this space does not do; use evaluator=standalone")

    def build_network(self, arch: Architecture, num_classes: int, in_channels: int, image_size: int,
                      width_multiplier: float = 1.0, dropout: float = 0.0) -> NASCNNNetwork:
        """A standalone network; `width_multiplier` scales every filter count (at least 1 channel).

        `image_size` is accepted for the common image-space signature; the network is fully
        convolutional with global pooling, so any input size works.
        """
        if width_multiplier <= 0:
            raise ValueError(f"nas_cnn: width_multiplier must be positive, got {width_multiplier!r}")
        if image_size < 1:
            raise ValueError(f"nas_cnn: image_size must be positive, got {image_size!r}")
        layers, inputs = self.parse(arch)
        layers = [(fh, fw, scaled_filters(n, width_multiplier), s) for fh, fw, n, s in layers]
        return NASCNNNetwork(layers, inputs, num_classes, in_channels, dropout)

    def graph(self, arch: Architecture) -> Graph:
        layers, inputs = self.parse(arch)
        g = Graph(nodes=[("image", "image")])
        used = set()
        for i, (fh, fw, n, s) in enumerate(layers):
            g.nodes.append((f"layer{i}", f"{fh}x{fw} conv {n}" + (f" /{s}" if s > 1 else "")))
            for j in inputs[i]:
                used.add(j)
                src = "image" if j == -1 else f"layer{j}"
                skip = j >= 0 and not (self.connect_previous and j == i - 1)
                g.edges.append((src, f"layer{i}", "skip" if skip else ""))
        g.nodes.append(("output", "avg pool + linear"))
        for i in range(len(layers)):
            if i not in used:
                g.edges.append((f"layer{i}", "output", ""))
        return g
