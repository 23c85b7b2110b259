"""The `rnn_cell` supernet with the architecture as data: one static graph for every architecture.

The eager supernet (rnn_cell.RNNCellSupernet) walks the sampled architecture in Python: which
edge matrix a node multiplies by and which activation it applies are Python choices, so the
sequence of kernels differs from one architecture to the next. On a GPU that costs a kernel
launch from Python for each of the ~35 timesteps x 12 nodes x (forward + backward) small
operations. This supernet takes the architecture as index tensors instead, so the sequence of
kernels is the same for every architecture: the whole omega step can be captured once as a
CUDA graph and replayed with new index tensors (enas/graphed.py), and the timestep function can
be compiled (`compile_cell`).

Parameters (E = N(N-1)/2 possible edges of N nodes; H hidden units):

    edge_stack (E, H, 2H)   row r(i, j) = i(i-1)/2 + j is the weight of edge j -> i, the tensor
                            that the eager supernet holds as edges["i_j"]
    w_x, w_h, encoder, decoder: as in the eager supernet

`state_dict()` shows the rows under the eager names (`edges.i_j`) and `load_state_dict` accepts
them, so checkpoints, weight inheritance (`SearchSpace.load_inherited`) and the standalone
networks see the same tensors; with the same seed the initial weights equal the eager
supernet's on a CPU (same draw order).

The architecture as data (`ArchTensors`, device tensors):

    acts (N,) int64       activation of node i, an index into ACTIVATIONS
    inputs (N-1,) int64   the node that node i reads, i = 1..N-1
    rows (N-1,) int64     the row of edge_stack that node i multiplies by: r(i, inputs[i])
    out_mask (N,) bool    the nodes averaged into h_t (loose ends, or nodes 1..N-1)
    scale () float32      1 / number of those nodes

One timestep, S = the states so far stacked (i, B, H), W = edge_stack[rows] gathered once per
forward (N-1, H, 2H):

    node 0 : z = x_t W_x + (h * h_mask) W_h             s_0 = highway(z, h, acts[0])
    node i : prev = S[inputs[i]]  z = (prev * node_mask) W[i-1]   s_i = highway(z, prev, acts[i])
    highway: c = sigmoid(z[:, :H]);  f = [tanh, relu, identity, sigmoid](z[:, H:])[act]
             s = prev + c (f - prev)                     (all four computed, one selected)
    h_t    = sum_k out_mask[k] s_k * scale, then the max_hidden_norm cap

Each selection is an index_select, so the unselected activations and states get a zero
gradient and the loss and gradients equal the eager supernet's (tests/test_rnn_cell_static.py).

Unused rows of edge_stack get a zero gradient, not None: a plain SGD with weight decay or
momentum would move them, where the eager supernet's unused edges (gradient None) stay put.
`rows_for(edge_stack)` gives the rows of the last forward, and enas.masked_sgd.MaskedSGD
updates only those rows: the others stay bit-identical.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import torch
from torch import nn

from enas.spaces.rnn_cell import ACTIVATIONS, CellPlan, _CellLM, edge_name, supernet_plan

log = logging.getLogger(__name__)

# The order of the candidate activations stacked in `select_highway`; index = ACTIVATIONS index.
assert ACTIVATIONS == ("tanh", "relu", "identity", "sigmoid")


def edge_row(i: int, j: int) -> int:
    """Row of edge j -> i (j < i) in `edge_stack`: edges ordered (1,0), (2,0), (2,1), (3,0), ..."""
    return i * (i - 1) // 2 + j


def edge_pairs(num_nodes: int) -> list[tuple[int, int]]:
    """Every possible edge (i, j), j < i, in row order (the eager supernet's ParameterDict order)."""
    return [(i, j) for i in range(1, num_nodes) for j in range(i)]


class ArchTensors(NamedTuple):
    """An architecture as index tensors (see the module docstring for shapes)."""

    acts: torch.Tensor
    inputs: torch.Tensor
    rows: torch.Tensor
    out_mask: torch.Tensor
    scale: torch.Tensor

    def to(self, device: torch.device) -> "ArchTensors":
        """The same tensors on `device` (through pinned memory without a host sync on CUDA)."""
        device = torch.device(device)
        if device.type == "cuda":
            return ArchTensors(*((t.pin_memory() if t.device.type == "cpu" else t).to(device, non_blocking=True)
                                 for t in self))
        return ArchTensors(*(t.to(device) for t in self))

    def is_on(self, device: torch.device) -> bool:
        """Whether the tensors are on `device` ('cuda' matches 'cuda:<current index>')."""
        here, device = self.acts.device, torch.device(device)
        if here.type != device.type:
            return False
        if device.type == "cuda" and device.index is None:
            return here.index == torch.cuda.current_device()
        return device.index is None or here.index == device.index

    def copy_(self, other: "ArchTensors") -> "ArchTensors":
        """Overwrite these tensors in place (static buffers of a captured graph) with `other`'s values."""
        for mine, theirs in zip(self, other):
            mine.copy_(theirs, non_blocking=True)
        return self


def arch_tensors(plan: CellPlan, device: torch.device | str | None = None) -> ArchTensors:
    """The index tensors of a decoded architecture, built on the CPU, then moved to `device`."""
    n = len(plan.acts)
    out_mask = torch.zeros(n, dtype=torch.bool)
    out_mask[list(plan.outputs)] = True
    tensors = ArchTensors(
        acts=torch.tensor([ACTIVATIONS.index(a) for a in plan.acts], dtype=torch.long),
        inputs=torch.tensor(plan.inputs[1:], dtype=torch.long),
        rows=torch.tensor([edge_row(i, j) for i, j in plan.edges], dtype=torch.long),
        out_mask=out_mask,
        # float32(1 / k): the value the eager cell's `sum * (1.0 / k)` multiplies by
        scale=torch.tensor(1.0 / len(plan.outputs), dtype=torch.float32))
    return tensors if device is None else tensors.to(device)


# --- the cell ---------------------------------------------------------------------------------


def select_highway(z: torch.Tensor, prev: torch.Tensor, act: torch.Tensor, hidden: int) -> torch.Tensor:
    """prev + c * (f(v) - prev) with [c_pre | v] = z (B, 2H), c = sigmoid(c_pre), f = ACTIVATIONS[act].

    act: (1,) int64. All four activations are computed and one is selected, so the graph is the
    same for every choice; the others get a zero gradient.
    """
    c = torch.sigmoid(z[:, :hidden])
    v = z[:, hidden:]
    candidates = torch.stack([torch.tanh(v), torch.relu(v), v, torch.sigmoid(v)])  # (4, B, H)
    f = candidates.index_select(0, act).squeeze(0)  # (B, H)
    return prev + c * (f - prev)


def static_cell_step(x_t: torch.Tensor, h: torch.Tensor, w_h: torch.Tensor, weights: tuple[torch.Tensor, ...],
                     acts: torch.Tensor, inputs: torch.Tensor, out_mask: torch.Tensor, scale: torch.Tensor,
                     h_mask: torch.Tensor | None, node_mask: torch.Tensor | None,
                     max_hidden_norm: float | None) -> torch.Tensor:
    """One timestep of the cell for any architecture: x_t (B, 2H) = x_t W_x, h (B, H) -> h_t (B, H).

    weights[i-1]: (H, 2H) node i's gathered edge weight; acts, inputs, out_mask, scale: the
    ArchTensors fields. A pure function of tensors, so `torch.compile` can fuse it.
    """
    hidden = h.size(1)
    h_in = h if h_mask is None else h * h_mask
    z = torch.addmm(x_t, h_in, w_h)  # (B, 2H): x_t W_x + h W_h
    states = select_highway(z, h, acts[0:1], hidden).unsqueeze(0)  # (1, B, H)
    for i, w in enumerate(weights, start=1):
        prev = states.index_select(0, inputs[i - 1:i]).squeeze(0)  # (B, H): the node that node i reads
        p_in = prev if node_mask is None else prev * node_mask
        s = select_highway(torch.mm(p_in, w), prev, acts[i:i + 1], hidden)
        # one growing (i + 1, B, H) tensor: each node adds one cat, not one read per earlier node
        states = torch.cat([states, s.unsqueeze(0)])
    h = torch.where(out_mask[:, None, None], states, 0).sum(0) * scale  # (B, H): mean of the outputs
    if max_hidden_norm:
        h = h * (max_hidden_norm / h.norm(dim=1, keepdim=True).clamp_min(max_hidden_norm))
    return h


def run_static_cell(step, xproj: torch.Tensor, h: torch.Tensor, w_h: torch.Tensor,
                    weights: tuple[torch.Tensor, ...], arch: ArchTensors, h_mask: torch.Tensor | None,
                    max_hidden_norm: float | None, node_mask: torch.Tensor | None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The time loop: xproj (T, B, 2H), h (B, H) -> outputs (T, B, H), last output (B, H).

    `step` is `static_cell_step` or its compiled form.
    """
    outputs = []
    for t in range(xproj.size(0)):
        h = step(xproj[t], h, w_h, weights, arch.acts, arch.inputs, arch.out_mask, arch.scale, h_mask,
                 node_mask, max_hidden_norm)
        outputs.append(h)
    return torch.stack(outputs), h


def _autocast_dtype(device_type: str) -> torch.dtype | None:
    """The autocast dtype in force for `device_type`, or None."""
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return None


# --- the supernet -------------------------------------------------------------------------------


class StaticRNNCellSupernet(_CellLM):
    """The shared model with the architecture as data: `forward(tokens, hidden, arch)`.

    `arch` is an Architecture (turned into index tensors here) or an `ArchTensors` already on
    the model's device (a captured graph's static buffers). `rows_for(p)` gives the rows of
    `edge_stack` that the last forward used (for enas.masked_sgd.MaskedSGD).
    """

    def __init__(self, space, vocab_size: int, **sizes):
        super().__init__(vocab_size, **sizes)
        self.space = space
        self.num_nodes = space.num_nodes
        self.edge_pairs = edge_pairs(space.num_nodes)
        hidden = self.hidden_size
        self.edge_stack = nn.Parameter(torch.empty(len(self.edge_pairs), hidden, 2 * hidden))  # (E, H, 2H)
        self._rows: torch.Tensor | None = None
        self._step = static_cell_step
        self._eval_graphs: dict | None = None
        self._register_state_dict_hook(_edges_to_eager_names)
        self._register_load_state_dict_pre_hook(_edges_from_eager_names, with_module=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(-init_range, init_range) in the eager supernet's order (w_x, w_h, encoder, edges,
        decoder), so the same seed gives the same weights on a CPU; decoder bias 0."""
        order = [(n, p) for n, p in self.named_parameters() if n != "edge_stack"]
        at = next((k for k, (n, _) in enumerate(order) if n.startswith("decoder")), len(order))
        order.insert(at, ("edge_stack", self.edge_stack))
        with torch.no_grad():
            for name, p in order:
                if name == "decoder.bias":
                    p.zero_()
                else:
                    p.uniform_(-self.init_range, self.init_range)

    def compile_cell(self, **options) -> None:
        """Use `torch.compile(static_cell_step, **options)` for the timestep (fuses its elementwise ops)."""
        self._step = torch.compile(static_cell_step, **options)

    def rows_for(self, param: torch.Tensor) -> torch.Tensor | None:
        """The rows of `param` that the last forward used (edge_stack), None for every other tensor."""
        return self._rows if param is self.edge_stack else None

    def arch_tensors(self, arch, device: torch.device | str | None = None) -> ArchTensors:
        """`arch` (Architecture or ArchTensors) as index tensors on `device` (default: the model's)."""
        device = torch.device(device) if device is not None else self.w_h.device
        if isinstance(arch, ArchTensors):
            return arch if arch.is_on(device) else arch.to(device)
        return arch_tensors(supernet_plan(self.space, arch), device)

    def capture_eval_graphs(self, enabled: bool = True) -> None:
        """On CUDA, replay no-grad eval forwards (rewards, validation) from CUDA graphs captured once
        per input shape and autocast dtype (at most MAX_EVAL_GRAPHS; other shapes run eagerly)."""
        self._eval_graphs = {} if enabled else None

    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor, arch=None):
        """tokens (T, B), hidden (B, H) -> logits (T, B, V), hidden (B, H); `arch` as in the class doc."""
        graphs = getattr(self, "_eval_graphs", None)
        if graphs is not None and tokens.is_cuda and not self.training and not torch.is_grad_enabled():
            key = (tuple(tokens.shape), tuple(hidden.shape), hidden.dtype, _autocast_dtype("cuda"))
            if key in graphs or len(graphs) < MAX_EVAL_GRAPHS:
                return self._replay_eval_graph(key, tokens, hidden, arch)
        return super().forward(tokens, hidden, arch)

    def _replay_eval_graph(self, key: tuple, tokens: torch.Tensor, hidden: torch.Tensor, arch):
        host = self.arch_tensors(arch, device="cpu")
        host = ArchTensors(*(t.pin_memory() for t in host))
        entry = self._eval_graphs.get(key)
        if entry is None:
            try:
                entry = self._eval_graphs[key] = _EvalGraph(self, tokens, hidden, self.arch_tensors(host))
            except RuntimeError as e:  # eval forwards go on without graphs (slower, same results)
                self._eval_graphs = None
                torch.cuda.synchronize()
                log.warning("could not capture the eval forward as a CUDA graph (%s); eval forwards run uncaptured",
                            str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
                return super().forward(tokens, hidden, arch)
        entry.tokens.copy_(tokens, non_blocking=True)
        entry.hidden.copy_(hidden, non_blocking=True)
        entry.arch.copy_(host)
        entry.graph.replay()
        return entry.logits.clone(), entry.h.clone()

    def _cell_runner(self, arch):
        at = self.arch_tensors(arch)
        self._rows = at.rows

        def cell(xproj, h, h_mask, node_mask):
            weights = self.edge_stack.index_select(0, at.rows)  # (N-1, H, 2H), gathered once
            w_h = self.w_h
            dtype = _autocast_dtype(xproj.device.type)
            if dtype is not None:  # cast once per forward, not once per timestep
                weights, w_h = weights.to(dtype), w_h.to(dtype)
            return run_static_cell(self._step, xproj, h, w_h, weights.unbind(0), at, h_mask,
                                   self.max_hidden_norm, node_mask)

        return cell


MAX_EVAL_GRAPHS = 4   # eval input shapes captured (reward batch, validation windows, a short last window)


class _EvalGraph:
    """One captured no-grad eval forward of the static supernet: static inputs, graph, static outputs."""

    def __init__(self, model: StaticRNNCellSupernet, tokens: torch.Tensor, hidden: torch.Tensor, arch: ArchTensors):
        self.tokens, self.hidden = tokens.clone(), hidden.clone()
        self.arch = ArchTensors(*(t.clone() for t in arch))
        forward = super(StaticRNNCellSupernet, model).forward
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up: cuBLAS handles, a compiled cell, autocast casts
            forward(self.tokens, self.hidden, self.arch)
        torch.cuda.current_stream().wait_stream(side)
        torch.clear_autocast_cache()   # casts made before the capture must not be read by the graph
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits, self.h = forward(self.tokens, self.hidden, self.arch)


def _edges_to_eager_names(module: StaticRNNCellSupernet, state_dict: dict, prefix: str, local_metadata) -> None:
    """state_dict hook: show edge_stack's rows as `edges.i_j`, the eager supernet's names."""
    stack = state_dict.pop(prefix + "edge_stack")
    for r, (i, j) in enumerate(module.edge_pairs):
        state_dict[f"{prefix}edges.{edge_name(i, j)}"] = stack[r]


def _edges_from_eager_names(module: StaticRNNCellSupernet, state_dict: dict, prefix: str, local_metadata,
                            strict, missing_keys, unexpected_keys, error_msgs) -> None:
    """load_state_dict pre-hook: stack `edges.i_j` entries back into edge_stack."""
    names = [f"{prefix}edges.{edge_name(i, j)}" for i, j in module.edge_pairs]
    if prefix + "edge_stack" in state_dict or not all(n in state_dict for n in names):
        return  # a stack given directly, or entries missing: load_state_dict reports what is wrong
    if names:
        state_dict[prefix + "edge_stack"] = torch.stack([state_dict.pop(n) for n in names])
    else:  # one node: no edges at all
        state_dict[prefix + "edge_stack"] = module.edge_stack.detach()
