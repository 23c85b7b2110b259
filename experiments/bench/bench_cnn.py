"""Benchmark: one omega step of a CNN supernet vs the standalone network of the same architecture.

    python -m experiments.bench.bench_cnn [--quick] [--out experiments/bench/cnn.md]

For each space at the recipe's search sizes (macro_cnn: 12 layers, 36 channels; micro_cnn:
5 nodes, 6 layers, 20 channels), on CIFAR-shaped random data (B, 3, 32, 32) on the CPU, time a
training step (forward, cross-entropy, backward, SGD) of the supernet running a sampled
architecture and of the standalone network of that architecture. Reports the median over
repeats (after warm-up), the ratio supernet / standalone (target: at most 1.15) and images/s.
Writes a markdown table to --out and prints it. A benchmark, not a test.

    python -m experiments.bench.bench_cnn --device cuda --batch-size 128 --out <file>

On CUDA each (space, architecture) is also timed with the GPU options of `accel=gpu`: bf16
autocast, channels_last models and images, cudnn.benchmark (variant "bf16+nhwc+cudnn").
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

import enas.spaces.macro_cnn  # noqa: F401  (registers the space)
import enas.spaces.micro_cnn  # noqa: F401
from enas.arch import Architecture
from enas.strategies.base import uniform_architecture
from enas.tasks import autocast
from experiments.bench.common import cpu_model, device_line
from enas.spaces.base import SPACES, SearchSpace

# (space, structure, sizes): the ENAS search recipes
CASES = [
    ("macro_cnn", {"num_layers": 12}, {"channels": 36}),
    ("micro_cnn", {"num_nodes": 5}, {"channels": 20, "num_layers": 6}),
]
DATA = {"num_classes": 10, "in_channels": 3, "image_size": 32}
TRAIN_IMAGES = 45_000
# Controller settings of the recipes: (lstm_size, theta steps per epoch, architectures per step)
CONTROLLER = {"macro_cnn": (64, 50, 20), "micro_cnn": (64, 30, 10)}
TARGET_RATIO = 1.15
# name -> (autocast dtype, channels_last, cudnn.benchmark); the fast one runs on CUDA only
VARIANTS = {"default": (None, False, False), "bf16+nhwc+cudnn": (torch.bfloat16, True, True)}


def time_steps(models: list[torch.nn.Module], arch: Architecture, images: torch.Tensor, labels: torch.Tensor,
               warmup: int, repeats: int, variant: str = "default") -> list[list[float]]:
    """Seconds of each training step (forward, CE, backward, SGD) of each model, after warm-up.

    The models take turns step by step, so a load change on a shared machine hits them alike.
    """
    amp, nhwc, cudnn_benchmark = VARIANTS[variant]
    if nhwc:
        models = [m.to(memory_format=torch.channels_last) for m in models]
        images = images.contiguous(memory_format=torch.channels_last)
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9) for m in models]
    times: list[list[float]] = [[] for _ in models]
    cuda = images.is_cuda
    for i in range(warmup + repeats):
        for model, optimizer, out in zip(models, optimizers, times):
            model.train()
            torch.backends.cudnn.benchmark = cudnn_benchmark
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            with autocast(images.device, amp):
                loss = F.cross_entropy(model(images, arch), labels)
            loss.backward()
            optimizer.step()
            if cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                out.append(time.perf_counter() - start)
    torch.backends.cudnn.benchmark = False
    return times


def time_controller(space: SearchSpace, lstm_size: int, archs_per_step: int, repeats: int = 5) -> tuple[float, float, float]:
    """Median seconds of one controller sample (ask(1), as every omega step does), and of
    ask(n) and tell(n) for one theta step of n architectures."""
    from enas.strategies import build_strategy
    strategy = build_strategy("reinforce", space, lstm_size=lstm_size)
    one, ask, tell = [], [], []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        strategy.ask(1)
        t1 = time.perf_counter()
        archs = strategy.ask(archs_per_step)
        t2 = time.perf_counter()
        strategy.tell(archs, [float(j % 3) for j in range(archs_per_step)])
        t3 = time.perf_counter()
        if i:  # the first round warms up
            one.append(t1 - t0)
            ask.append(t2 - t1)
            tell.append(t3 - t2)
    return statistics.median(one), statistics.median(ask), statistics.median(tell)


def controller_rows(batch_size: int, step_times: dict[str, float]) -> list[dict]:
    """Controller seconds per search epoch and their share of it: one sample per omega step
    (45k images / batch at the measured supernet step time) plus the recipe's theta steps."""
    rows = []
    for name, structure, _ in CASES:
        lstm, steps, n = CONTROLLER[name]
        one, ask, tell = time_controller(SPACES[name](**structure), lstm, n)
        omega_steps = TRAIN_IMAGES // batch_size
        controller = omega_steps * one + steps * (ask + tell)
        epoch = omega_steps * step_times[name] + controller
        rows.append({"space": name, "lstm": lstm, "steps": steps, "n": n, "one": one, "ask": ask, "tell": tell,
                     "omega_steps": omega_steps, "controller": controller, "share": controller / epoch})
    return rows


def run(quick: bool, batch_size: int, num_archs: int, seed: int, device: torch.device = torch.device("cpu"),
        repeats: int | None = None) -> list[dict]:
    """Time every case; one row per (space, architecture, variant)."""
    warmup, repeats = (1, repeats or 2) if quick else (2, repeats or 7)
    variants = list(VARIANTS) if device.type == "cuda" else ["default"]
    rows = []
    for name, structure, sizes in CASES:
        space = SPACES[name](**structure)
        arch_generator = np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(seed)
        images = torch.randn(batch_size, DATA["in_channels"], DATA["image_size"], DATA["image_size"],
                             generator=gen).to(device)
        labels = torch.randint(0, DATA["num_classes"], (batch_size,), generator=gen).to(device)
        for a in range(1 if quick else num_archs):
            arch = uniform_architecture(space.name, space.decisions(), arch_generator)
            for variant in variants:
                torch.manual_seed(seed)
                supernet = space.build_supernet(**DATA, **sizes).to(device)
                network = space.build_network(arch, **DATA, **sizes).to(device)
                times_super, times_net = time_steps([supernet, network], arch, images, labels, warmup, repeats,
                                                    variant)
                t_super, t_net = statistics.median(times_super), statistics.median(times_net)
                paired = statistics.median(s / n for s, n in zip(times_super, times_net))
                rows.append({"space": name, "arch": a, "variant": variant, "sizes": sizes, "t_super": t_super,
                             "t_net": t_net, "ratio": t_super / t_net, "paired": paired,
                             "ips_super": batch_size / t_super, "ips_net": batch_size / t_net})
                print(f"{name} arch {a} {variant}: supernet {t_super * 1e3:.1f} ms, standalone {t_net * 1e3:.1f} ms, "
                      f"ratio {t_super / t_net:.3f} (paired {paired:.3f})", flush=True)
    return rows


def to_markdown(rows: list[dict], quick: bool, batch_size: int, controller: list[dict] | None = None,
                device: torch.device = torch.device("cpu")) -> str:
    lines = [
        f"# CNN spaces: supernet vs standalone omega step ({device.type.upper()})",
        "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- torch {torch.__version__}, {device_line(device)}, threads {torch.get_num_threads()}, CPU: {cpu_model()} "
        f"({os.cpu_count()} logical cores)",
        f"- data: random CIFAR-shaped images, batch {batch_size}x3x32x32, 10 classes; "
        f"step = forward + cross-entropy + backward + SGD (momentum 0.9); median of repeats after warm-up; "
        f"supernet and standalone steps alternate; ratio = ratio of the medians, paired = median of the "
        f"per-repeat ratios"
        + (" (--quick: 1 arch, 2 repeats)" if quick else ""),
        f"- target: supernet / standalone <= {TARGET_RATIO}",
        "",
        "- variant: default = float32, NCHW, cudnn heuristics; bf16+nhwc+cudnn (CUDA only) = the options of "
        "accel=gpu: bf16 autocast, channels_last, cudnn.benchmark",
        "",
        "| space | sizes | arch | variant | supernet ms | standalone ms | ratio | paired | supernet img/s | "
        "standalone img/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        sizes = ", ".join(f"{k}={v}" for k, v in r["sizes"].items())
        lines.append(f"| {r['space']} | {sizes} | {r['arch']} | {r.get('variant', 'default')} | "
                     f"{r['t_super'] * 1e3:.1f} | {r['t_net'] * 1e3:.1f} | "
                     f"{r['ratio']:.3f} | {r['paired']:.3f} | {r['ips_super']:.1f} | {r['ips_net']:.1f} |")
    if controller:
        lines += ["", "## Controller share of a search epoch", "",
                  f"Epoch: {TRAIN_IMAGES:,} training images in batches of {batch_size} (one controller sample per "
                  "omega step, at the median supernet step above) plus the recipe's theta steps (sample n + "
                  "REINFORCE update on n); reward evaluation time not counted (it is supernet forward work).", "",
                  "| space | LSTM | theta steps x archs | sample(1) ms | ask(n) ms | tell(n) ms | omega steps | "
                  "controller s/epoch | share |", "|---|---|---|---|---|---|---|---|---|"]
        for c in controller:
            lines.append(f"| {c['space']} | {c['lstm']} | {c['steps']} x {c['n']} | {c['one'] * 1e3:.1f} | "
                         f"{c['ask'] * 1e3:.1f} | {c['tell'] * 1e3:.1f} | {c['omega_steps']} | "
                         f"{c['controller']:.1f} | {c['share']:.2%} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one architecture, few repeats (smoke run)")
    parser.add_argument("--out", default="experiments/bench/cnn.md", help="markdown file to write")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--archs", type=int, default=3, help="sampled architectures per space")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads (0: torch's default); 1 is steadier on a busy machine")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--repeats", type=int, default=None, help="timed steps per model (default 7; quick 2)")
    parser.add_argument("--no-controller", action="store_true", help="leave out the controller timings")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = run(args.quick, args.batch_size, args.archs, args.seed, device, args.repeats)
    step_times = {name: statistics.median(r["t_super"] for r in rows if r["space"] == name and r["variant"] == "default")
                  for name, _, _ in CASES}
    controller = None if args.no_controller else controller_rows(args.batch_size, step_times)
    table = to_markdown(rows, args.quick, args.batch_size, controller, device)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    main()
