"""Does the controller learn? Its entropy over a search, from the run's TensorBoard events.

    python -m experiments.search_quality.entropy_curve RUN_DIR [RUN_DIR ...] --names a b \
        --png experiments/search_quality/ptb_entropy.png > experiments/search_quality/ptb_entropy.md

For each search run: `controller/entropy` (the summed entropy of the decisions of the sampled
architectures, one value per controller update), its mean over the first `window` updates, the
lowest mean over any `window` consecutive updates, the mean over the last `window`, and the
change of the last from the first in per cent (issue 9 asks for a fall of at least 10%).
The PNG draws every update's entropy against its index, one panel per run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

TAG = "controller/entropy"


def read_scalars(run_dir: str, tag: str = TAG) -> list[tuple[int, float]]:
    """(step, value) of `tag` in the TensorBoard events under run_dir/tb (or run_dir), in update order.

    Runs written before the strategy's tags counted updates log a whole theta phase at one omega
    step: within a step the events keep the order they were written in."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    folder = os.path.join(run_dir, "tb") if os.path.isdir(os.path.join(run_dir, "tb")) else run_dir
    events = EventAccumulator(folder, size_guidance={"scalars": 0})
    events.Reload()
    if tag not in events.Tags()["scalars"]:
        raise SystemExit(f"error: {folder} holds no {tag!r} scalars")
    ordered = sorted(events.Scalars(tag), key=lambda e: (e.step, e.wall_time))
    return [(e.step, e.value) for e in ordered]


def summary(values: list[float], window: int = 10) -> dict:
    """First, lowest and last `window`-update means and the change of the last from the first."""
    window = max(1, min(window, len(values)))
    means = [statistics.fmean(values[i:i + window]) for i in range(len(values) - window + 1)]
    first, last = means[0], means[-1]
    return {"updates": len(values), "first": first, "lowest": min(means), "last": last,
            "change": (last - first) / first, "lowest_change": (min(means) - first) / first}


def markdown(rows: list[tuple[str, dict]], window: int) -> str:
    lines = [f"| run | updates | entropy, first {window} | lowest {window} in a row | last {window} | "
             f"change (last) | change (lowest) |", "|---|---|---|---|---|---|---|"]
    for name, s in rows:
        lines.append(f"| {name} | {s['updates']} | {s['first']:.3f} | {s['lowest']:.3f} | {s['last']:.3f} | "
                     f"{100 * s['change']:+.1f}% | {100 * s['lowest_change']:+.1f}% |")
    return "\n".join(lines) + "\n"


def run_labels(parser: argparse.ArgumentParser, runs: list[str], names: list[str] | None) -> list[str]:
    """A label per run directory: `names` (--names) or the folder names; a count mismatch exits."""
    names = names or [os.path.basename(os.path.normpath(r)) for r in runs]
    if len(names) != len(runs):
        parser.error(f"--names: {len(names)} labels for {len(runs)} runs")
    return names


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="search run directories")
    parser.add_argument("--names", nargs="*", help="a label per run (default: the folder names)")
    parser.add_argument("--window", type=int, default=10, help="updates per mean (default 10)")
    parser.add_argument("--png", help="write the curves here")
    args = parser.parse_args(argv)
    names = run_labels(parser, args.runs, args.names)
    curves = [(name, read_scalars(run)) for name, run in zip(names, args.runs)]
    sys.stdout.write(markdown([(name, summary([v for _, v in c], args.window)) for name, c in curves],
                              args.window))
    if args.png:
        from enas.plots import Panel, save_image, scatter_panels
        # x: the update's index (older runs logged a whole theta phase at one omega step)
        panels = [Panel(list(range(1, len(c) + 1)), [v for _, v in c], "controller update", "entropy (nats)", name)
                  for name, c in curves]
        save_image(scatter_panels(panels, "controller entropy during the search"), args.png)


if __name__ == "__main__":
    main()
