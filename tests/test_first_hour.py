"""What a new user meets in the first hour (issue 14): one-line errors, no empty run dirs, the
thread count, a finished run's resume, real next-step commands, one unit convention."""

from __future__ import annotations

import json
import math
import os

import pytest

from enas.checkpoint import check_compatible
from enas.logs import Eta, format_duration
from enas.tasks import format_metric
from enas.training import DivergenceWatch
from enas.utils import UserError, available_cores, pick_device, set_threads
from tests.helpers import run_command

TINY = ["experiment=smoke_ptb", "search.epochs=1", "search.omega_steps=3", "search.strategy_steps=1",
        "search.archs_per_step=2", "search.valid_batches=1", "derive.num_samples=2", "derive.valid_batches=1"]


def one_error_line(proc) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_device_names_are_checked():
    with pytest.raises(UserError, match="accepted: auto, cpu, cuda, cuda:<index>"):
        pick_device("gpu")
    assert str(pick_device("cpu")) == "cpu"


def test_threads_follow_affinity_and_omp(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert available_cores() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert available_cores() == len(os.sched_getaffinity(0))
    assert set_threads(3) == 3 and set_threads(4, share=2) == 2 and set_threads(1, share=4) == 1
    with pytest.raises(UserError, match="threads=lots"):
        set_threads("lots")
    set_threads(1)


def test_resume_with_other_sizes_names_the_differing_keys():
    with pytest.raises(UserError, match=r"sizes.hidden_size: checkpoint 24, this run 32") as e:
        check_compatible("c.pt", {"sizes": {"hidden_size": 24, "vocab_size": 10}},
                         {"sizes": {"hidden_size": 32, "vocab_size": 10}})
    assert "vocab_size" not in str(e.value)


def test_one_unit_convention_and_durations():
    assert format_metric("acc", 0.2734) == "acc 27.34%" and format_metric("ppl", 123.456) == "ppl 123.46"
    assert format_duration(12) == "12s" and format_duration(185) == "3m05s" and format_duration(3720) == "1h02m"
    eta = Eta(4, done=1)
    eta.start -= 10                              # 10 s for one epoch of this session
    eta.update(2)
    assert eta.text() == "elapsed 10s, ETA 20s"


def test_divergence_is_warned_after_windows_far_above_uniform(caplog):
    watch = DivergenceWatch(math.log(10000), "trainer.optim.lr", windows=3)
    assert not any(watch.check(loss) for loss in (9.0, 16.5, 16.5, 8.0, 16.5, 16.5))
    assert watch.check(16.6, "at step 30") and watch.warnings == 1
    assert "training is diverging at step 30" in caplog.text and "trainer.optim.lr" in caplog.text


@pytest.mark.slow
def test_command_line_errors_are_one_line_and_leave_no_run_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                          # restored after the test (Ray workers import from cwd)
    line = one_error_line(run_command("enas-rank-check", check=False))
    assert line == "error: missing value for run_dir (give it on the command line: run_dir=runs/search/<...>)"
    line = one_error_line(run_command("enas-derive", f"run_dir={tmp_path / 'mistyped'}", check=False))
    assert "no such directory" in line and not (tmp_path / "mistyped").exists()
    (tmp_path / "arch.json").write_text("{}")
    line = one_error_line(run_command("enas-derive", f"run_dir={tmp_path / 'arch.json'}", check=False))
    assert "is a file" in line
    line = one_error_line(run_command("enas-search", "device=gpu", f"hydra.run.dir={tmp_path / 'gpu'}", check=False))
    assert "accepted: auto, cpu, cuda" in line and not (tmp_path / "gpu").exists()
    line = one_error_line(run_command("enas-train", f"arch={tmp_path / 'missing.json'}",
                                      f"hydra.run.dir={tmp_path / 'train'}", check=False))
    assert "missing.json" in line and not (tmp_path / "train").exists()
    (tmp_path / "empty").mkdir()
    line = one_error_line(run_command("enas-train", f"arch={tmp_path / 'empty'}", f"hydra.run.dir={tmp_path / 't2'}",
                                      check=False))
    assert "directory without arch.json" in line
    line = one_error_line(run_command("enas-compare", "strategies=[random,magic]", f"out_dir={tmp_path / 'cmp'}",
                                      check=False))
    assert "unknown magic" in line


@pytest.mark.slow
def test_a_short_run_says_threads_next_steps_and_finished(tmp_path):
    run_dir = tmp_path / "search"
    out = run_command("enas-search", *TINY, "threads=1", "data.bptt=10", f"hydra.run.dir={run_dir}").stdout
    assert "1 CPU threads" in out.splitlines()[0] and "ETA" not in out.splitlines()[0]
    assert "elapsed" in out and (run_dir / "search.log").read_text().count("theta done") == 1
    again = run_command("enas-search", *TINY, "threads=1", "data.bptt=10", f"hydra.run.dir={run_dir}",
                        "resume=true").stdout
    assert "the search is finished (1/1 epochs)" in again and "search.epochs=<more than 1>" in again
    out = run_command("enas-derive", f"run_dir={run_dir}", "experiment=smoke_ptb").stdout
    next_line = [line for line in out.splitlines() if line.startswith("next: ")][0]
    assert next_line == (f"next: enas-train arch={run_dir / 'arch.json'} experiment=smoke_ptb "
                         f"threads=1 data.bptt=10")
    arch = json.loads((run_dir / "arch.json").read_text())
    assert arch["search_data"]["name"] == "ptb"
    train = run_command("enas-train", f"arch={run_dir}", "experiment=smoke_micro", "trainer.epochs=1",
                        f"hydra.run.dir={tmp_path / 'train'}", check=False)
    assert "architecture of space 'rnn_cell'" in train.stderr     # arch=<run dir> found its arch.json


def test_a_search_without_supernet_does_not_report_step_zero():
    from enas.search_loop import SearchLoop, SearchSettings
    loop = SearchLoop.__new__(SearchLoop)             # only the summary formatting is exercised
    loop.supernet, loop.s, loop.task = None, SearchSettings(epochs=3), type("T", (), {"metric": "acc"})()
    text = loop._format_summary({"epoch": 1, "step": 0, "archs_evaluated": 8})
    assert text == "== epoch 1/3 done (8 architectures evaluated)"
    loop.supernet = object()
    summary = {"epoch": 2, "step": 40, "archs_evaluated": 8, "reward_mean": 0.5, "reward_max": 0.6,
               "best_so_far": 0.6, "valid_acc": 0.2734}
    assert loop._format_summary(summary).endswith("valid acc 27.34% of the epoch's best")


def test_an_image_path_of_no_known_layout_lists_the_accepted_ones(tmp_path):
    from enas.data.images import load_images
    (tmp_path / "photos").mkdir()
    with pytest.raises(FileNotFoundError) as e:
        load_images("cifar10", tmp_path / "photos")
    message = str(e.value)
    for layout in ("data_batch_1", "train/<class>/<image>", ".tar.gz", "idx"):
        assert layout in message
