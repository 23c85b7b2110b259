"""The NAS-RL recurrent cell (Zoph & Le, ICLR 2017), space `nas_rnn_tree`.

The cell is a full binary tree with `num_leaves` leaves (8 in the paper; 2 is its worked
example). Tree nodes are numbered the paper's way: leaves 0..L-1, then the internal nodes
level by level, the root last (2L-2). Internal node L+m has children 2m and 2m+1:

    num_leaves=2:      2            num_leaves=4:        6
                      / \\                              /   \\
                     0   1                            4     5
                                                     / \\   / \\
                                                    0   1 2   3

Decisions, in order (group "main"):
    node{k}_comb   combination of the node's two inputs (op: "add", "mul")
    node{k}_act    activation (op: "tanh", "relu", "sigmoid", "identity"), anchor=True
    ...            for k = 0..2L-2
    cell_inject       which node's output is combined with c_{t-1} (input, 2L-1 choices)
    cell_inject_comb  that combination (op: "add", "mul")
    cell_inject_act   its activation (op)
    cell_index        which node's pre-activation value becomes c_t (input, 2L-1 choices)

Semantics (the paper's worked example, every choice value is valid):
    leaf k:          a_k = act_k(comb_k(W_k x_t + b_k, U_k h_{t-1}))
    internal node n: a_n = act_n(comb_n(a_left, a_right))  (children's outputs, no weights)
    cell_inject = j: a_j is replaced by act_inj(comb_inj(a_j, c_{t-1})) before it feeds its
                     parent (before it becomes h_t when j is the root)
    cell_index = i:  c_t = comb_i(...) of node i, the value before its activation (when i is
                     an ancestor of j it already contains the injected c_{t-1})
    h_t = a_root.
The hidden state is the tuple (h, c), each (B, H). With "mul"/"identity" choices the cell
state is unbounded, as in the paper's space.

Children are trained from scratch (evaluator=standalone); see `build_supernet`.

The language model around the cell (embedding, dropouts, tied decoder) takes the same size
arguments and applies the same dropouts (`rnn_cell.variational_mask`) as the ENAS `rnn_cell`
space; its wrapper is not reused because that one holds a single-tensor hidden state and
the ENAS node-0 weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from enas.arch import Architecture, Decision
from enas.spaces.base import Graph, SearchSpace, check_int, register_space
from enas.spaces.rnn_cell import variational_mask

COMBINATIONS = ("add", "mul")
ACTIVATIONS = ("tanh", "relu", "sigmoid", "identity")


def combine(name: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Combine two (B, H) tensors: "add" or "mul" (elementwise)."""
    if name == "add":
        return a + b
    if name == "mul":
        return a * b
    raise ValueError(f"nas_rnn_tree: unknown combination {name!r}")


def activate(name: str, x: torch.Tensor) -> torch.Tensor:
    """Apply one of ACTIVATIONS."""
    if name == "tanh":
        return torch.tanh(x)
    if name == "relu":
        return F.relu(x)
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "identity":
        return x
    raise ValueError(f"nas_rnn_tree: unknown activation {name!r}")


def children(node: int, num_leaves: int) -> tuple[int, int]:
    """The two children of internal node `node` (node >= num_leaves)."""
    m = node - num_leaves
    return 2 * m, 2 * m + 1


def parent(node: int, num_leaves: int) -> int | None:
    """The parent of `node`, or None for the root."""
    if node == 2 * num_leaves - 2:
        return None
    return num_leaves + node // 2


class TreeCell(nn.Module):
    """The NAS-RL tree cell for one architecture; `forward(x (T,B,I), (h, c)) -> (out (T,B,H), (h, c))`.

    nodes: one (comb, act) name pair per tree node; inject: (node, comb, act); cell_index: node.
    Parameters: `w` (I -> L*H, with bias) and `u` (H -> L*H), the leaf projections W_k, U_k
    stacked along the output dimension (leaf k uses rows k*H..(k+1)*H).
    """

    def __init__(self, nodes: list[tuple[str, str]], inject: tuple[int, str, str], cell_index: int,
                 input_size: int, hidden_size: int):
        super().__init__()
        self.nodes = list(nodes)
        self.num_leaves = (len(nodes) + 1) // 2
        self.inject = inject
        self.cell_index = cell_index
        self.hidden_size = hidden_size
        self.w = nn.Linear(input_size, self.num_leaves * hidden_size)
        self.u = nn.Linear(hidden_size, self.num_leaves * hidden_size, bias=False)

    def step(self, wx: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step. wx: (B, L, H) the projected input; h, c: (B, H)."""
        uh = self.u(h).view(h.shape[0], self.num_leaves, self.hidden_size)  # (B, L, H)
        inj_node, inj_comb, inj_act = self.inject
        values: list[torch.Tensor] = []
        c_new = c
        for n, (comb, act) in enumerate(self.nodes):
            if n < self.num_leaves:
                a, b = wx[:, n], uh[:, n]
            else:
                left, right = children(n, self.num_leaves)
                a, b = values[left], values[right]
            pre = combine(comb, a, b)  # (B, H)
            if n == self.cell_index:
                c_new = pre
            out = activate(act, pre)
            if n == inj_node:
                out = activate(inj_act, combine(inj_comb, out, c))
            values.append(out)
        return values[-1], c_new

    def forward(self, x: torch.Tensor, hidden: tuple[torch.Tensor, torch.Tensor],
                h_mask: torch.Tensor | None = None):
        """Run over a sequence x (T, B, I); `h_mask` (B, H) multiplies h_{t-1} in the recurrence."""
        steps, batch = x.shape[0], x.shape[1]
        wx = self.w(x).view(steps, batch, self.num_leaves, self.hidden_size)  # (T, B, L, H), one matmul
        h, c = hidden
        outputs = []
        for t in range(steps):
            h_in = h if h_mask is None else h * h_mask
            h, c = self.step(wx[t], h_in, c)
            outputs.append(h)
        return torch.stack(outputs), (h, c)  # (T, B, H)


class TreeLM(nn.Module):
    """Language model around a TreeCell: `model(tokens (T,B), (h, c), arch=None) -> (logits (T,B,V), (h, c))`.

    Dropouts: emb_dropout drops whole words of the embedding; in_dropout (on x_t) and
    out_dropout (on the cell outputs) use one mask per sequence; hidden_dropout masks h_{t-1}
    in the recurrence with one mask per call. The decoder shares the embedding matrix when
    `tie_weights`.
    """

    def __init__(self, cell: TreeCell, vocab_size: int, hidden_size: int, emb_dropout: float = 0.0,
                 in_dropout: float = 0.0, hidden_dropout: float = 0.0, out_dropout: float = 0.0,
                 tie_weights: bool = True):
        super().__init__()
        for name, p in (("emb_dropout", emb_dropout), ("in_dropout", in_dropout),
                        ("hidden_dropout", hidden_dropout), ("out_dropout", out_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"nas_rnn_tree: {name} must be in [0, 1), got {p!r}")
        self.hidden_size = hidden_size
        self.emb_dropout, self.in_dropout = emb_dropout, in_dropout
        self.hidden_dropout, self.out_dropout = hidden_dropout, out_dropout
        self.encoder = nn.Embedding(vocab_size, hidden_size)
        self.cell = cell
        self.decoder = nn.Linear(hidden_size, vocab_size)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if tie_weights:
            self.decoder.weight = self.encoder.weight

    def init_hidden(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero (h, c), each (B, H), on the model's device."""
        weight = self.encoder.weight
        return (weight.new_zeros(batch_size, self.hidden_size), weight.new_zeros(batch_size, self.hidden_size))

    def forward(self, tokens: torch.Tensor, hidden: tuple[torch.Tensor, torch.Tensor],
                arch: Architecture | None = None):
        """tokens (T, B), hidden (h, c) each (B, H) -> logits (T, B, V), (h, c)."""
        batch = tokens.shape[1]
        train = self.training
        x = self.encoder(tokens)  # (T, B, H)
        if train and self.emb_dropout > 0.0:
            # One keep/drop draw per word type: every occurrence of a dropped word is zeroed.
            keep = variational_mask((self.encoder.num_embeddings,), self.emb_dropout, x)
            x = x * keep[tokens].unsqueeze(-1)
        in_mask = variational_mask((1, batch, self.hidden_size), self.in_dropout, x) if train else None
        if in_mask is not None:
            x = x * in_mask  # same mask at every timestep
        h_mask = variational_mask((batch, self.hidden_size), self.hidden_dropout, x) if train else None
        out, hidden = self.cell(x, hidden, h_mask)  # (T, B, H)
        out_mask = variational_mask((1, batch, self.hidden_size), self.out_dropout, out) if train else None
        if out_mask is not None:
            out = out * out_mask
        return self.decoder(out), hidden  # (T, B, V)


@register_space("nas_rnn_tree")
class NASRNNTreeSpace(SearchSpace):
    """NAS-RL recurrent cell space: a binary tree of (combination, activation) nodes plus c_t links."""

    task = "lm"

    def __init__(self, num_leaves: int = 8):
        check_int("nas_rnn_tree", "num_leaves", num_leaves, 2)
        self.num_leaves = num_leaves
        self.num_nodes = 2 * num_leaves - 1

    def structure(self) -> dict:
        return {"num_leaves": self.num_leaves}

    def decisions(self) -> list[Decision]:
        out = []
        for k in range(self.num_nodes):
            out.append(Decision(f"node{k}_comb", "op", len(COMBINATIONS), COMBINATIONS))
            out.append(Decision(f"node{k}_act", "op", len(ACTIVATIONS), ACTIVATIONS, anchor=True))
        out += [Decision("cell_inject", "input", self.num_nodes),
                Decision("cell_inject_comb", "op", len(COMBINATIONS), COMBINATIONS),
                Decision("cell_inject_act", "op", len(ACTIVATIONS), ACTIVATIONS),
                Decision("cell_index", "input", self.num_nodes)]
        return out

    def parse(self, arch: Architecture) -> tuple[list[tuple[str, str]], tuple[int, str, str], int]:
        """Validate `arch`; return the node (comb, act) names, (inject node, comb, act), cell index."""
        choices = self.validate(arch).choices
        nodes = [(COMBINATIONS[choices[2 * k]], ACTIVATIONS[choices[2 * k + 1]]) for k in range(self.num_nodes)]
        inj, inj_comb, inj_act, index = choices[2 * self.num_nodes:]
        return nodes, (inj, COMBINATIONS[inj_comb], ACTIVATIONS[inj_act]), index

    def build_supernet(self, **sizes) -> nn.Module:
        raise NotImplementedError(
            "nas_rnn_tree has no supernet: NAS-RL trains every child from scratch and this space "
            "implements no weight sharing; use evaluator=standalone")

    def build_network(self, arch: Architecture, vocab_size: int, hidden_size: int = 200,
                      emb_dropout: float = 0.0, in_dropout: float = 0.0, hidden_dropout: float = 0.0,
                      out_dropout: float = 0.0, tie_weights: bool = True) -> TreeLM:
        """A standalone language model with `arch`'s tree cell (embedding size = hidden_size)."""
        nodes, inject, index = self.parse(arch)
        cell = TreeCell(nodes, inject, index, hidden_size, hidden_size)
        return TreeLM(cell, vocab_size, hidden_size, emb_dropout, in_dropout, hidden_dropout,
                      out_dropout, tie_weights)

    def graph(self, arch: Architecture) -> Graph:
        nodes, (inj, inj_comb, inj_act), index = self.parse(arch)
        g = Graph(nodes=[("x_t", "x_t"), ("h_prev", "h_{t-1}"), ("c_prev", "c_{t-1}"),
                         ("h_t", "h_t"), ("c_t", "c_t")])
        for k, (comb, act) in enumerate(nodes):
            g.nodes.append((f"node{k}", f"{k}: {comb}, {act}"))
            if k < self.num_leaves:
                g.edges += [("x_t", f"node{k}", f"W{k}"), ("h_prev", f"node{k}", f"U{k}")]
        g.nodes.append(("inject", f"inject: {inj_comb}, {inj_act}"))
        g.edges += [(f"node{inj}", "inject", ""), ("c_prev", "inject", "")]
        for k in range(self.num_nodes):
            src = "inject" if k == inj else f"node{k}"
            up = parent(k, self.num_leaves)
            g.edges.append((src, "h_t" if up is None else f"node{up}", ""))
        g.edges.append((f"node{index}", "c_t", "pre-activation"))
        return g
