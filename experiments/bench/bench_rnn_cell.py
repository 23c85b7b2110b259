"""Speed of one omega step through the `rnn_cell` supernet versus a plain fast standalone cell.

    python -m experiments.bench.bench_rnn_cell [--quick] [--out experiments/bench/rnn_cell.md]
    python -m experiments.bench.bench_rnn_cell --device cuda [--no-compile]   # + the GPU fast path rows

One step = forward over a (bptt, batch) window, cross-entropy, backward, clip_grad_norm 0.25,
SGD step. Rows (see TIMERS / CUDA_TIMERS; add a row by appending a (name, builder) pair):

- reference: an independent minimal LM written here (all-timestep x projection in one matmul,
  gate and value matrices merged per node), holding only the sampled architecture's weights;
- supernet: the space's shared model with every edge, executing the sampled architecture;
- static (arch as data): the architecture-as-data supernet (enas/spaces/rnn_cell_static.py)
  with MaskedSGD, run eagerly (the same step; on a CPU it only shows the cost of computing all
  four activations and of the index selections);
- build_network: the space's standalone network of the same architecture.
- CUDA only: the supernet under bf16 autocast; the static supernet with the whole step
  captured as a CUDA graph (enas/graphed.py: fp32, bf16, and bf16 with the timestep compiled).
  Their "setup s" column is the time to build, warm up, capture (and compile) the row.

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
from enas.graphed import GraphedStep
from enas.masked_sgd import MaskedSGD
from enas.spaces import build_space
from enas.tasks import autocast
from enas.training import StepRunner
from experiments.bench.common import cpu_model, device_line

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


def omega_step(model: nn.Module, setup: Setup, with_arch: bool, amp: torch.dtype | None = None,
               optimizer: torch.optim.Optimizer | None = None) -> Callable[[], None]:
    """A closure doing one training step of `model` on the setup's window."""
    params = [p for p in model.parameters()]
    opt = optimizer or torch.optim.SGD(params, lr=LR)
    V = setup.size.vocab
    hidden0 = torch.zeros(setup.size.batch, setup.size.hidden, device=setup.device)

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast(setup.device, amp):
            if with_arch:
                logits, _ = model(setup.tokens, hidden0, setup.arch)
            else:
                logits, _ = model(setup.tokens, hidden0)
            loss = F.cross_entropy(logits.view(-1, V), setup.targets.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)  # grads of unchosen edges are None: skipped
        opt.step()

    return step


def static_copy(setup: Setup) -> nn.Module:
    """The architecture-as-data supernet holding the setup supernet's weights."""
    space = build_space("rnn_cell", num_nodes=setup.size.nodes)
    static = space.build_supernet(vocab_size=setup.size.vocab, hidden_size=setup.size.hidden, static_graph=True)
    static.load_state_dict(setup.supernet.state_dict())
    return static.to(setup.device)


class _BenchTask:
    """The part of a LanguageModel task a GraphedStep uses: `loss` (CE over the window, state out)."""

    def __init__(self, amp: torch.dtype | None):
        self.amp = amp

    def loss(self, model, batch, state, arch=None, aux_weight: float = 0.0):
        tokens, targets = batch
        with autocast(tokens.device, self.amp):
            logits, state = model(tokens, state, arch)
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1))
        return loss, state.detach()


def graphed_step(setup: Setup, amp: torch.dtype | None, compile_cell: bool) -> Callable[[], None]:
    """The search loop's captured omega step (enas/graphed.py) on the static supernet."""
    model = static_copy(setup)
    if compile_cell:
        model.compile_cell(dynamic=False)
    opt = MaskedSGD(model.parameters(), lr=LR, rows_for=model.rows_for, capturable=True)
    stepper = StepRunner(opt, model.parameters(), grad_clip=CLIP, sync_free=True)
    graphed = GraphedStep(_BenchTask(amp), model, stepper)
    hidden0 = torch.zeros(setup.size.batch, setup.size.hidden, device=setup.device)
    batch = (setup.tokens, setup.targets)

    def step():
        graphed(batch, hidden0, setup.arch)

    step()  # the first call warms up and captures: part of the setup, not of the timings
    if graphed.captures != 1:
        raise RuntimeError("the omega step was not captured")
    return step


def row_reference(setup: Setup) -> Callable[[], None]:
    return omega_step(reference_from_supernet(setup), setup, with_arch=False)


def row_supernet(setup: Setup) -> Callable[[], None]:
    return omega_step(setup.supernet, setup, with_arch=True)


def row_static(setup: Setup) -> Callable[[], None]:
    model = static_copy(setup)
    return omega_step(model, setup, with_arch=True,
                      optimizer=MaskedSGD(model.parameters(), lr=LR, rows_for=model.rows_for))


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
    ("static (arch as data)", row_static),
    ("build_network", row_build_network),
]
# Rows that need CUDA (bf16 and graphs); "compile" rows are left out with --no-compile.
CUDA_TIMERS: list[tuple[str, Callable[[Setup], Callable[[], None]]]] = [
    ("supernet bf16", lambda s: omega_step(s.supernet, s, with_arch=True, amp=torch.bfloat16)),
    ("build_network bf16", lambda s: omega_step(_inherited_network(s), s, with_arch=False, amp=torch.bfloat16)),
    ("static + CUDA graph", lambda s: graphed_step(s, None, False)),
    ("static + CUDA graph bf16", lambda s: graphed_step(s, torch.bfloat16, False)),
    ("static + compile + CUDA graph bf16", lambda s: graphed_step(s, torch.bfloat16, True)),
]


def _inherited_network(setup: Setup) -> nn.Module:
    space = build_space("rnn_cell", num_nodes=setup.size.nodes)
    net = space.build_network(setup.arch, vocab_size=setup.size.vocab, hidden_size=setup.size.hidden)
    space.load_inherited(net, setup.supernet, setup.arch)
    return net.to(setup.device)


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


def build_rows(setup: Setup, timers) -> tuple[list[tuple[str, Callable[[], None]]], dict[str, float], dict[str, str]]:
    """Build each row's step: (name, step) pairs, setup seconds per row, and the error of rows that failed."""
    steps, setup_s, failed = [], {}, {}
    for name, build in timers:
        t0 = time.perf_counter()
        try:
            steps.append((name, build(setup)))
        except Exception as e:  # a fast-path row that fails is reported, not fatal (blind GPU runs)
            failed[name] = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"[:300]
            continue
        _sync(setup.device)
        setup_s[name] = time.perf_counter() - t0
    return steps, setup_s, failed


def time_rows(setup: Setup, repeats: int, warmup: int, timers=None) -> tuple[list[tuple[str, float]], dict, dict]:
    """Median seconds per step of every row; rows alternate within each repeat.

    Returns ([(name, seconds)], setup seconds per row, {row: error} of rows that failed)."""
    steps, setup_s, failed = build_rows(setup, timers or TIMERS)
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
    return [(name, statistics.median(samples[name])) for name, _ in steps], setup_s, failed


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


def check_static(setup: Setup) -> float:
    """Max |logits difference| between the static (arch as data) and the eager supernet (eval, no grad)."""
    static = static_copy(setup).eval()
    sn = setup.supernet.eval()
    h0 = torch.zeros(setup.size.batch, setup.size.hidden, device=setup.device)
    with torch.no_grad():
        a, _ = static(setup.tokens, h0, setup.arch)
        b, _ = sn(setup.tokens, h0, setup.arch)
    sn.train()
    return (a - b).abs().max().item()


def time_eval(setup: Setup, repeats: int) -> list[tuple[str, float]]:
    """CUDA: median ms of one no-grad eval forward (a reward): eager supernet vs captured static graph."""
    h0 = torch.zeros(setup.size.batch, setup.size.hidden, device=setup.device)
    static = static_copy(setup).eval()
    static.capture_eval_graphs(True)
    eager = setup.supernet.eval()
    rows = [("supernet (eager)", eager, None), ("supernet (eager) bf16", eager, torch.bfloat16),
            ("static + captured eval graph", static, None), ("static + captured eval graph bf16", static, torch.bfloat16)]
    out = []
    for name, model, amp in rows:
        times = []
        for k in range(repeats + 2):
            t0 = time.perf_counter()
            with torch.no_grad(), autocast(setup.device, amp):
                model(setup.tokens, h0, setup.arch)
            _sync(setup.device)
            if k >= 2:  # the first calls capture
                times.append(time.perf_counter() - t0)
        out.append((name, statistics.median(times)))
    setup.supernet.train()
    return out


def render(results: list[dict], repeats: int, device: torch.device, load_before: tuple[float, ...],
           controller: list | None = None) -> str:
    """The markdown report (one dict per size: size, arch, diff, static_diff, rows, setup_s, failed, eval)."""
    lines = [
        "# rnn_cell: omega-step speed, supernet vs. a plain standalone cell",
        "",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- torch {torch.__version__}, {device_line(device)}, {torch.get_num_threads()} threads, "
        f"CPU: {cpu_model()} ({os.cpu_count()} logical cores)",
        f"- load average before the run: {', '.join(f'{x:.2f}' for x in load_before)}",
        f"- step: forward, cross-entropy, backward, clip_grad_norm {CLIP}, SGD; no dropout; "
        f"median of {repeats} repeats after warm-up, rows alternating within each repeat",
        "- ratio: row time / reference time (reference = independent minimal implementation in the bench file)",
        "- setup s: building the row (with CUDA graphs: warm-up and capture; with compile: compiling)",
        "",
        "| size | vocab | hidden | batch | bptt | nodes | row | ms/step | ratio | tokens/s | setup s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        size, rows = r["size"], r["rows"]
        base = rows[0][1]
        for name, sec in rows:
            lines.append(f"| {size.name} | {size.vocab} | {size.hidden} | {size.batch} | {size.bptt} | {size.nodes} "
                         f"| {name} | {sec * 1e3:.1f} | {sec / base:.3f} | {size.batch * size.bptt / sec:,.0f} "
                         f"| {r['setup_s'].get(name, 0.0):.1f} |")
        for name, error in r["failed"].items():
            lines.append(f"| {size.name} | {size.vocab} | {size.hidden} | {size.batch} | {size.bptt} | {size.nodes} "
                         f"| {name} | failed: {error} | | | |")
    lines.append("")
    for r in results:
        times = dict(r["rows"])
        fast = {k: v for k, v in times.items() if "CUDA graph" in k}
        if "supernet" in times and "static (arch as data)" in times:
            lines.append(f"- {r['size'].name}: static (arch as data) / eager supernet = "
                         f"{times['static (arch as data)'] / times['supernet']:.2f}x the time per step")
        if fast:
            best = min(fast, key=fast.get)
            lines.append(f"- {r['size'].name}: fastest fast-path row `{best}`: {times['supernet'] / fast[best]:.2f}x "
                         f"faster than the eager supernet (fp32) on this device")
    if any(r.get("eval") for r in results):
        lines += ["", "## Reward forward (eval, no grad, the same window)", "", "| size | row | ms/forward |", "|---|---|---|"]
        for r in results:
            for name, sec in r.get("eval") or []:
                lines.append(f"| {r['size'].name} | {name} | {sec * 1e3:.2f} |")
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
    for r in results:
        size = r["size"]
        lines.append(f"- {size.name}: architecture `{build_space('rnn_cell', num_nodes=size.nodes).describe(r['arch'])}`;"
                     f" max |logits(reference) - logits(supernet)| = {r['diff']:.2e};"
                     f" max |logits(static) - logits(supernet)| = {r['static_diff']:.2e}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 repeats (smoke test)")
    parser.add_argument("--out", default=None, help=f"markdown file to write (full run default: {DEFAULT_OUT})")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per row (default 7; quick 2)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps per row first (default 2; quick 1)")
    parser.add_argument("--sizes", default=None, help="comma-separated size names to run (default: all)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--no-compile", action="store_true", help="CUDA: leave out the torch.compile row")
    parser.add_argument("--no-controller", action="store_true", help="leave out the controller timings")
    parser.add_argument("--rows", default=None, help="comma-separated row names to run (default: all)")
    parser.add_argument("--no-eval", action="store_true", help="CUDA: leave out the reward-forward timings")
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
    timers = list(TIMERS)
    if device.type == "cuda":
        timers += [(n, b) for n, b in CUDA_TIMERS if not (args.no_compile and "compile" in n)]
    if args.rows:
        wanted = args.rows.split(",")
        unknown = sorted(set(wanted) - {n for n, _ in timers})
        if unknown:
            raise SystemExit(f"--rows: unknown row(s) {unknown}; known: {[n for n, _ in timers]}")
        timers = [(n, b) for n, b in timers if n in wanted]

    load_before = os.getloadavg()
    results, controller = [], []
    for size in sizes:
        print(f"[bench_rnn_cell] {size.name}: {warmup} warm-up + {repeats} timed steps per row", file=sys.stderr,
              flush=True)
        setup = make_setup(size, device)
        diff, static_diff = check_reference(setup), check_static(setup)
        if diff > 1e-3 or static_diff > 1e-3:
            raise RuntimeError(f"{size.name}: the reference or the static supernet disagrees with the supernet "
                               f"(max diff {diff:.3g}, {static_diff:.3g})")
        rows, setup_s, failed = time_rows(setup, repeats, warmup, timers)
        evals = time_eval(setup, repeats) if device.type == "cuda" and not args.no_eval else None
        results.append({"size": size, "arch": setup.arch, "diff": diff, "static_diff": static_diff, "rows": rows,
                        "setup_s": setup_s, "failed": failed, "eval": evals})
        del setup  # free the supernet before the next size
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if not args.no_controller:
            ask, tell = time_controller(size, max(repeats, 5))
            supernet_step = dict(rows).get("supernet", rows[0][1])
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
