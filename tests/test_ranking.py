"""Ranking statistics, the noise-ceiling verdict, one-shot scoring options and the rank check end to end."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from enas.ranking import (agreement, bn_mode, bootstrap_ci, ceiling_verdict, format_rank_report, format_split_ceilings,
                          kendall_tau, measurements, noise_verdict, one_shot_batches, rank_by_recorded_rewards,
                          rank_report, sample_architectures, spearman_rho, split_ceilings, top_k, top_k_overlap)
from enas.errors import UserError
from enas.strategies import build_strategy
from enas.training import recalibrate_bn
from tests.helpers import compose_config, run_command

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_tau_rho_and_top_k_on_known_orders():
    up, down = list(range(10)), list(range(10, 0, -1))
    assert kendall_tau(up, up) == pytest.approx(1.0) and spearman_rho(up, [2 * x for x in up]) == pytest.approx(1.0)
    assert kendall_tau(up, down) == pytest.approx(-1.0) and spearman_rho(up, down) == pytest.approx(-1.0)
    assert top_k_overlap(up, up) == 1.0 and top_k_overlap(up, down) == 0.0       # top 2 of 10
    # one discordant pair of six: (5 - 1) / 6; ties handled as tau-b
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    assert kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3])) and math.isnan(spearman_rho([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="different lengths"):
        kendall_tau([1, 2], [1])


def test_top_k_size_and_overlap_share():
    assert top_k(10, 0.2) == 2 and top_k(3, 0.2) == 1 and top_k(20, 0.2) == 4
    with pytest.raises(ValueError, match="top fraction"):
        top_k(10, 0.0)
    # best 2 by a: items 9, 8; by b: items 9, 0 -> one of two shared
    a = list(range(10))
    b = [5, 0, 0, 0, 0, 0, 0, 0, 1, 9]
    assert top_k_overlap(a, b) == 0.5


def test_bootstrap_interval_is_seeded_and_holds_the_estimate():
    a = [0.1, 0.25, 0.3, 0.2, 0.5, 0.45, 0.7, 0.6, 0.8, 0.95, 0.9, 0.4]
    b = [0.2, 0.1, 0.35, 0.3, 0.4, 0.6, 0.55, 0.8, 0.7, 0.85, 1.0, 0.3]
    low, high = bootstrap_ci(a, b, kendall_tau, resamples=300, seed=1)
    assert low < kendall_tau(a, b) < high and -1 <= low and high <= 1
    assert (low, high) == bootstrap_ci(a, b, kendall_tau, resamples=300, seed=1)
    assert (low, high) != bootstrap_ci(a, b, kendall_tau, resamples=300, seed=2)
    # identical orders stay identical in every resample
    assert bootstrap_ci(a, a, kendall_tau, resamples=50) == pytest.approx((1.0, 1.0))
    result = agreement(a, b, resamples=100)
    for key in ("kendall_tau", "spearman_rho", "top_k_overlap"):
        low, high = result[f"{key}_ci"]
        assert low <= result[key] <= high
    assert result["n"] == 12 and result["top_k"] == 2


def test_noise_verdict_says_when_the_ground_truth_cannot_judge():
    low = noise_verdict(0.41, 0.3)
    assert "cannot judge the supernet" in low and "0.410" in low and "< 0.6" in low
    high = noise_verdict(0.8, 0.4)
    assert "consistent" in high and "50% of the ceiling" in high and "cannot" not in high
    assert "not measured" in noise_verdict(None) and "not measured" in noise_verdict(math.nan)
    one = {"mean": 0.55, "min": 0.55, "max": 0.55, "splits": 1}
    assert ceiling_verdict(0.7, one) == noise_verdict(0.7) == ceiling_verdict(0.7, None)
    assert "tau 0.550, the mean over 10 splits of the trainings (< 0.6)" in ceiling_verdict(0.7, {**one, "splits": 10})
    assert "cannot judge the search" in noise_verdict(0.1, judged="the search")
    assert "the inherit, 78 steps tau 0.400 is 50% of the ceiling" in noise_verdict(0.8, 0.4, label="inherit, 78 steps")


def test_rank_report_noise_ceiling_and_one_shot_tau():
    truth = [0.5, 0.6, 0.7, 0.8, 0.9, math.nan]           # the last training failed
    shot = [6, 5, 4, 3, 2, 1]                              # the reverse order
    report = rank_report(shot, [truth, truth], resamples=20)
    assert report["archs_used"] == [0, 1, 2, 3, 4]
    assert report["noise_ceiling_tau"] == pytest.approx(1.0) and report["one_shot_tau"] == pytest.approx(-1.0)
    assert set(report["pairs"]) == {"run 1 vs run 2", "one-shot vs run 1", "one-shot vs run 2",
                                    "one-shot vs mean of runs"}
    assert "consistent" in report["verdict"]
    # perplexities: lower is better, so a high one-shot score for a low perplexity agrees
    ppl = rank_report([5, 4, 3, 2, 1], [[50, 60, 70, 80, 90]], higher_is_better=False, resamples=20)
    assert ppl["one_shot_tau"] == pytest.approx(1.0) and ppl["noise_ceiling_tau"] is None
    assert "not measured" in ppl["verdict"]


def test_rank_report_leaves_out_a_failed_estimate():
    truth = [0.5, 0.6, 0.7, 0.8]
    report = rank_report([1, math.nan, 3, 4], [truth, truth], resamples=20)
    assert report["archs_used"] == [0, 2, 3] and report["one_shot_tau"] == pytest.approx(1.0)
    assert report["pairs"]["one-shot vs run 1"]["n"] == 3


def test_measurements_average_groups_of_runs():
    runs = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]
    assert measurements(runs) == (runs, ["run 1", "run 2", "run 3", "run 4"])
    assert measurements(runs, 2) == ([[2.0, 3.0], [6.0, 7.0]], ["mean of runs 1-2", "mean of runs 3-4"])
    with pytest.raises(ValueError, match="groups of 3"):
        measurements(runs, 3)


def test_rank_report_with_averaged_measurements():
    # runs 1-2 and 3-4 disagree one by one, but their means agree with each other and with one-shot
    runs = [[1, 4, 2, 6], [3, 2, 6, 4], [2, 3, 3, 6], [2, 3, 5, 4]]
    shot = [0.1, 0.2, 0.3, 0.4]
    single = rank_report(shot, runs, resamples=10)
    averaged = rank_report(shot, runs, resamples=10, average=2)
    assert single["noise_ceiling_tau"] < 0.5
    assert averaged["noise_ceiling_tau"] == pytest.approx(1.0) and averaged["one_shot_tau"] == pytest.approx(1.0)
    assert "mean of runs 1-2 vs mean of runs 3-4" in averaged["pairs"] and averaged["average"] == 2
    # the seeds split into measurements two other ways: the ceiling over all three splits
    other = [kendall_tau([1.5, 3.5, 2.5, 6], [2.5, 2.5, 5.5, 4]), kendall_tau([1.5, 3.5, 3.5, 5], [2.5, 2.5, 4.5, 5])]
    assert averaged["noise_ceiling_splits"] == {"mean": pytest.approx((1 + sum(other)) / 3), "max": 1.0,
                                                "min": pytest.approx(min(other)), "splits": 3}
    assert single["noise_ceiling_splits"]["splits"] == 6
    assert single["noise_ceiling_splits"]["mean"] == pytest.approx(single["noise_ceiling_tau"])
    # the verdict reads the mean over every split, not the one split the measurements happen to pair
    assert "tau 0.661, the mean over 3 splits of the trainings >= 0.6" in averaged["verdict"]
    strict = rank_report(shot, runs, resamples=10, average=2, floor=0.7)
    assert strict["noise_ceiling_tau"] == pytest.approx(1.0) and "cannot judge" in strict["verdict"]


def test_split_ceilings_needs_two_disjoint_measurements():
    runs = [[1, 2, 3], [1, 3, 2], [2, 1, 3]]
    assert split_ceilings(runs, 2) is None and split_ceilings(runs[:1], 1) is None
    with_failed = [r + [v] for r, v in zip(runs, [0.5, math.nan, 0.1])]     # a 4th arch, one training failed
    assert split_ceilings(with_failed, 1) == split_ceilings(runs, 1)
    three = split_ceilings(runs, 1)
    assert three["splits"] == 3 and three["max"] == pytest.approx(kendall_tau([1, 2, 3], [1, 3, 2]))
    assert format_split_ceilings(three).startswith(" (every split of the trainings into two measurements: mean ")
    assert format_split_ceilings(None) == "" and format_split_ceilings({**three, "splits": 1}) == ""


class _Valid:
    batch_size = 256


class _ImageTask:
    kind = "image"
    splits = {"valid": _Valid()}

    def num_batches(self, split):
        return 8


class _LMTask:
    kind = "lm"


def test_one_shot_batches_cover_the_requested_images():
    assert one_shot_batches(_ImageTask(), 1000) == 4                 # 4 x 256 >= 1000
    assert one_shot_batches(_ImageTask(), 5000) is None              # more than the split: all of it
    assert one_shot_batches(_ImageTask(), None) is None
    assert one_shot_batches(_ImageTask(), 1000, valid_batches=2) == 2
    assert one_shot_batches(_LMTask(), 1000) is None                 # a language model: the whole split
    # enas-rank-check scores on the whole validation split unless told otherwise
    default = compose_config("rank_check", ["run_dir=x"])["one_shot"]
    assert default["valid_images"] is None and default["valid_batches"] is None


def test_bn_mode_of_the_micro_supernet_and_of_running_statistics():
    from enas.spaces import build_space
    supernet = build_space("micro_cnn", num_nodes=2).build_supernet(
        num_classes=10, in_channels=1, image_size=8, channels=4, num_layers=3)
    assert bn_mode(supernet) == "batch"                  # batch statistics: eval mode is right as it is
    with pytest.raises(ValueError, match="nothing to re-estimate"):   # a no-op that would call itself recalibrated
        bn_mode(supernet, "recalibrate")
    tracked = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
    assert bn_mode(tracked) == "recalibrate"
    with pytest.raises(ValueError, match="running statistics"):
        bn_mode(tracked, "batch")
    assert bn_mode(nn.Linear(2, 2)) == "none"


class _BatchTask:
    """Training batches of known mean; `loss` runs the model."""

    def __init__(self, batches):
        self.batches = batches

    def init_state(self, model, split):
        return None

    def train_batches(self, epoch):
        return iter(self.batches)

    def loss(self, model, batch, state, arch=None):
        return model(batch).mean(), None


def test_recalibrate_bn_estimates_running_statistics_on_training_batches():
    torch.manual_seed(0)
    model = nn.Sequential(nn.BatchNorm1d(3))
    model[0].running_mean.fill_(100.0)                   # stale statistics from other architectures
    batches = [torch.randn(16, 3) + 2.0 for _ in range(4)]
    recalibrate_bn(model, _BatchTask(batches), None, batches=3)
    expected = torch.stack([b.mean(0) for b in batches[:3]]).mean(0)
    assert torch.allclose(model[0].running_mean, expected, atol=1e-5)
    assert not model.training and model[0].momentum == 0.1          # eval mode, momentum restored


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


def test_format_rank_report_has_verdict_figures_and_rows():
    report = rank_report([0.9, 0.2, 0.5], [[0.1, 0.3, 0.2], [0.1, 0.25, 0.3]], resamples=10)
    report.update(num_archs=3, metric="acc", higher_is_better=True, stats={"level": 0.95, "top_fraction": 0.2},
                  one_shot={"description": "4 batches"}, ground_truth={"description": "test acc"},
                  rows=[{"genotype": g, "one_shot_score": s, "ground_truth": t, "ground_truth_mean": sum(t) / 2}
                        for g, s, t in [("a", 0.9, [0.1, 0.1]), ("b", 0.2, [0.3, 0.25]), ("c", 0.5, [0.2, 0.3])]])
    md = format_rank_report(report, "Rank check")
    assert md.startswith("# Rank check") and report["verdict"] in md
    assert "| run 1 vs run 2 | 3 |" in md and "Spearman rho" in md
    assert "| 1 | 0.9000 | 3 | 0.1000 / 0.1000 | a |" in md and "| 2 | 0.5000 | 2 | 0.2000 / 0.3000 | c |" in md
    assert "every split" not in md                        # two trainings split one way only
    report["noise_ceiling_splits"] = {"mean": 0.5, "min": 0.25, "max": 0.75, "splits": 3}
    assert "(every split of the trainings into two measurements: mean 0.500, 0.250 ... 0.750, 3 splits)" in \
        format_rank_report(report, "Rank check")


def test_rank_check_ranked_by_loss_orders_by_the_lowest_validation_loss():
    """estimator.rank_by=loss: the report's tau, its table and its plot use the negated validation loss,
    where the scores would say the opposite; an estimate without a loss is refused, a failed one stays nan."""
    from enas import runs
    from enas.ranking import rank_check_plot
    scores = [(0.9, {"acc": 0.9, "loss": 2.0}), (0.2, {"acc": 0.2, "loss": 1.0}), (0.5, {"acc": 0.5, "loss": 1.5})]
    assert runs._ranking(scores, "score") == [0.9, 0.2, 0.5]
    assert runs._ranking(scores, "loss") == [-2.0, -1.0, -1.5]
    assert math.isnan(runs._ranking(scores + [(math.nan, {})], "loss")[3])         # a failed estimate
    with pytest.raises(UserError, match="rank_by=loss: 1 of 2 estimates have no validation loss"):
        runs._ranking([(0.5, {"acc": 0.5}), (0.4, {"acc": 0.4, "loss": 1.0})], "loss")
    estimator = {"name": "inherit", "steps": 20, "lr": None, "repeats": 1, "recalibrate_bn": 20, "rank_by": "loss"}
    assert runs.estimator_label(estimator) == "inherit, 20 steps, BN recalibrated, ranked by loss"
    assert runs.estimator_label({"name": "one_shot", "rank_by": "loss"}) == "one-shot, ranked by loss"
    truth = [[0.1, 0.3, 0.2], [0.1, 0.25, 0.3]]
    report = rank_report(runs._ranking(scores, "loss"), truth, resamples=10, label="one-shot, ranked by loss")
    assert report["one_shot_tau"] == pytest.approx(rank_report([0.9, 0.2, 0.5], truth, resamples=10)["one_shot_tau"]
                                                   * -1)      # the losses order the three the other way round
    report.update(num_archs=3, metric="acc", higher_is_better=True, stats={"level": 0.95, "top_fraction": 0.2},
                  one_shot={"description": "4 batches"},
                  estimator={"rank_by": "loss", "label": "one-shot, ranked by loss"},
                  ground_truth={"description": "test acc", "split": "test", "seeds": [0, 1]},
                  rows=[{"genotype": g, "one_shot_score": s, "one_shot_loss": m["loss"], "ground_truth": t,
                         "ground_truth_mean": sum(t) / 2}
                        for g, (s, m), t in zip("abc", scores, [[0.1, 0.1], [0.3, 0.25], [0.2, 0.3]])])
    md = format_rank_report(report, "Rank check")
    assert "| one-shot, ranked by loss rank | one-shot, ranked by loss loss |" in md
    assert "| 1 | 1.0000 | 1 | 0.3000 / 0.2500 | b |" in md and "| 3 | 2.0000 | 3 | 0.1000 / 0.1000 | a |" in md
    assert rank_check_plot(report).size[0] > 0


@pytest.mark.slow
def test_rank_check_end_to_end(tmp_path):
    run_dir = tmp_path / "search"
    run_command("enas-search", "experiment=smoke_micro", "search.epochs=1", f"hydra.run.dir={run_dir}")
    args = [f"run_dir={run_dir}", "num_archs=3", "ground_truth.engine=inline", "stats.bootstrap=50",
            'ground_truth.overrides=["trainer.steps_per_epoch=3"]']
    out = run_command("enas-rank-check", *args).stdout
    assert "noise-ceiling tau" in out and "Kendall tau" in out
    report = json.loads((run_dir / "rank_check.json").read_text())
    assert report["num_archs"] == 3 and len(report["rows"]) == 3
    assert report["one_shot"]["bn_mode"] == "batch" and report["ground_truth"]["seeds"] == [0, 1]
    assert all(len(r["ground_truth"]) == 2 and 0 <= r["ground_truth"][0] <= 1 for r in report["rows"])
    assert all(r["one_shot_acc"] == r["one_shot_score"] and r["one_shot_loss"] > 0 for r in report["rows"])
    assert report["noise_ceiling_tau"] is None or -1 <= report["noise_ceiling_tau"] <= 1
    assert report["verdict"] in (run_dir / "rank_check.md").read_text()
    assert (run_dir / "rank_check.png").read_bytes()[:8] == PNG_SIGNATURE
    assert len(list((run_dir / "rank_check_runs").glob("arch*/seed*/result.json"))) == 6
    # the same check again reuses the six trainings
    again = run_command("enas-rank-check", *args).stdout
    assert "networks from scratch" not in again and report["rows"] == json.loads(
        (run_dir / "rank_check.json").read_text())["rows"]
    # another estimator, its own report files, the same trainings: 2 steps from the shared weights
    out = run_command("enas-rank-check", *args, "estimator.name=inherit", "estimator.steps=2",
                      "report=rank_check_inherit").stdout
    assert "networks from scratch" not in out and "inherit, 2 steps tau" in out and "the one-shot tau" not in out
    assert "one pass over the training data" not in out
    inherit = json.loads((run_dir / "rank_check_inherit.json").read_text())
    assert inherit["estimator"] == {"name": "inherit", "steps": 2, "lr": None, "repeats": 1, "recalibrate_bn": 0,
                                    "rank_by": "score", "label": "inherit, 2 steps"}
    assert "the supernet's weights, then 2 training steps" in inherit["one_shot"]["description"]
    assert inherit["one_shot"]["seconds"] > 0 and " s for all)" in (run_dir / "rank_check_inherit.md").read_text()
    assert [r["ground_truth"] for r in inherit["rows"]] == [r["ground_truth"] for r in report["rows"]]
    assert all(0 <= r["one_shot_score"] <= 1 and r["one_shot_acc"] == r["one_shot_score"] and r["one_shot_loss"] > 0
               for r in inherit["rows"])              # the trained estimate's validation metrics are kept
    assert "![scatter](rank_check_inherit.png)" in (run_dir / "rank_check_inherit.md").read_text()
    assert (run_dir / "rank_check_inherit.png").read_bytes()[:8] == PNG_SIGNATURE
    assert json.loads((run_dir / "rank_check.json").read_text())["rows"] == report["rows"]   # untouched
    # the one-shot estimates ranked by their validation loss: the same rows, tau of the negated losses
    out = run_command("enas-rank-check", *args, "estimator.rank_by=loss", "report=rank_check_loss").stdout
    by_loss = json.loads((run_dir / "rank_check_loss.json").read_text())
    assert "networks from scratch" not in out and "one-shot, ranked by loss tau" in out
    assert by_loss["rows"] == report["rows"] and by_loss["estimator"]["rank_by"] == "loss"
    runs = [[r["ground_truth"][seed] for r in report["rows"]] for seed in (0, 1)]
    expected = rank_report([-r["one_shot_loss"] for r in report["rows"]], runs, resamples=10)["one_shot_tau"]
    assert by_loss["one_shot_tau"] == pytest.approx(expected, nan_ok=True)


def test_trained_estimators_are_the_search_evaluators_on_the_ground_truth_recipe(monkeypatch):
    """inherit / standalone scores come from the evaluator of that name, built with the recipe the
    ground truth trains with, k steps, the one-shot validation batches, nan for a failed child."""
    from enas import runs
    built = {}

    class FakeEvaluator:
        def scored(self, archs):
            return [(0.25, {"acc": 0.25}), (math.nan, None)][:len(archs)]

        def close(self):
            built["closed"] = True

    def fake_build_evaluator(cfg, task, space, supernet, sizes, run_dir, device, options):
        built.update(name=cfg["evaluator"]["name"], trainer=cfg["trainer"], sizes=sizes, supernet=supernet,
                     run_dir=run_dir, options=options)
        return FakeEvaluator()

    monkeypatch.setattr(runs, "build_evaluator", fake_build_evaluator)
    loop = type("Loop", (), {"task": "task", "space": "space", "supernet": "supernet",
                             "metadata": {"sizes": {"channels": 4}}})()
    config = {"seed": 3, "data": {"split_seed": 0},
              "trainer": {"epochs": 3, "optim": {"lr": 0.05, "schedule": "cosine"}}}
    estimator = {"name": "inherit", "steps": 7, "lr": None}
    scores = runs._trained_estimates(estimator, config, loop, ["a", "b"], 4, {"workers": 2, "engine": "inline"},
                                     "cpu")
    assert scores[0] == (0.25, {"acc": 0.25}) and math.isnan(scores[1][0]) and scores[1][1] == {} and built["closed"]
    assert built["name"] == "inherit" and built["trainer"] is config["trainer"] and built["supernet"] == "supernet"
    assert built["sizes"] == {"channels": 4} and built["run_dir"] is None
    options = built["options"]
    assert (options["epochs"], options["steps_per_epoch"], options["lr"], options["valid_batches"]) == (1, 7, None, 4)
    assert math.isnan(options["failure_reward"]) and options["journal"] is None and options["seed"] == 3
    assert options["recalibrate_bn"] == 0
    assert (options["workers"], options["engine"]) == (2, "inline")
    task = type("Task", (), {"num_train_batches": 5})()
    assert runs._one_pass(4, {**config, "data": {"batch_size": 8}}, task) == 4
    assert runs._one_pass(9, {**config, "data": {"batch_size": 8}}, task) == 5      # with a warning
    assert runs._one_pass(9, {"trainer": {"batch_size": 16}, "data": {"batch_size": 8}}, task) == 9
    assert runs.estimator_description(estimator, config) == (
        "inherit: the supernet's weights, then 7 training steps of the ground-truth recipe (lr 0.05, cosine)")
    assert runs.estimator_description({"name": "standalone", "steps": 7, "lr": 0.01}, config).startswith(
        "standalone: a fresh initialisation, then 7 training steps of the ground-truth recipe (lr 0.01")


def test_repeated_trained_estimates_average_differently_seeded_trainings(monkeypatch):
    """estimator.repeats=k: k evaluators seeded search seed + 0 .. k-1, the mean per architecture."""
    from enas import runs
    seeds = []

    def fake_trained_scores(config, loop, name, archs, options, device):
        seeds.append(options["seed"])
        by_seed = {5: [0.2, 0.4, math.nan], 6: [0.4, 0.4, 0.5], 7: [0.6, 0.1, 0.5]}
        return [(r, None if r != r else {"acc": r, "loss": 1 - r}) for r in by_seed[options["seed"]]]

    monkeypatch.setattr(runs, "trained_scores", fake_trained_scores)
    estimator = {"name": "inherit", "steps": 20, "lr": None, "repeats": 3}
    scores = runs._trained_estimates(estimator, {"seed": 5, "data": {"split_seed": None}}, None, ["a", "b", "c"], 4,
                                     {"workers": 1, "engine": "inline"}, "cpu")
    assert seeds == [5, 6, 7]
    assert [round(s, 6) for s, _ in scores[:2]] == [0.4, 0.3] and math.isnan(scores[2][0])   # a failure: nan
    assert {k: round(v, 6) for k, v in scores[1][1].items()} == {"acc": 0.3, "loss": 0.7}     # mean metrics
    assert scores[2][1] == {}                                     # a failed training: no metrics to average
    assert runs.estimator_label(estimator) == "inherit, 20 steps, mean of 3"
    assert runs.estimator_label({**estimator, "repeats": 1}) == "inherit, 20 steps"
    assert runs.estimator_label({**estimator, "recalibrate_bn": 10}) == "inherit, 20 steps, BN recalibrated, mean of 3"
    config = {"trainer": {"optim": {"lr": 0.05, "schedule": "cosine"}}}
    assert runs.estimator_description(estimator, config).endswith(
        "(lr 0.05, cosine), the mean of 3 such trainings with other seeds")
    assert runs.estimator_description({**estimator, "repeats": 1, "recalibrate_bn": 10}, config).endswith(
        "(lr 0.05, cosine), BN statistics re-estimated on 10 training batches")
