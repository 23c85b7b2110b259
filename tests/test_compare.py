"""enas-compare: aggregation and table formats (fast), and one end-to-end run with a resume (slow)."""

import csv
import io
import math
import shutil

import pytest

from enas.cli.compare import archs_scored, best_reward, check_lists, forwarded_overrides, one_line
from enas.compare import (RUN_COLUMNS, aggregate, failed_row, format_csv, format_markdown, format_mean_std,
                          mean_std, run_row)
from enas.utils import UserError
from tests.helpers import run_command


def _rows():
    return [
        run_row("random", 0, metric="acc", best_reward=0.5, derived_score=0.4, final_valid=0.6, final_test=0.7,
                archs_scored=12, search_seconds=10.0, total_seconds=20.0),
        run_row("random", 1, metric="acc", best_reward=0.7, derived_score=0.6, final_valid=0.8, final_test=0.9,
                archs_scored=12, search_seconds=14.0, total_seconds=24.0),
        failed_row("grid", 0, "grid strategy: the grid has 506250000 architectures\nsecond line", total_seconds=1.0),
        run_row("tpe", 0, metric="acc", best_reward=0.25, derived_score=0.2, final_valid=0.3, final_test=0.35,
                archs_scored=12, search_seconds=11.0, total_seconds=21.0),
        failed_row("tpe", 1, "RuntimeError: boom", best_reward=0.9, search_seconds=3.0),
    ]


def test_run_rows_have_every_column_and_reject_unknown_ones():
    row = run_row("random", 3, best_reward=0.5)
    assert list(row) == list(RUN_COLUMNS) and row["status"] == "ok" and row["final_test"] is None
    failed = failed_row("grid", 0, "first line\nsecond line", search_seconds=2.0)
    assert failed["status"] == "failed" and failed["error"] == "first line" and failed["search_seconds"] == 2.0
    with pytest.raises(ValueError, match="bogus"):
        run_row("random", 0, bogus=1)


def test_mean_std_over_seeds():
    mean, std = mean_std([0.5, 0.7])
    assert mean == pytest.approx(0.6) and std == pytest.approx(math.sqrt(0.02))  # sample std
    assert mean_std([0.5]) == (0.5, None)
    assert mean_std([None, float("nan")]) == (None, None)
    assert format_mean_std(0.6, 0.1414, 3) == "0.600 ± 0.141"
    assert format_mean_std(0.5, None, 2) == "0.50" and format_mean_std(None, None, 2) == "-"


def test_aggregate_per_strategy_keeps_failures():
    summaries = aggregate(_rows())
    assert [s["strategy"] for s in summaries] == ["random", "grid", "tpe"]
    random, grid, tpe = summaries
    assert (random["runs"], random["ok"], random["failed"], random["error"]) == (2, 2, 0, None)
    assert random["final_test_mean"] == pytest.approx(0.8)
    assert random["best_reward_std"] == pytest.approx(math.sqrt(0.02))
    assert (grid["ok"], grid["failed"]) == (0, 1) and grid["final_test_mean"] is None
    assert grid["error"].startswith("grid strategy: the grid has 506250000")
    # only successful runs are averaged: tpe's failed run (best_reward 0.9) is left out
    assert (tpe["ok"], tpe["failed"]) == (1, 1)
    assert tpe["best_reward_mean"] == 0.25 and tpe["best_reward_std"] is None


def test_markdown_has_summary_and_per_run_rows():
    text = format_markdown(_rows(), "Strategy comparison")
    lines = text.splitlines()
    assert lines[0] == "# Strategy comparison"
    header = next(line for line in lines if line.startswith("| strategy | runs ok"))
    assert "final TEST acc" in header and "best one-shot reward" in header
    table_rows = [line for line in lines if line.startswith("| ") and "---" not in line]
    assert len(table_rows) == 2 + 3 + 5  # two headers, 3 strategies, 5 runs
    random_summary = next(line for line in lines if line.startswith("| random | 2/2"))
    assert "0.8000 ± 0.1414" in random_summary and "12 ± 0" in random_summary
    assert any(line.startswith("| grid | 0/1 | -") for line in lines)
    failed_run = next(line for line in lines if line.startswith("| grid | 0 | failed"))
    assert failed_run.endswith("| grid strategy: the grid has 506250000 architectures |")
    # every line of a table has as many cells as its header
    summary_part, runs_part = text.split("## Runs")
    for part, rows in ((summary_part, 3), (runs_part, 5)):
        table = [line for line in part.splitlines() if line.startswith("|")]
        assert len(table) == 2 + rows and len({line.count("|") for line in table}) == 1


def test_markdown_escapes_pipes_in_errors():
    text = format_markdown([failed_row("x", 0, "a | b")])
    assert "a \\| b" in text


def test_csv_round_trips_per_run_rows():
    text = format_csv(_rows())
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert list(parsed[0]) == list(RUN_COLUMNS) and len(parsed) == 5
    assert parsed[0]["strategy"] == "random" and float(parsed[1]["final_test"]) == 0.9
    assert parsed[2]["status"] == "failed" and parsed[2]["final_test"] == ""
    assert parsed[2]["error"].startswith("grid strategy")


def test_forwarded_overrides_drop_compare_keys_and_per_run_keys():
    task = ["experiment=smoke_micro", "strategies=[random,tpe]", "seeds=[0,1]", "out_dir=/tmp/x",
            "search.epochs=3", "strategy=tpe", "seed=4", "+trainer.foo=1", "overrides=[a=1]"]
    assert forwarded_overrides(task, ["derive.num_samples=3"]) == [
        "experiment=smoke_micro", "search.epochs=3", "+trainer.foo=1", "derive.num_samples=3"]


def test_check_lists_rejects_bad_values():
    check_lists(["random", "tpe"], [0, 1])
    for strategies, seeds, field in [([], [0], "strategies"), ("random", [0], "strategies"),
                                     (["random"], ["a"], "seeds"), (["random"], [], "seeds"),
                                     (["random", "random"], [0], "duplicates")]:
        with pytest.raises(UserError, match=field):
            check_lists(strategies, seeds)


def test_archs_scored_and_best_reward_from_checkpoint_state():
    state = {"history": [{}, {}], "position": {"theta_done": True}, "best_so_far": 0.4,
             "best": [{"choices": [], "reward": 0.3}]}
    assert archs_scored(state, {"strategy_steps": 3, "archs_per_step": 2}) == 18
    assert best_reward(state) == 0.4
    assert best_reward({**state, "best_so_far": float("-inf")}) == 0.3
    assert best_reward({"best_so_far": float("-inf"), "best": []}) is None


def test_an_interrupted_comparison_says_how_to_continue(tmp_path, monkeypatch, caplog):
    from enas.cli import compare

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(compare, "run_one", interrupted)
    with caplog.at_level("INFO", logger="enas"), pytest.raises(KeyboardInterrupt):
        compare.run_compare(["random"], [0], str(tmp_path), [])
    assert "continue with the same command line plus resume=true" in caplog.text


def test_one_line_names_unexpected_error_types():
    assert one_line(ValueError("bad value\nmore")) == "bad value"
    assert one_line(RuntimeError("boom")) == "RuntimeError: boom"
    assert one_line(KeyError("x")) == "KeyError: 'x'"


@pytest.mark.slow
def test_enas_compare_end_to_end_and_resumed(tmp_path):
    out_dir = tmp_path / "cmp"
    command = ["experiment=smoke_micro", "strategies=[random,evolution]", "seeds=[0]", f"out_dir={out_dir}",
               "search.epochs=1"]
    out = run_command("enas-compare", *command).stdout
    assert f"tensorboard --logdir {out_dir}" in out
    parsed = list(csv.DictReader(io.StringIO((out_dir / "comparison.csv").read_text())))
    assert [(r["strategy"], r["seed"], r["status"]) for r in parsed] == [("random", "0", "ok"), ("evolution", "0", "ok")]
    for row in parsed:
        assert 0.0 <= float(row["final_test"]) <= 1.0 and row["metric"] == "acc" and row["resumed"] == "False"
        assert int(row["archs_scored"]) == 6  # 1 epoch x strategy_steps 3 x archs_per_step 2
        assert float(row["total_seconds"]) >= float(row["search_seconds"]) > 0
    markdown = (out_dir / "comparison.md").read_text()
    assert "| random | 1/1 |" in markdown and "| evolution | 0 | ok |" in markdown
    for run in ("random-seed0", "evolution-seed0"):
        assert list((out_dir / run / "search" / "tb").glob("events.out.tfevents.*"))
        assert list((out_dir / run / "train" / "tb").glob("events.out.tfevents.*"))
        assert (out_dir / run / "search" / "arch.json").exists()
    # a second comparison into the same out_dir is refused before any run starts
    again = run_command("enas-compare", "experiment=smoke_micro", "strategies=[random]", "seeds=[0]",
                        f"out_dir={out_dir}", check=False)
    assert again.returncode == 2 and "already holds random-seed0" in again.stderr
    assert "Traceback" not in again.stderr

    # resume=true, as if killed: random-seed0 after its search (no training yet), evolution-seed0
    # during its training
    before = {r["strategy"]: r for r in parsed}
    shutil.rmtree(out_dir / "random-seed0" / "train")
    (out_dir / "evolution-seed0" / "train" / "result.json").unlink()
    for run in ("random-seed0", "evolution-seed0"):
        (out_dir / run / "row.json").unlink()
    # another command line is refused before anything runs
    other = run_command("enas-compare", *command, "search.strategy_steps=2", "resume=true", check=False)
    assert other.returncode == 2 and "random-seed0 was started with the overrides" in other.stderr
    run_command("enas-compare", *command, "resume=true")
    after = {r["strategy"]: r for r in csv.DictReader(io.StringIO((out_dir / "comparison.csv").read_text()))}
    for strategy in ("random", "evolution"):
        assert after[strategy]["status"] == "ok" and after[strategy]["resumed"] == "True"
        for key in ("best_reward", "derived_score", "final_valid", "final_test", "archs_scored"):
            assert after[strategy][key] == before[strategy][key], (strategy, key)
    assert "ok (resumed)" in (out_dir / "comparison.md").read_text()
    # a finished run is kept as it was: its row.json is read back, nothing runs again
    kept_out = run_command("enas-compare", *command, "resume=true").stdout
    assert kept_out.count("finished earlier, kept") == 2
    kept = {r["strategy"]: r for r in csv.DictReader(io.StringIO((out_dir / "comparison.csv").read_text()))}
    assert kept == after
