"""The GPU check script (experiments/gpu_check.py): its refusal without a GPU, and the parsing of
what the searches and benchmarks write (if their formats drift, the report would go blank)."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from enas.arch import Architecture
from enas.build import build_search
from enas.logs import run_log
from enas.spaces import build_space
from experiments import gpu_check
from experiments.bench import bench_rnn_cell
from tests.helpers import compose_config

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the check would run")
def test_without_a_gpu_it_refuses_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "experiments.gpu_check", "--out", "/nonexistent/gpu_check.md"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and proc.stdout == ""
    assert lines[0].startswith("gpu-check: no CUDA GPU visible") and "nothing was run" in lines[0]


def test_search_log_lines_are_parsed(tmp_path):
    """The figures the report takes from a search's log: epoch lines with phase seconds, step rates."""
    cfg = compose_config("search", ["experiment=smoke_ptb", "search.epochs=2", "search.omega_steps=4",
                                    "search.strategy_steps=1", "search.log_every=2", "search.checkpoint_every=0"])
    log_path = tmp_path / "search.log"
    with run_log(str(log_path)):
        build_search(cfg, str(tmp_path), torch.device("cpu")).run()
    figures = gpu_check.search_figures(log_path)
    assert [e["epoch"] for e in figures["epochs"]] == [1, 2] and [e["step"] for e in figures["epochs"]] == [4, 8]
    first = figures["epochs"][0]
    assert first["seconds"] >= first["omega"] + first["theta"] - 0.2 and first["valid"][0] == "ppl"
    assert len(figures["rates"]) == 4 and figures["first_log"] is not None


def test_the_goal_line_reads_the_rnn_benchmark_table():
    """bench_rnn_cell.render writes the table that gpu_check.goals reads (the same columns)."""
    space = build_space("rnn_cell", num_nodes=12)
    arch = Architecture("rnn_cell", tuple(0 for _ in space.decisions()))
    size = bench_rnn_cell.BenchSize("large", 10_000, 1000, 64, 35, 12)
    rows = [("reference (bench file)", 0.050), ("supernet", 0.100), ("static (arch as data)", 0.120),
            ("static + CUDA graph", 0.030), ("static + CUDA graph bf16", 0.016)]
    table = bench_rnn_cell.render([{"size": size, "arch": arch, "diff": 0.0, "static_diff": 0.0, "rows": rows,
                                    "setup_s": {}, "failed": {"static + compile + CUDA graph bf16": "Boom: x"},
                                    "eval": None}], 5, torch.device("cpu"), (0.0, 0.0, 0.0))
    assert "failed: Boom: x" in table and "static (arch as data) / eager supernet = 1.20x" in table
    stages = {name: gpu_check.Stage(name, name) for name in gpu_check.SHARES}
    stages["rnn"].facts["table"] = table
    goal = gpu_check.goals(stages)
    assert ("eager 100.0 ms, fastest `static + CUDA graph bf16` 16.0 ms (the same benchmark run): 6.25x "
            "(meets the goal of >= 5x)") in goal[0]
    assert "no epoch finished" in goal[1]
    # the compiled row comes from its own run and is compared with that run's eager time
    compiled = [("supernet", 0.090), (gpu_check.COMPILE_ROW, 0.010)]
    stages["compile"].facts["table"] = bench_rnn_cell.render(
        [{"size": size, "arch": arch, "diff": 0.0, "static_diff": 0.0, "rows": compiled, "setup_s": {}, "failed": {},
          "eval": None}], 5, torch.device("cpu"), (0.0, 0.0, 0.0))
    assert f"eager 90.0 ms, fastest `{gpu_check.COMPILE_ROW}` 10.0 ms (the same benchmark run): 9.00x" in \
        gpu_check.goals(stages)[0]
