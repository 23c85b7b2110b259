"""Kendall's tau, ranking by recorded rewards, and the rank check end to end."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

from enas.ranking import format_rank_table, kendall_tau, rank_by_recorded_rewards, sample_architectures
from enas.strategies import build_strategy

BIN = Path(sys.executable).parent


def test_kendall_tau_known_cases():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    # one discordant pair of six: (5 - 1) / 6
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    # a tie in a: 2 concordant, tau_b = 2 / sqrt((3 - 1) * 3)
    assert kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))
    # ties on both sides: pairs (0,1) tie a, (2,3) tie b; C = 4, D = 0 -> 4 / sqrt(5 * 5)
    assert kendall_tau([1, 1, 2, 3], [1, 2, 3, 3]) == pytest.approx(4 / 5)
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="different lengths"):
        kendall_tau([1, 2], [1])


def test_kendall_tau_matches_scipy_on_random_data():
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(0)
    for _ in range(20):
        n = rng.randint(2, 30)
        a = [rng.randint(0, 5) for _ in range(n)]          # many ties
        b = [rng.random() if rng.random() < 0.7 else 0.5 for _ in range(n)]
        expected = stats.kendalltau(a, b).statistic
        got = kendall_tau(a, b)
        assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


class PPLTask:
    metric = "ppl"

    def metric_of_score(self, score):
        return 80.0 / score


def test_rank_by_recorded_rewards(toy_space):
    strategy = build_strategy("random", toy_space, seed=0)
    archs = strategy.ask(4)
    strategy.tell(archs, [0.5, 2.0, 1.0, 0.25])
    ranked = rank_by_recorded_rewards(strategy, 3, PPLTask())
    assert [score for _, _, score in ranked] == [2.0, 1.0, 0.5]
    assert ranked[0][0] == archs[1] and ranked[0][1] == {"reward": 2.0, "ppl": 40.0}
    assert rank_by_recorded_rewards(strategy, 1)[0][1] == {"reward": 2.0}


def test_sample_architectures_is_seeded_and_distinct(toy_space):
    a = sample_architectures(toy_space, 10, 3)
    assert a == sample_architectures(toy_space, 10, 3)
    assert len({x.key() for x in a}) == 10


def test_format_rank_table():
    report = {"num_archs": 2, "kendall_tau": -1.0, "rows": [
        {"genotype": "a", "one_shot_score": 0.9, "standalone_reward": 0.1},
        {"genotype": "b", "one_shot_score": 0.2, "standalone_reward": 0.3}]}
    md = format_rank_table(report, markdown=True)
    assert "| 1 | 0.9000 | 2 | 0.1000 | a |" in md and "-1.000" in md


def run(cmd, cwd):
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, f"{cmd}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.slow
def test_rank_check_end_to_end(tmp_path):
    run_dir = tmp_path / "search"
    run([str(BIN / "enas-search"), "experiment=smoke_ptb", "search.epochs=1", "search.omega_steps=4",
         "search.strategy_steps=1", f"hydra.run.dir={run_dir}"], tmp_path)
    out = run([str(BIN / "enas-rank-check"), f"run_dir={run_dir}", "num_archs=3", "standalone.steps_per_epoch=2",
               "standalone.valid_batches=2", "standalone.workers=2"], tmp_path)
    assert "Kendall's tau" in out
    report = json.loads((run_dir / "rank_check.json").read_text())
    assert report["num_archs"] == 3 and len(report["rows"]) == 3
    assert -1.0 <= report["kendall_tau"] <= 1.0
    assert all(r["standalone_reward"] > 0 for r in report["rows"])
    assert "Kendall" in (run_dir / "rank_check.md").read_text()
