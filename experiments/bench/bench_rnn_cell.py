"""Speed of one omega step through the `rnn_cell` supernet versus a plain fast standalone cell.

    python -m experiments.bench.bench_rnn_cell [--quick] [--out experiments/bench/rnn_cell.md]

One step = forward over a (bptt, batch) window, cross-entropy, backward, clip_grad_norm 0.25,
SGD step. Rows (see TIMERS; add a row by appending a (name, builder) pair):

- reference: an independent minimal LM written here (all-timestep x projection in one matmul,
  gate and value matrices merged per node), holding only the sampled architecture's weights;
- supernet: the space's shared model with every edge, executing the sampled architecture;
- build_network: the space's standalone network of the same architecture.

All rows share the same weights, data and architecture (seeded). Timings alternate between rows
inside each repeat, so load changes on the machine hit every row alike; the table reports medians.
Without --out the full run writes experiments/bench/rnn_cell.md; --quick writes nothing unless
--out is given (it is a smoke test: 2 repeats, tiny sizes).
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from enas.arch import Architecture
from experiments.bench.common import cpu_model
from enas.spaces import build_space

DEFAULT_OUT = "experiments/bench/rnn_cell.md"
CLIP = 0.25
LR = 0.1


@dataclass(frozen=True)
class BenchSize:
    """One benchmark configuration."""

    name: str
    vocab: int
    hidden: int
    batch: int
    bptt: int
    nodes: int


FULL_SIZES = [BenchSize("small", 10_000, 200, 64, 35, 9), BenchSize("large", 10_000, 1000, 64, 35, 12)]
QUICK_SIZES = [BenchSize("small-quick", 50, 16, 4, 5, 4), BenchSize("large-quick", 50, 32, 4, 5, 6)]


@dataclass
class Setup:
    """What every row's builder receives: the size, the sampled architecture, data and a shared supernet."""

    size: BenchSize
    arch: Architecture
    tokens: torch.Tensor  # (T, B)
    targets: torch.Tensor  # (T, B)
    supernet: nn.Module
    device: torch.device


# --- the independent reference implementation ---------------------------------------------


class ReferenceCellLM(nn.Module):
    """A minimal ENAS-cell LM of one fixed architecture, written the fast way.

    acts[i] names node i's activation, inputs[i] the node it reads (inputs[0] is unused: node 0
    reads x_t and h). Weights: embedding (V, H) tied to the decoder, w_x and w_h (H, 2H) for node 0,
    node_w[i - 1] (H, 2H) for node i >= 1, each [gate | value] merged.
    """

    FNS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda v: v}

    def __init__(self, vocab: int, hidden: int, acts: list[str], inputs: list[int]):
        super().__init__()
        self.hidden = hidden
        self.acts = [self.FNS[a] for a in acts]
        self.inputs = inputs
        read = set(inputs[1:])
        self.ends = [i for i in range(len(acts)) if i not in read]
        self.emb = nn.Embedding(vocab, hidden)
        self.w_x = nn.Parameter(torch.empty(hidden, 2 * hidden))
        self.w_h = nn.Parameter(torch.empty(hidden, 2 * hidden))
        self.node_w = nn.ParameterList([nn.Parameter(torch.empty(hidden, 2 * hidden)) for _ in acts[1:]])
        self.bias = nn.Parameter(torch.zeros(vocab))

    def forward(self, tokens: torch.Tensor, h: torch.Tensor):
        T, B = tokens.shape
        H = self.hidden
        xw = (self.emb(tokens).view(T * B, H) @ self.w_x).view(T, B, 2 * H)  # all timesteps at once
        weights = list(self.node_w)
        outs = []
        for t in range(T):
            z = xw[t] + h @ self.w_h  # (B, 2H)
            gate, value = z.chunk(2, dim=1)
            gate = torch.sigmoid(gate)
            s = [h + gate * (self.acts[0](value) - h)]
            for i in range(1, len(self.acts)):
                prev = s[self.inputs[i]]
                gate, value = (prev @ weights[i - 1]).chunk(2, dim=1)
                gate = torch.sigmoid(gate)
                s.append(prev + gate * (self.acts[i](value) - prev))
            h = s[self.ends[0]] if len(self.ends) == 1 else torch.stack([s[k] for k in self.ends]).mean(0)
            outs.append(h)
        out = torch.stack(outs)  # (T, B, H)
        return F.linear(out, self.emb.weight, self.bias), h  # tied decoder: (T, B, V)


def reference_from_supernet(setup: Setup) -> ReferenceCellLM:
    """Build the reference model and copy the sampled architecture's weights from the supernet."""
    space = build_space("rnn_cell", num_nodes=setup.size.nodes)
    plan = space.plan(setup.arch)
    ref = ReferenceCellLM(setup.size.vocab, setup.size.hidden, list(plan.acts), list(plan.inputs))
    sn = setup.supernet
    with torch.no_grad():
        ref.emb.weight.copy_(sn.encoder.weight)
        ref.w_x.copy_(sn.w_x)
        ref.w_h.copy_(sn.w_h)
        ref.bias.copy_(sn.decoder.bias)
        for k, (i, j) in enumerate(plan.edges):
            ref.node_w[k].copy_(sn.edges[f"{i}_{j}"])
    return ref.to(setup.device)


# --- timing rows -----------------------------------------------------------------------------


def omega_step(model: nn.Module, setup: Setup, with_arch: bool) -> Callable[[], None]:
    """A closure doing one training step of `model` on the setup's window."""
    params = [p for p in model.parameters()]
    opt = torch.optim.SGD(params, lr=LR)
    V = setup.size.vocab
    hidden0 = torch.zeros(setup.size.batch, setup.size.hidden, device=setup.device)

    def step():
        opt.zero_grad(set_to_none=True)
        if with_arch:
            logits, _ = model(setup.tokens, hidden0, setup.arch)
        else:
            logits, _ = model(setup.tokens, hidden0)
        loss = F.cross_entropy(logits.view(-1, V), setup.targets.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)  # grads of unchosen edges are None: skipped
        opt.step()

    return step


def row_reference(setup: Setup) -> Callable[[], None]:
    return omega_step(reference_from_supernet(setup), setup, with_arch=False)


def row_supernet(setup: Setup) -> Callable[[], None]:
    return omega_step(setup.supernet, setup, with_arch=True)


def row_build_network(setup: Setup) -> Callable[[], None]:
    space = build_space("rnn_cell", num_nodes=setup.size.nodes)
    net = space.build_network(setup.arch, vocab_size=setup.size.vocab, hidden_size=setup.size.hidden)
    space.load_inherited(net, setup.supernet, setup.arch)
    return omega_step(net.to(setup.device), setup, with_arch=False)


# (name, builder): each builder gets the Setup and returns a zero-argument step to time.
# The first row is the baseline of the ratio column.
TIMERS: list[tuple[str, Callable[[Setup], Callable[[], None]]]] = [
    ("reference (bench file)", row_reference),
    ("supernet", row_supernet),
    ("build_network", row_build_network),
]


# --- harness ---------------------------------------------------------------------------------


def make_setup(size: BenchSize, device: torch.device, seed: int = 0) -> Setup:
    """Seeded architecture, random token window and supernet for one size."""
    torch.manual_seed(seed)
    space = build_space("rnn_cell", num_nodes=size.nodes)
    rng = random.Random(seed)
    arch = space.validate(Architecture("rnn_cell", tuple(rng.randrange(d.num_choices) for d in space.decisions())))
    data = torch.randint(0, size.vocab, (size.bptt + 1, size.batch), device=device)
    supernet = space.build_supernet(vocab_size=size.vocab, hidden_size=size.hidden).to(device)
    return Setup(size, arch, data[:-1], data[1:], supernet, device)


def check_reference(setup: Setup) -> float:
    """Max |logits difference| between the reference and the supernet (eval, no grad): it must be ~0."""
    ref = reference_from_supernet(setup).eval()
    sn = setup.supernet.eval()
    h0 = torch.zeros(setup.size.batch, setup.size.hidden, device=setup.device)
    with torch.no_grad():
        a, _ = ref(setup.tokens, h0)
        b, _ = sn(setup.tokens, h0, setup.arch)
    sn.train()
    return (a - b).abs().max().item()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_rows(setup: Setup, repeats: int, warmup: int) -> list[tuple[str, float]]:
    """Median seconds per step of every TIMERS row; rows alternate within each repeat."""
    steps = [(name, build(setup)) for name, build in TIMERS]
    for _ in range(warmup):
        for _, step in steps:
            step()
    _sync(setup.device)
    samples: dict[str, list[float]] = {name: [] for name, _ in steps}
    for _ in range(repeats):
        for name, step in steps:
            t0 = time.perf_counter()
            step()
            _sync(setup.device)
            samples[name].append(time.perf_counter() - t0)
    return [(name, statistics.median(samples[name])) for name, _ in steps]


# --- controller ------------------------------------------------------------------------------
PTB_TRAIN_TOKENS = 929_589
STRATEGY_STEPS = 50          # theta steps per epoch of the enas_ptb_small preset


def time_controller(size: BenchSize, repeats: int) -> tuple[float, float]:
    """Median seconds of the controller's `ask(1)` (a sample) and `tell` (one REINFORCE update)."""
    from enas.strategies import build_strategy
    space = build_space("rnn_cell", num_nodes=size.nodes)
    strategy = build_strategy("reinforce", space, lstm_size=100)
    asks, tells = [], []
    for i in range(repeats + 2):
        t0 = time.perf_counter()
        archs = strategy.ask(1)
        t1 = time.perf_counter()
        strategy.tell(archs, [float(i % 3)])
        t2 = time.perf_counter()
        if i >= 2:
            asks.append(t1 - t0)
            tells.append(t2 - t1)
    return statistics.median(asks), statistics.median(tells)


def controller_share(size: BenchSize, supernet_step: float, ask: float, tell: float) -> tuple[int, float, float]:
    """Controller seconds in one search epoch (a sample per omega step, sample + update per theta
    step) and its share of the epoch (omega steps at the measured supernet step time)."""
    omega_steps = PTB_TRAIN_TOKENS // (size.batch * size.bptt)
    controller = omega_steps * ask + STRATEGY_STEPS * (ask + tell)
    epoch = omega_steps * supernet_step + controller
    return omega_steps, controller, controller / epoch


def render(results: list[tuple[BenchSize, Architecture, float, list[tuple[str, float]]]], repeats: int,
           device: torch.device, load_before: tuple[float, ...], controller: list | None = None) -> str:
    """The markdown report."""
    lines = [
        "# rnn_cell: omega-step speed, supernet vs. a plain standalone cell",
        "",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads, "
        f"CPU: {cpu_model()} ({os.cpu_count()} logical cores)",
        f"- load average before the run: {', '.join(f'{x:.2f}' for x in load_before)}",
        f"- step: forward, cross-entropy, backward, clip_grad_norm {CLIP}, SGD; no dropout; "
        f"median of {repeats} repeats after warm-up, rows alternating within each repeat",
        "- ratio: row time / reference time (reference = independent minimal implementation in the bench file)",
        "",
        "| size | vocab | hidden | batch | bptt | nodes | row | ms/step | ratio | tokens/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, arch, diff, rows in results:
        base = rows[0][1]
        for name, sec in rows:
            lines.append(f"| {size.name} | {size.vocab} | {size.hidden} | {size.batch} | {size.bptt} | {size.nodes} "
                         f"| {name} | {sec * 1e3:.1f} | {sec / base:.3f} | {size.batch * size.bptt / sec:,.0f} |")
    lines.append("")
    if controller:
        lines += ["## Controller (LSTM 100, REINFORCE) per architecture, and its share of a search epoch", "",
                  f"Epoch = one pass over PTB train ({PTB_TRAIN_TOKENS:,} tokens) of omega steps, each with one "
                  f"controller sample, plus {STRATEGY_STEPS} theta steps (sample + update), as enas_ptb_small.", "",
                  "| size | sample ms | update ms | omega steps/epoch | controller s/epoch | share of epoch |",
                  "|---|---|---|---|---|---|"]
        for size, ask, tell, steps, ctrl, share in controller:
            lines.append(f"| {size.name} | {ask * 1e3:.1f} | {tell * 1e3:.1f} | {steps} | {ctrl:.1f} | {share:.2%} |")
        lines.append("")
    for size, arch, diff, rows in results:
        lines.append(f"- {size.name}: architecture `{build_space('rnn_cell', num_nodes=size.nodes).describe(arch)}`;"
                     f" max |logits(reference) - logits(supernet)| = {diff:.2e}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 repeats (smoke test)")
    parser.add_argument("--out", default=None, help=f"markdown file to write (full run default: {DEFAULT_OUT})")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per row (default 7; quick 2)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps per row first (default 2; quick 1)")
    parser.add_argument("--sizes", default=None, help="comma-separated size names to run (default: all)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    args = parser.parse_args(argv)

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    if args.sizes:
        wanted = args.sizes.split(",")
        unknown = sorted(set(wanted) - {s.name for s in sizes})
        if unknown:
            raise SystemExit(f"--sizes: unknown size(s) {unknown}; known: {[s.name for s in sizes]}")
        sizes = [s for s in sizes if s.name in wanted]
    repeats = args.repeats or (2 if args.quick else 7)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    out = args.out if args.out is not None else (None if args.quick else DEFAULT_OUT)

    load_before = os.getloadavg()
    results, controller = [], []
    for size in sizes:
        print(f"[bench_rnn_cell] {size.name}: {warmup} warm-up + {repeats} timed steps per row", file=sys.stderr,
              flush=True)
        setup = make_setup(size, device)
        diff = check_reference(setup)
        if diff > 1e-3:
            raise RuntimeError(f"{size.name}: the reference disagrees with the supernet (max diff {diff:.3g})")
        rows = time_rows(setup, repeats, warmup)
        results.append((size, setup.arch, diff, rows))
        del setup  # free the supernet before the next size
        ask, tell = time_controller(size, max(repeats, 5))
        supernet_step = dict(rows)["supernet"]
        controller.append((size, ask, tell, *controller_share(size, supernet_step, ask, tell)))
    report = render(results, repeats, device, load_before, controller)
    print(report, end="")
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            f.write(report)
    return report


if __name__ == "__main__":
    main()
