"""How far can the controller move? Its Adam optimiser's gradient sizes against eps, from searches.

    python -m experiments.search_quality.controller_steps /tmp/sqm/main_reinforce/s0 ... --names main ... \
        > experiments/search_quality/controller_steps_micro.md

Adam divides each step by sqrt(v) + eps, v the running mean of the squared gradient. When the
gradients' RMS is far below eps (the official controller uses eps 1e-3) a step is about
lr * RMS / eps, a small fraction of the learning rate, and a short search's few updates leave the
controller where it started. For each search run (its checkpoint.pt, read safely), over every
controller parameter: the RMS of its gradients (Adam's bias-corrected second moment), median /
90th / 99th percentile, the share below eps, and the median of RMS / (RMS + eps), the size of a
step relative to the learning rate for a gradient that keeps its sign.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from enas.checkpoint import load_checkpoint
from experiments.search_quality.entropy_curve import run_labels


def step_sizes(optimizer_state: dict) -> dict:
    """Gradient RMS quantiles, share below eps and median relative step of an Adam state_dict."""
    group = optimizer_state["param_groups"][0]
    beta2, eps = group["betas"][1], group["eps"]
    rms, updates = [], 0
    for state in optimizer_state["state"].values():
        steps = int(state["step"])
        updates = max(updates, steps)
        rms.append((state["exp_avg_sq"] / (1 - beta2 ** steps)).sqrt().flatten())
    rms = torch.cat(rms).double()
    quantiles = torch.quantile(rms, torch.tensor([0.5, 0.9, 0.99], dtype=torch.double)).tolist()
    return {"lr": group["lr"], "betas": tuple(group["betas"]), "eps": eps, "updates": updates,
            "rms_median": quantiles[0], "rms_p90": quantiles[1], "rms_p99": quantiles[2],
            "below_eps": float((rms < eps).double().mean()), "relative_step": float((rms / (rms + eps)).median())}


def markdown(runs: list[str], names: list[str]) -> str:
    """One row per search run: the controller optimiser's settings and `step_sizes`."""
    lines = ["| run | lr | Adam beta1 / eps | updates | gradient RMS median / p90 / p99 | share below eps "
             "| step / lr (median) |", "|---|---|---|---|---|---|---|"]
    for run, name in zip(runs, names):
        state = load_checkpoint(os.path.join(run, "checkpoint.pt"), kind="search")
        s = step_sizes(state["strategy"]["optimizer"])
        lines.append(f"| {name} | {s['lr']:g} | {s['betas'][0]:g} / {s['eps']:g} | {s['updates']} | "
                     f"{s['rms_median']:.1e} / {s['rms_p90']:.1e} / {s['rms_p99']:.1e} | {s['below_eps']:.2f} | "
                     f"{s['relative_step']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="search run directories (a controller strategy)")
    parser.add_argument("--names", nargs="*", help="a label per run (default: the folder names)")
    args = parser.parse_args(argv)
    sys.stdout.write(markdown(args.runs, run_labels(parser, args.runs, args.names)))


if __name__ == "__main__":
    main()
