"""The ENAS recurrent-cell search space (`rnn_cell`) for word-level language models.

A cell of N nodes runs once per timestep. x_t is the embedded input, h the previous cell
output. Every node is a highway unit whose gate c and value share one merged (H, 2H) matrix:

    node 0 :  [c0 | v0] = x_t W_x + h W_h          h0 = c0 * f0(v0) + (1 - c0) * h
    node i :  [ci | vi] = h_j W_(i,j)   (j < i)     hi = ci * fi(vi) + (1 - ci) * h_j
              c = sigmoid(.),  f in {tanh, relu, identity, sigmoid}
    h_t    =  mean of the loose ends (nodes that no later node picked)       cell_output=loose_ends
              mean of nodes 1..N-1 (every node but node 0)                   cell_output=average

Decisions, in order: node0_act, then node{i}_input (which earlier node) and node{i}_act for
i = 1..N-1. Each node{i}_act stores the controller state as node i's anchor. Input decisions
carry the official distance prior: a fixed logit bias -(i - j)^2 / 6 for node i reading node j
(melodyguan/enas src/ptb/ptb_enas_controller.py:126-127; the same in google-research enas_lm
src/controller.py), which a controller applies with `priors=True`.

Structure (constructor): `num_nodes` N (12 in the ENAS search scripts), `cell_output`
("loose_ends", ENAS paper and melodyguan/enas src/ptb/ptb_enas_child.py:393-398; or "average")
and `node0_act` (None: searched; or an activation name, fixed). The corrected cell of
google-research enas_lm (src/child.py:92-123) is `cell_output=average node0_act=tanh`: node 0
always uses tanh (no decision: "important change: first input uses a tanh()"), and h_t averages
the N-1 nodes after it whether or not another node reads them (its controller samples an input
and an activation for each of those N-1 nodes: enas_lm src/controller.py, 9 layers).

The supernet holds one (H, 2H) matrix per possible edge (i, j), j < i, in `edges["i_j"]`, and
multiplies only by the sampled edges: the others get no gradient and cost nothing. A standalone
network holds `w_x`, `w_h` and only its own edges under the same names, so the default
`SearchSpace.load_inherited` (name matching) copies the weights.

Model around the cell (both kinds), tokens (T, B) -> logits (T, B, V):

    tokens -> embedding (emb_dropout drops whole word types) -> in_dropout (variational)
           -> x W_x for all T at once -> time loop over the cell (hidden_dropout: variational
           mask on h in h W_h) -> out_dropout (variational) -> decoder tied to the embedding

The four dropouts are the official ones (ptb_enas_child.py:417-448; probabilities to DROP,
the official scripts give keep probabilities): e (word types; enas_lm's drop_e, one draw per
word type for the whole batch), x (in_dropout, on x_t at node 0), h (hidden_dropout) and o
(out_dropout). The official code multiplies the input of *every* node by the same h mask
(ptb_enas_child.py:340, 375; enas_lm src/child.py:98-109): `hidden_dropout_every_node=True`;
False masks only h_{t-1} at node 0. enas_lm's extra drop_i on the embedding output is a second
variational mask on the same (B, H) tensor as in_dropout, so one in_dropout of
1 - (1 - drop_i)(1 - drop_x) is the same thing.

`max_hidden_norm` (default 25) caps each example's cell output norm at every timestep: cells
made of identity/ReLU nodes otherwise let h grow without bound through time and across the
carried batches (a loss of 1e10 in the first steps of a PTB search without it).

`init_range` r (default 0.1): every weight starts ~ U(-r, r) (the decoder bias at 0). The
official code uses r = 0.04 at the PTB sizes: melodyguan/enas src/ptb/ptb_enas_child.py:507-515
(0.1 up to hidden 300, 0.05 up to 400, else 0.04, for every variable: 0.04 at the paper's 720/748)
and google-research enas_lm src/child.py:156 (0.04 at hidden 200; src/fixed_lib.py:41, 0.05 at
hidden 800). It is what keeps ReLU/identity cells trainable at SGD lr 20: these nodes do not
saturate, and from U(-0.1, 0.1) at hidden 200 the recurrence is close enough to unstable that a
few lr-20 steps push it over (h explodes within a batch: train loss 7.9 at step 6, 31 at step 7
for a ReLU-only cell of the enas_ptb_small recipe), while from U(-0.04, 0.04) it keeps learning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from enas.arch import Architecture, ArchitectureError, Decision
from enas.spaces.base import Graph, SearchSpace, check_int, register_space

# --- recurrent helpers -------------------------------------------------------------------

ACTIVATIONS: tuple[str, ...] = ("tanh", "relu", "identity", "sigmoid")
_ACT_FNS: dict[str, Callable[[torch.Tensor], torch.Tensor] | None] = {
    "tanh": torch.tanh, "relu": torch.relu, "identity": None, "sigmoid": torch.sigmoid}
INIT_RANGE = 0.1  # default `init_range`: every weight ~ U(-0.1, 0.1); the decoder bias starts at 0
OFFICIAL_INIT_RANGE = 0.04  # ptb_enas_child.py:507-515 (hidden > 400), enas_lm src/child.py:156 (hidden 200)


CELL_OUTPUTS = ("loose_ends", "average")


@dataclass(frozen=True)
class CellPlan:
    """An architecture of the cell in plain form.

    acts[i]: activation name of node i; inputs[i]: the node that node i reads (-1 for node 0,
    which reads x_t and h_{t-1}); loose_ends: nodes that no later node reads; outputs: the nodes
    averaged into h_t (the loose ends, or nodes 1..N-1 with cell_output=average).
    """

    acts: tuple[str, ...]
    inputs: tuple[int, ...]
    loose_ends: tuple[int, ...]
    outputs: tuple[int, ...]

    @property
    def edges(self) -> list[tuple[int, int]]:
        """The chosen edges (i, j): node i reads node j, for i >= 1."""
        return [(i, self.inputs[i]) for i in range(1, len(self.acts))]


def edge_name(i: int, j: int) -> str:
    """Key of the weight of edge j -> i in the `edges` ParameterDict."""
    return f"{i}_{j}"


def loose_ends(inputs: tuple[int, ...]) -> tuple[int, ...]:
    """Nodes that no later node reads (`inputs[i]` is the node read by node i; -1 for none)."""
    used = set(inputs)
    return tuple(i for i in range(len(inputs)) if i not in used)


def cell_plan(choices: tuple, num_nodes: int, cell_output: str = "loose_ends",
              node0_act: str | None = None) -> CellPlan:
    """Decode the choices of an `rnn_cell` architecture (order of `RNNCellSpace.decisions()`)."""
    expected = 2 * num_nodes - 1 - (node0_act is not None)
    if len(choices) != expected:
        raise ArchitectureError(
            f"space 'rnn_cell' with {num_nodes} nodes has {expected} decisions, "
            f"the architecture gives {len(choices)}")
    rest = list(choices)
    acts = [node0_act if node0_act is not None else _activation(rest.pop(0), 0)]
    inputs = [-1]
    for node in range(1, num_nodes):
        j, act = rest[2 * node - 2], rest[2 * node - 1]
        if not (isinstance(j, int) and 0 <= j < node):
            raise ArchitectureError(
                f"decision 'node{node}_input' (input): choice {j!r} out of range 0..{node - 1}")
        inputs.append(j)
        acts.append(_activation(act, node))
    ends = loose_ends(tuple(inputs))
    outputs = ends if cell_output == "loose_ends" else tuple(range(1, num_nodes))
    return CellPlan(tuple(acts), tuple(inputs), ends, outputs)


def _activation(choice, node: int) -> str:
    if not (isinstance(choice, int) and 0 <= choice < len(ACTIVATIONS)):
        raise ArchitectureError(f"decision 'node{node}_act' (op): choice {choice!r} out of range 0..3")
    return ACTIVATIONS[choice]


def distance_prior(node: int) -> tuple[float, ...]:
    """The official fixed logit bias of node `node`'s input decision: -(node - j)^2 / 6 for j < node.

    It favours near predecessors (ptb_enas_controller.py:126-127, enas_lm src/controller.py).
    """
    return tuple(-((node - j) ** 2) / 6.0 for j in range(node))


def variational_mask(shape: tuple[int, ...], p: float, like: torch.Tensor) -> torch.Tensor | None:
    """An inverted-dropout mask of `shape` (kept units scaled by 1/(1-p)), or None when p == 0."""
    if p <= 0.0:
        return None
    return like.new_empty(shape).bernoulli_(1.0 - p).div_(1.0 - p)


def run_cell(xproj: torch.Tensor, h: torch.Tensor, w_h: torch.Tensor, plan: CellPlan,
             edge_weights: list[torch.Tensor], h_mask: torch.Tensor | None,
             max_hidden_norm: float | None = None, node_mask: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The time loop of the cell.

    xproj: (T, B, 2H) = x W_x for every timestep; h: (B, H) the previous output;
    edge_weights[k]: (H, 2H) weight of plan.edges[k]; h_mask: (B, H) or None, applied to h in h W_h;
    max_hidden_norm: rescale each example's output to at most this L2 norm (None: off);
    node_mask: (B, H) or None, applied to the input of every node i >= 1 in h_j W_(i,j) (the
    highway's carry term keeps the unmasked h_j, as the official code does).
    Returns the outputs (T, B, H) and the last output (B, H).
    """
    hidden = h.size(1)
    fns = [_ACT_FNS[a] for a in plan.acts]
    nodes = list(zip(plan.inputs[1:], edge_weights, fns[1:]))  # node i >= 1: (j, W_(i,j), f_i)
    ends = plan.outputs
    scale = 1.0 / len(ends)
    outputs = []
    for t in range(xproj.size(0)):
        h_in = h if h_mask is None else h * h_mask
        z = torch.addmm(xproj[t], h_in, w_h)  # (B, 2H): x_t W_x + h W_h
        states = [_highway(z, h, fns[0], hidden)]
        for j, w, fn in nodes:
            s = states[j]
            s_in = s if node_mask is None else s * node_mask
            states.append(_highway(torch.mm(s_in, w), s, fn, hidden))
        h = states[ends[0]] if len(ends) == 1 else torch.stack([states[k] for k in ends]).sum(0) * scale
        if max_hidden_norm:
            # Cells of identity/ReLU nodes can grow h without bound over time (carried across
            # batches too); cap each example's norm, as the ENAS PyTorch port does.
            h = h * (max_hidden_norm / h.norm(dim=1, keepdim=True).clamp_min(max_hidden_norm))
        outputs.append(h)
    return torch.stack(outputs), h  # (T, B, H), (B, H)


def _highway(z: torch.Tensor, prev: torch.Tensor, fn, hidden: int) -> torch.Tensor:
    """c * f(v) + (1 - c) * prev, with [c_pre | v] = z (B, 2H) and c = sigmoid(c_pre)."""
    c = torch.sigmoid(z[:, :hidden])
    v = z[:, hidden:]
    if fn is not None:
        v = fn(v)
    return prev + c * (v - prev)  # same as c * v + (1 - c) * prev, one op fewer


# --- models --------------------------------------------------------------------------------


class _CellLM(nn.Module):
    """Embedding, dropouts, the x projection and the tied decoder around a recurrent cell.

    Subclasses hold the edge weights in `self.edges` and say which to use (`_plan_and_edges`).
    """

    def __init__(self, vocab_size: int, hidden_size: int = 200, emb_dropout: float = 0.0,
                 in_dropout: float = 0.0, hidden_dropout: float = 0.0, out_dropout: float = 0.0,
                 tie_weights: bool = True, max_hidden_norm: float | None = 25.0,
                 hidden_dropout_every_node: bool = False, init_range: float = INIT_RANGE):
        super().__init__()
        if not init_range > 0:
            raise ValueError(f"init_range must be > 0, got {init_range}")
        self.init_range = float(init_range)
        self.max_hidden_norm = max_hidden_norm
        self.hidden_dropout_every_node = bool(hidden_dropout_every_node)
        for name, p in (("emb_dropout", emb_dropout), ("in_dropout", in_dropout),
                        ("hidden_dropout", hidden_dropout), ("out_dropout", out_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        if vocab_size < 1 or hidden_size < 1:
            raise ValueError(f"vocab_size and hidden_size must be >= 1, got {vocab_size}, {hidden_size}")
        self.vocab_size, self.hidden_size = vocab_size, hidden_size
        self.emb_dropout, self.in_dropout = emb_dropout, in_dropout
        self.hidden_dropout, self.out_dropout = hidden_dropout, out_dropout
        self.encoder = nn.Embedding(vocab_size, hidden_size)
        self.w_x = nn.Parameter(torch.empty(hidden_size, 2 * hidden_size))  # node 0, x_t -> [c | v]
        self.w_h = nn.Parameter(torch.empty(hidden_size, 2 * hidden_size))  # node 0, h_{t-1} -> [c | v]
        self.edges = nn.ParameterDict()
        self.decoder = nn.Linear(hidden_size, vocab_size)
        if tie_weights:
            self.decoder.weight = self.encoder.weight

    def _add_edge(self, i: int, j: int) -> None:
        self.edges[edge_name(i, j)] = nn.Parameter(torch.empty(self.hidden_size, 2 * self.hidden_size))

    def reset_parameters(self) -> None:
        """Every weight ~ U(-init_range, init_range) (ENAS); decoder bias 0."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name == "decoder.bias":
                    p.zero_()
                else:
                    p.uniform_(-self.init_range, self.init_range)

    def init_hidden(self, batch_size: int) -> torch.Tensor:
        """A zero hidden state (B, H) on the model's device."""
        return self.w_h.new_zeros(batch_size, self.hidden_size)

    def _plan_and_edges(self, arch: Architecture | None) -> tuple[CellPlan, list[torch.Tensor]]:
        raise NotImplementedError

    def _cell_runner(self, arch):
        """A function (xproj, h, h_mask, node_mask) -> (out (T, B, H), h (B, H)) running `arch`'s cell.

        Called before any work, so a bad architecture fails first. The static-graph supernet
        (rnn_cell_static.py) overrides this with the architecture-as-data cell.
        """
        plan, edge_weights = self._plan_and_edges(arch)

        def cell(xproj, h, h_mask, node_mask):
            return run_cell(xproj, h, self.w_h, plan, edge_weights, h_mask, self.max_hidden_norm, node_mask)

        return cell

    def _embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Embedding lookup (T, B) -> (T, B, H) with word-type dropout in training."""
        emb = self.encoder(tokens)
        if self.training and self.emb_dropout > 0:
            # One keep/drop draw per word type: every occurrence of a dropped word is zeroed.
            keep = variational_mask((self.vocab_size,), self.emb_dropout, emb)
            emb = emb * keep[tokens].unsqueeze(-1)
        return emb

    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor, arch: Architecture | None = None):
        """tokens (T, B), hidden (B, H) -> logits (T, B, V), hidden (B, H)."""
        cell = self._cell_runner(arch)
        state_dtype = hidden.dtype  # under autocast the cell may end in bfloat16: hand back this dtype
        steps, batch = tokens.shape
        x = self._embed(tokens)  # (T, B, H)
        train = self.training
        in_mask = variational_mask((1, batch, self.hidden_size), self.in_dropout, x) if train else None
        if in_mask is not None:
            x = x * in_mask  # same mask at every timestep
        xproj = torch.matmul(x, self.w_x)  # (T, B, 2H): all timesteps in one matmul
        h_mask = variational_mask((batch, self.hidden_size), self.hidden_dropout, x) if train else None
        node_mask = h_mask if self.hidden_dropout_every_node else None
        out, hidden = cell(xproj, hidden, h_mask, node_mask)  # (T, B, H), (B, H)
        out_mask = variational_mask((1, batch, self.hidden_size), self.out_dropout, out) if train else None
        if out_mask is not None:
            out = out * out_mask
        return self.decoder(out), hidden.to(state_dtype)  # (T, B, V), (B, H)


class RNNCellSupernet(_CellLM):
    """The shared model: one (H, 2H) weight per possible edge; `forward(tokens, hidden, arch)`."""

    def __init__(self, space: "RNNCellSpace", vocab_size: int, **sizes):
        super().__init__(vocab_size, **sizes)
        self.space = space
        self.num_nodes = space.num_nodes
        for i in range(1, self.num_nodes):
            for j in range(i):
                self._add_edge(i, j)
        self.reset_parameters()

    def _plan_and_edges(self, arch):
        plan = supernet_plan(self.space, arch)
        return plan, [self.edges[edge_name(i, j)] for i, j in plan.edges]


def supernet_plan(space: "RNNCellSpace", arch: Architecture | None) -> CellPlan:
    """The plan of the architecture a supernet was called with; errors name what is wrong."""
    if arch is None:
        raise ValueError("the rnn_cell supernet needs an architecture: model(tokens, hidden, arch)")
    if arch.space != "rnn_cell":
        raise ArchitectureError(f"architecture of space {arch.space!r}, expected 'rnn_cell'")
    return space.decode(arch.choices)


class RNNCellNetwork(_CellLM):
    """A standalone model of one architecture: holds only its chosen edges; ignores `arch` in forward."""

    def __init__(self, space: "RNNCellSpace", arch: Architecture, vocab_size: int, **sizes):
        super().__init__(vocab_size, **sizes)
        self.num_nodes = space.num_nodes
        self.arch = arch
        self.plan = space.decode(arch.choices)
        for i, j in self.plan.edges:
            self._add_edge(i, j)
        self.reset_parameters()

    def _plan_and_edges(self, arch):
        return self.plan, [self.edges[edge_name(i, j)] for i, j in self.plan.edges]


# --- the space -----------------------------------------------------------------------------


@register_space("rnn_cell")
class RNNCellSpace(SearchSpace):
    """ENAS recurrent cell: N nodes, each picks an earlier node (node 0 reads x_t, h_{t-1}) and an activation.

    Structure: `num_nodes`, `cell_output` ("loose_ends" | "average"), `node0_act` (None or an
    activation name); see the module docstring. `structure()` leaves out `cell_output` and
    `node0_act` at their defaults, so architectures saved before they existed still match.
    Builders take the sizes `vocab_size, hidden_size=200, emb_dropout=0.0, in_dropout=0.0,
    hidden_dropout=0.0, out_dropout=0.0, tie_weights=True, max_hidden_norm=25.0,
    hidden_dropout_every_node=False, init_range=0.1`; `build_supernet` also takes `static_graph=False`.
    """

    task = "lm"

    def __init__(self, num_nodes: int = 12, cell_output: str = "loose_ends", node0_act: str | None = None):
        check_int("rnn_cell", "num_nodes", num_nodes, 1)
        if cell_output not in CELL_OUTPUTS:
            raise ValueError(f"rnn_cell: cell_output must be one of {', '.join(CELL_OUTPUTS)}, got {cell_output!r}")
        if cell_output == "average" and num_nodes < 2:
            raise ValueError("rnn_cell: cell_output=average averages nodes 1..N-1, so num_nodes must be >= 2")
        if node0_act is not None and node0_act not in ACTIVATIONS:
            raise ValueError(f"rnn_cell: node0_act must be null or one of {', '.join(ACTIVATIONS)}, "
                             f"got {node0_act!r}")
        self.num_nodes = num_nodes
        self.cell_output = cell_output
        self.node0_act = node0_act

    def structure(self) -> dict:
        out = {"num_nodes": self.num_nodes}
        if self.cell_output != "loose_ends":
            out["cell_output"] = self.cell_output
        if self.node0_act is not None:
            out["node0_act"] = self.node0_act
        return out

    def decisions(self) -> list[Decision]:
        out = []
        if self.node0_act is None:
            out.append(Decision("node0_act", "op", len(ACTIVATIONS), ACTIVATIONS, anchor=True))
        for i in range(1, self.num_nodes):
            out.append(Decision(f"node{i}_input", "input", i, fixed_bias=distance_prior(i)))
            out.append(Decision(f"node{i}_act", "op", len(ACTIVATIONS), ACTIVATIONS, anchor=True))
        return out

    def decode(self, choices: tuple) -> CellPlan:
        """Choices (not validated against the decisions) -> the plan; errors name the decision."""
        return cell_plan(choices, self.num_nodes, self.cell_output, self.node0_act)

    def plan(self, arch: Architecture) -> CellPlan:
        """The architecture decoded: activations, inputs, loose ends and outputs per node."""
        return self.decode(self.validate(arch).choices)

    #: build_supernet(static_graph=True) gives the architecture-as-data supernet (rnn_cell_static.py)
    supports_static_graph = True

    def build_supernet(self, static_graph: bool = False, **sizes) -> nn.Module:
        """The eager supernet, or with `static_graph` the one static graph for every architecture
        (same parameters under the same state_dict names; see enas/spaces/rnn_cell_static.py)."""
        if static_graph:
            from enas.spaces.rnn_cell_static import StaticRNNCellSupernet
            return StaticRNNCellSupernet(self, **sizes)
        return RNNCellSupernet(self, **sizes)

    def build_network(self, arch: Architecture, static_graph: bool = False, **sizes) -> RNNCellNetwork:
        """The standalone network (`static_graph`, a supernet option, is accepted and ignored)."""
        return RNNCellNetwork(self, self.validate(arch), **sizes)

    def graph(self, arch: Architecture) -> Graph:
        plan = self.plan(arch)
        g = Graph()
        g.nodes += [("x_t", "x_t"), ("h_prev", "h_{t-1}")]
        g.nodes += [(f"n{i}", f"{i}: {act}") for i, act in enumerate(plan.acts)]
        g.nodes.append(("h_t", "h_t (avg)" if len(plan.outputs) > 1 else "h_t"))
        g.edges += [("x_t", "n0", ""), ("h_prev", "n0", "")]
        g.edges += [(f"n{j}", f"n{i}", "") for i, j in plan.edges]
        g.edges += [(f"n{k}", "h_t", "") for k in plan.outputs]
        return g
