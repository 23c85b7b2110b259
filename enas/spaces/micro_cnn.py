"""The ENAS micro CNN space: a normal cell and a reduction cell, stacked into a network.

Structure (constructor): `num_nodes` B (5 in ENAS).

Decisions, in order, for cell in ("normal", "reduce") (group = the cell name), node j = 0..B-1:
    {cell}_node{j}_in_a   input, j+2 choices: 0, 1 = the two cell inputs, 2+k = node k
    {cell}_node{j}_in_b   input, j+2 choices
    {cell}_node{j}_op_a   op: one of MICRO_OPS
    {cell}_node{j}_op_b   op (anchor)

Op decisions carry the official controller's prior (melodyguan/enas
src/cifar10/micro_controller.py:100-109, 178-185): a learned op-logit bias that starts at 10 for
the separable convs and 0 for the others (squashed by tanh, so the convs dominate early), and,
in the normal cell only, a fixed bias of +0.25 for the separable convs and -0.25 for the others
(`OP_INIT_BIAS`, `NORMAL_OP_FIXED_BIAS`; a controller applies them with `priors=True`).

Cell (inputs s0, s1: the outputs of the two previous cells):

    x0 = pre0(s0), x1 = pre1(s1)       # to `c` channels at this cell's resolution: ReLU-conv1x1-BN,
                                       # or a factorized reduction when the input is twice as large
    node j = op_a(in_a) + op_b(in_b)   # every op has stride 1
    out = BN(conv1x1(ReLU(concat(loose ends))))   # loose ends: nodes no other node uses as input
                                                  # (the two cell inputs are never output)

A reduction cell doubles `c` and halves the resolution by reducing both of its inputs with
factorized reductions (the ENAS search layout: its ops then run at the reduced size).
The 1x1 output conv holds one (c, c, 1, 1) weight per node (`out.{j}`); the weights of the
loose ends are concatenated, which is one 1x1 conv over the concatenated nodes.

Network (ENAS):

    images -> stem: conv3x3 to 3*channels + BN
      -> n normal cells -> reduction cell -> n normal cells -> reduction cell -> rest normal cells
         (n = num_layers // 3; the last stage takes num_layers - 2n)
      [aux head on the second reduction cell's output: training mode only, when aux_head]
    -> global average pool -> dropout -> linear -> logits (B, K)

Drop path: `network.drop_path_prob` (the trainer sets it per epoch) zeroes whole samples of
every op output except identity, in training mode only. Supernets have the attribute too (0).

Sizes (builder kwargs): `num_classes`, `in_channels`, `image_size` (from the data; at least
4), `channels` (20; the first stage's cell width), `num_layers` (6 search, 15 final: normal
cells in total), `aux_head` (False), `dropout` (0.0), `sep_conv_stack` (1; ENAS: 2, a separable
conv is ReLU-sepconv-BN twice, see cnn_ops), `per_input_weights` (False; ENAS: True, below).

Supernet layout. What ENAS does (src/cifar10/micro_child.py:579-623 `_enas_conv`): each slot
(x / y, here a / b) of each node holds, for every op, one set of weights *per input index* the
slot may pick (w_depth, w_point of shape [num_possible_inputs, ...] indexed by the chosen input)
and a learned, affine BN scale/offset per input index (normalising with batch statistics). With
`per_input_weights=True` the supernet does the same: op k of slot a of node j reading input i
is `cells.{l}.nodes.{j}.a.{k}_{i}`, its BN affine. With `per_input_weights=False` (the layout
this project started with) every slot holds each op once (`cells.{l}.nodes.{j}.a.{k}`), shared
by all the inputs it may pick, with non-affine BN. Either way the supernet runs only the chosen
ops, skips the preprocessing of unused cell inputs, uses BN on batch statistics (no running
statistics) and has no drop path by default. A standalone network holds only the chosen ops,
the used preprocessing and the loose ends' output weights, under the same names, with normal
affine BN; `load_inherited` copies by name (the per-input BN scale/shift too).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from enas.arch import Architecture, ArchitectureError, Decision
from enas.spaces.base import Graph, SearchSpace, check_int, register_space
from enas.spaces.cnn_ops import (FactorizedReduce, ReLUConvBN, batch_norm, drop_path,
                                 make_op)

MICRO_OPS = ("identity", "sep_conv3x3", "sep_conv5x5", "avg_pool3x3", "max_pool3x3")
CELL_KINDS = ("normal", "reduce")

# The official prior per op label (official op order: sep3, sep5, avg, max, identity; bias
# [10, 10, 0, 0, 0] learned, micro_controller.py:100-104; [0.25, 0.25, -0.25, -0.25, -0.25]
# fixed, normal cell only, micro_controller.py:106-109 and :184-185).
OP_INIT_BIAS = {"sep_conv3x3": 10.0, "sep_conv5x5": 10.0, "avg_pool3x3": 0.0, "max_pool3x3": 0.0,
                "identity": 0.0}
NORMAL_OP_FIXED_BIAS = {"sep_conv3x3": 0.25, "sep_conv5x5": 0.25, "avg_pool3x3": -0.25,
                        "max_pool3x3": -0.25, "identity": -0.25}

# A cell genotype is one (in_a, in_b, op_a, op_b) tuple per node; a genotype maps cell kind -> cell genotype.
CellGenotype = list[tuple[int, int, int, int]]


def loose_ends(cell: CellGenotype) -> list[int]:
    """The nodes (0-based) that no other node of the cell uses as input, in order."""
    used = {i - 2 for node in cell for i in node[:2] if i >= 2}
    return [j for j in range(len(cell)) if j not in used]


def stage_sizes(num_layers: int) -> list[int]:
    """Normal cells per stage: num_layers // 3 in the first two stages, the rest in the third."""
    n = num_layers // 3
    return [n, n, num_layers - 2 * n]


def _preprocess(c_in: int, c_out: int, halvings: int, affine: bool, track: bool) -> nn.Module:
    """Bring a cell input to c_out channels, halving its size `halvings` (0 or 1) times."""
    if halvings == 0:
        return ReLUConvBN(c_in, c_out, 1, 1, affine, track)
    if halvings == 1:
        return FactorizedReduce(c_in, c_out, affine, track)
    raise ValueError(f"micro_cnn: a cell input must be halved {halvings} times (at most once)")


def op_key(op: int, source: int, per_input: bool) -> str:
    """Name of an op's module in a node slot: `k`, or `k_i` with one op per input index i."""
    return f"{op}_{source}" if per_input else str(op)


class Cell(nn.Module):
    """A normal or reduction cell; holds every op (supernet, `cell` None) or those of `cell`."""

    def __init__(self, kind: str, num_nodes: int, cell: CellGenotype | None, c_prev_prev: int, c_prev: int,
                 c: int, halvings: tuple[int, int], affine: bool, track: bool, sep_stack: int = 1,
                 per_input: bool = False):
        super().__init__()
        self.kind = kind
        self.per_input = per_input
        used = {i for node in cell for i in node[:2]} if cell is not None else {0, 1}
        if 0 in used:
            self.pre0 = _preprocess(c_prev_prev, c, halvings[0], affine, track)
        if 1 in used:
            self.pre1 = _preprocess(c_prev, c, halvings[1], affine, track)
        # ENAS gives the per-input ops of its supernet an affine BN (micro_child.py:600-610).
        op_args = (c, 1, affine or per_input, track, sep_stack)   # make_op(label, *op_args)
        self.nodes = nn.ModuleList(
            nn.ModuleDict({slot: self._slot_ops(j, cell, in_pos, op_pos, op_args)
                           for slot, in_pos, op_pos in (("a", 0, 2), ("b", 1, 3))})
            for j in range(num_nodes))
        outputs = range(num_nodes) if cell is None else loose_ends(cell)
        self.out = nn.ModuleDict({str(j): nn.Conv2d(c, c, 1, bias=False) for j in outputs})
        self.out_bn = batch_norm(c, affine, track)

    def _slot_ops(self, j: int, cell: CellGenotype | None, in_pos: int, op_pos: int, op_args: tuple) -> nn.ModuleDict:
        """The ops of one slot of node j: every op (per input index with per-input weights) in the
        supernet, the chosen op (of the chosen input) in a standalone network."""
        if cell is None:
            sources = range(j + 2) if self.per_input else [0]
            chosen = [(k, i) for k in range(len(MICRO_OPS)) for i in sources]
        else:
            chosen = [(cell[j][op_pos], cell[j][in_pos])]
        return nn.ModuleDict({op_key(k, i, self.per_input): make_op(MICRO_OPS[k], *op_args) for k, i in chosen})

    def node_states(self, s0: torch.Tensor, s1: torch.Tensor, cell: CellGenotype,
                    drop_prob: float) -> list[torch.Tensor | None]:
        """[x0, x1, node 0, ..., node B-1], each (B, c, h, w); an unused cell input is None."""
        used = {i for node in cell for i in node[:2]}
        states = [self.pre0(s0) if 0 in used else None, self.pre1(s1) if 1 in used else None]
        for j, (in_a, in_b, op_a, op_b) in enumerate(cell):
            slots = self.nodes[j]
            h = self._run_op(slots["a"][op_key(op_a, in_a, self.per_input)], states[in_a], drop_prob)
            h = h + self._run_op(slots["b"][op_key(op_b, in_b, self.per_input)], states[in_b], drop_prob)
            states.append(h)
        return states

    @staticmethod
    def _run_op(op: nn.Module, x: torch.Tensor, drop_prob: float) -> torch.Tensor:
        y = op(x)
        if drop_prob > 0.0 and not isinstance(op, nn.Identity):
            y = drop_path(y, drop_prob)
        return y

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, cell: CellGenotype, drop_prob: float = 0.0) -> torch.Tensor:
        states = self.node_states(s0, s1, cell, drop_prob)
        ends = loose_ends(cell)
        x = torch.cat([states[2 + j] for j in ends], dim=1)  # (B, len(ends) * c, h, w)
        weight = torch.cat([self.out[str(j)].weight for j in ends], dim=1)  # (c, len(ends) * c, 1, 1)
        return self.out_bn(F.conv2d(F.relu(x), weight))  # (B, c, h, w)


class AuxHead(nn.Module):
    """Auxiliary classifier on a (B, c, h, w) feature map (DARTS-style, pooled to 2x2 for any h, w)."""

    def __init__(self, c: int, num_classes: int, affine: bool, track: bool):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(), nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(c, 128, 1, bias=False), batch_norm(128, affine, track), nn.ReLU(),
            nn.Conv2d(128, 768, 2, bias=False), batch_norm(768, affine, track), nn.ReLU())
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))  # (B, K)


class MicroCNN(nn.Module):
    """The micro network: a supernet when `genotype` is None, else the standalone network of it."""

    def __init__(self, space: "MicroCNNSpace", genotype: dict[str, CellGenotype] | None, num_classes: int,
                 in_channels: int, channels: int, num_layers: int, aux_head: bool, dropout: float,
                 affine: bool, track: bool, sep_stack: int = 1, per_input: bool = False):
        super().__init__()
        self.space = space
        self.genotype = genotype
        self.drop_path_prob = 0.0
        c_stem = 3 * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False),
                                  batch_norm(c_stem, affine, track))
        kinds = []
        for stage, n in enumerate(stage_sizes(num_layers)):
            kinds += ["normal"] * n + (["reduce"] if stage < 2 else [])
        # (channels, resolution level = reductions so far) of the two previous outputs
        (c_pp, level_pp), (c_p, level_p) = (c_stem, 0), (c_stem, 0)
        c = channels
        self.cells = nn.ModuleList()
        self.aux_index = -1
        for i, kind in enumerate(kinds):
            level = level_p + (kind == "reduce")
            c = 2 * c if kind == "reduce" else c
            cell = None if genotype is None else genotype[kind]
            self.cells.append(Cell(kind, space.num_nodes, cell, c_pp, c_p, c, (level - level_pp, level - level_p),
                                   affine, track, sep_stack, per_input))
            if kind == "reduce" and level == 2:
                self.aux_index = i
            (c_pp, level_pp), (c_p, level_p) = (c_p, level_p), (c, level)
        self.aux = AuxHead(c_p, num_classes, affine, track) if aux_head else None
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, images: torch.Tensor, arch: Architecture | None = None):
        """images (B, C, H, W) -> logits (B, K), or (logits, aux_logits) in training with the aux head."""
        genotype = self.genotype if self.genotype is not None else self.space.genotype(arch)
        drop_prob = self.drop_path_prob if self.training else 0.0
        s0 = s1 = self.stem(images)  # (B, 3 * channels, H, W)
        aux_logits = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, genotype[cell.kind], drop_prob)
            if i == self.aux_index and self.aux is not None and self.training:
                aux_logits = self.aux(s1)
        logits = self.classifier(self.dropout(s1.mean(dim=(2, 3))))  # (B, K)
        return logits if aux_logits is None else (logits, aux_logits)


@register_space("micro_cnn")
class MicroCNNSpace(SearchSpace):
    """ENAS micro space: a normal and a reduction cell of `num_nodes` nodes each."""

    task = "image"

    def __init__(self, num_nodes: int = 5):
        check_int("micro_cnn", "num_nodes", num_nodes, 1)
        self.num_nodes = num_nodes

    def structure(self) -> dict:
        return {"num_nodes": self.num_nodes}

    def decisions(self) -> list[Decision]:
        out = []
        init = tuple(OP_INIT_BIAS[op] for op in MICRO_OPS)
        for kind in CELL_KINDS:
            fixed = tuple(NORMAL_OP_FIXED_BIAS[op] for op in MICRO_OPS) if kind == "normal" else ()
            for j in range(self.num_nodes):
                prefix = f"{kind}_node{j}"
                out += [Decision(f"{prefix}_in_a", "input", j + 2, group=kind),
                        Decision(f"{prefix}_in_b", "input", j + 2, group=kind),
                        Decision(f"{prefix}_op_a", "op", len(MICRO_OPS), MICRO_OPS, group=kind,
                                 init_bias=init, fixed_bias=fixed),
                        Decision(f"{prefix}_op_b", "op", len(MICRO_OPS), MICRO_OPS, group=kind, anchor=True,
                                 init_bias=init, fixed_bias=fixed)]
        return out

    def genotype(self, arch: Architecture | None) -> dict[str, CellGenotype]:
        """Validate `arch`; return {cell kind: [(in_a, in_b, op_a, op_b) per node]}."""
        if arch is None:
            raise ArchitectureError("micro_cnn supernet: forward needs an architecture (model(images, arch))")
        choices = self.validate(arch).choices
        b = self.num_nodes
        return {kind: [tuple(choices[4 * (c * b + j): 4 * (c * b + j) + 4]) for j in range(b)]
                for c, kind in enumerate(CELL_KINDS)}

    def build_supernet(self, num_classes: int, in_channels: int, image_size: int, channels: int = 20,
                       num_layers: int = 6, aux_head: bool = False, dropout: float = 0.0,
                       sep_conv_stack: int = 1, per_input_weights: bool = False) -> MicroCNN:
        _check_ints(num_classes, in_channels, image_size, channels, num_layers, sep_conv_stack)
        return MicroCNN(self, None, num_classes, in_channels, channels, num_layers, aux_head, dropout,
                        affine=False, track=False, sep_stack=sep_conv_stack, per_input=bool(per_input_weights))

    def build_network(self, arch: Architecture, num_classes: int, in_channels: int, image_size: int,
                      channels: int = 20, num_layers: int = 6, aux_head: bool = False,
                      dropout: float = 0.0, sep_conv_stack: int = 1, per_input_weights: bool = False) -> MicroCNN:
        _check_ints(num_classes, in_channels, image_size, channels, num_layers, sep_conv_stack)
        return MicroCNN(self, self.genotype(arch), num_classes, in_channels, channels, num_layers, aux_head,
                        dropout, affine=True, track=True, sep_stack=sep_conv_stack,
                        per_input=bool(per_input_weights))

    def graph(self, arch: Architecture) -> Graph:
        g = Graph()
        for kind, cell in self.genotype(arch).items():
            names = [f"{kind}_in0", f"{kind}_in1"] + [f"{kind}_node{j}" for j in range(len(cell))]
            labels = ["c_{k-2}", "c_{k-1}"] + [f"node {j}" for j in range(len(cell))]
            out = f"{kind}_out"
            g.nodes += list(zip(names, labels)) + [(out, "concat")]
            for j, (in_a, in_b, op_a, op_b) in enumerate(cell):
                g.edges += [(names[in_a], names[2 + j], MICRO_OPS[op_a]), (names[in_b], names[2 + j], MICRO_OPS[op_b])]
            g.edges += [(names[2 + j], out, "") for j in loose_ends(cell)]
            g.clusters[kind] = names + [out]
        return g


def _check_ints(num_classes: int, in_channels: int, image_size: int, channels: int, num_layers: int,
                sep_conv_stack: int) -> None:
    for name, value, low in (("num_classes", num_classes, 1), ("in_channels", in_channels, 1),
                             ("image_size", image_size, 4), ("channels", channels, 1),
                             ("num_layers", num_layers, 3), ("sep_conv_stack", sep_conv_stack, 1)):
        check_int("micro_cnn", name, value, low)
