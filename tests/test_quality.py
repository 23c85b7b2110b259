"""Ground-truth training jobs, percentiles, the beats-random report and its plots; one end-to-end run."""

from __future__ import annotations

import csv
import io
import json
import logging
import math

import pytest
from PIL import Image
import torch

from enas.parallel import build_engine
from enas.plots import Panel, nice_ticks, save_image, scatter_panels
from enas.quality import (beats_random_csv, beats_random_plot, beats_random_report, format_beats_random,
                          ground_truth_jobs, noise_ceiling, percentile, train_architectures, values_by_seed)
from enas.ranking import kendall_tau, rank_check_plot, rank_report, sample_architectures
from tests.helpers import run_command

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_percentile_counts_ties_half_and_respects_the_metric_direction():
    assert percentile(3, [1, 2, 3, 4]) == 62.5
    assert percentile(5, [1, 2, 3, 4]) == 100.0 and percentile(0, [1, 2, 3, 4]) == 0.0
    assert percentile(2.5, [1, 2, 3, 4, math.nan]) == 50.0                  # nan entries are ignored
    # perplexity: lower is better, so 10 beats both
    assert percentile(10, [20, 30], higher_is_better=False) == 100.0
    assert percentile(25, [20, 30], higher_is_better=False) == 50.0
    assert math.isnan(percentile(math.nan, [1, 2])) and math.isnan(percentile(1, []))


def _report():
    pool = [[0.70, 0.72, 0.74, 0.76, 0.78], [0.71, 0.73, 0.75, 0.77, 0.79]]      # seed 0, seed 1
    derived = [{"strategy": "reinforce", "seed": 0, "status": "ok", "value": 0.80, "error": None},
               {"strategy": "reinforce", "seed": 1, "status": "ok", "value": 0.745, "error": None},
               {"strategy": "random", "seed": 0, "status": "failed", "value": None, "error": "boom"}]
    return beats_random_report(derived, pool, [0, 1], "acc", higher_is_better=True)


def test_beats_random_report_percentiles_per_run_and_strategy():
    report = _report()
    first, second, failed = report["runs"]
    assert first["percentiles"] == [100.0, 100.0] and first["percentile"] == 100.0
    assert second["percentiles"] == [60.0, 40.0] and second["percentile"] == 50.0
    assert math.isnan(failed["percentile"])
    reinforce, random = report["strategies"]
    assert (reinforce["ok"], reinforce["runs"], reinforce["at_target"]) == (2, 2, 1)
    assert reinforce["percentile_mean"] == 75.0 and reinforce["percentile_std"] == pytest.approx(math.sqrt(1250))
    assert (random["ok"], random["percentile_mean"]) == (0, None)
    assert report["noise_ceiling_tau"] == pytest.approx(1.0) and "consistent" in report["verdict"]
    assert report["random"]["median"] == pytest.approx(0.745) and report["random"]["best"] == 0.79


def test_beats_random_report_compares_measurements_of_the_same_size():
    pool = [[0.1, 0.5, 0.3], [0.3, 0.3, 0.3], [0.2, 0.4, 0.6], [0.2, 0.4, 0.6]]   # 4 seeds, 3 archs
    derived = [{"strategy": "reinforce", "seed": 0, "status": "ok", "value": 0.45, "error": None}]
    report = beats_random_report(derived, pool, [0, 1, 2, 3], "acc", True, average=2)
    assert report["random"]["measurements"] == [[0.2, 0.4, 0.3], [0.2, 0.4, 0.6]]
    assert report["noise_ceiling_splits"]["splits"] == 3          # seeds 0+1 / 2+3, 0+2 / 1+3, 0+3 / 1+2
    assert "3 splits)" in format_beats_random(report, "t")
    assert report["runs"][0]["percentiles"] == [100.0, pytest.approx(200 / 3)]
    assert report["noise_ceiling_tau"] == pytest.approx(kendall_tau([0.2, 0.4, 0.3], [0.2, 0.4, 0.6]))
    assert "mean of 2 trainings" in format_beats_random(report, "t")
    mean = report["noise_ceiling_splits"]["mean"]        # the verdict reads the mean over the 3 splits
    assert f"tau {mean:.3f}, the mean over 3 splits of the trainings" in report["verdict"]


def test_noise_ceiling_skips_failed_trainings():
    assert noise_ceiling([[1, 2, 3, math.nan], [1, 2, 3, 0]]) == pytest.approx(1.0)
    assert noise_ceiling([[1, 2, 3], [3, 2, 1]]) == pytest.approx(-1.0)
    assert noise_ceiling([[1, 2]]) is None


def test_beats_random_markdown_and_csv():
    report = _report()
    md = format_beats_random(report, "Beats random", "micro_cnn on digits")
    assert "| reinforce | 2/2 | 75.0 ± 35.4 | 50.0 | 100.0 | 1/2 |" in md
    assert "| random | 0 | failed | - | - | - / - | boom |" in md and report["verdict"] in md
    random_results = [{"index": i, "seed": s, "run_dir": f"r/{i}/{s}", "test": {"acc": v}, "seconds": 1.0}
                      for s, row in enumerate(report["random"]["values"]) for i, v in enumerate(row)]
    random_results[0] = {"index": 0, "seed": 0, "run_dir": "r/0/0", "error": "RuntimeError: x"}
    rows = list(csv.DictReader(io.StringIO(beats_random_csv(report, random_results, "test"))))
    assert len(rows) == 10 + 3 and rows[0]["status"] == "failed" and rows[1]["value"] == "0.72"
    assert rows[10]["kind"] == "derived" and float(rows[10]["percentile"]) == 100.0 and rows[12]["percentile"] == ""


def _check_png(path, min_size=(200, 150)):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.size[0] >= min_size[0] and image.size[1] >= min_size[1]


def test_plots_are_valid_pngs(tmp_path):
    save_image(beats_random_plot(_report(), "test"), tmp_path / "beats.png")
    _check_png(tmp_path / "beats.png")
    report = rank_report([0.9, 0.2, 0.5, 0.4], [[0.1, 0.3, 0.2, 0.25], [0.1, 0.25, 0.3, 0.2]], resamples=10)
    report.update(num_archs=4, metric="acc", ground_truth={"split": "test", "seeds": [0, 1]},
                  rows=[{"one_shot_score": s, "ground_truth": [a, b], "ground_truth_mean": (a + b) / 2}
                        for s, a, b in [(0.9, 0.1, 0.1), (0.2, 0.3, 0.25), (0.5, 0.2, 0.3), (0.4, 0.25, 0.2)]])
    image = rank_check_plot(report)
    assert image.size == (840, 370)                              # two panels side by side, a title above
    save_image(image, tmp_path / "rank.png")
    _check_png(tmp_path / "rank.png")
    # nothing finite to draw is still a picture (empty axes), not an error
    save_image(scatter_panels([Panel([math.nan], [1.0], "x", "y")]), tmp_path / "empty.png")
    _check_png(tmp_path / "empty.png")


def test_nice_ticks_cover_the_range_with_round_steps():
    assert nice_ticks(0.0, 1.0) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert nice_ticks(0.62, 0.81) == [0.65, 0.7, 0.75, 0.8]
    assert nice_ticks(2.0, 2.0) == [2.0]


def test_ground_truth_jobs_reuse_resume_and_refuse(tmp_path):
    from enas.spaces import build_space
    space = build_space("micro_cnn", num_nodes=2)
    archs = sample_architectures(space, 2, 0)
    config = {"data": {"name": "digits"}, "seed": 9, "device": "cpu"}
    jobs = ground_truth_jobs(config, space, archs, [0, 1], str(tmp_path))
    assert [(j["index"], j["seed"], j["done"]) for j in jobs] == [(0, 0, False), (0, 1, False), (1, 0, False),
                                                                   (1, 1, False)]
    assert jobs[1]["config"]["seed"] == 1 and jobs[1]["config"]["resume"] is False
    arch_file = json.loads(open(jobs[0]["config"]["arch"]).read())
    assert arch_file["choices"] == list(archs[0].choices)
    result = {"valid": {"acc": 0.5}, "test": {"acc": 0.4}}
    (tmp_path / jobs[0]["run_dir"] / "result.json").write_text(json.dumps(result))
    (tmp_path / jobs[1]["run_dir"] / "checkpoint.pt").write_bytes(b"")
    again = ground_truth_jobs(config, space, archs, [0, 1], str(tmp_path))
    assert again[0]["done"] and not again[1]["done"] and again[1]["config"]["resume"] is True
    # the search sections do not change a training from scratch: another search setting reuses the run
    other_search = {**config, "search": {"warmup_epochs": 2}, "controller": {"lr": 0.1}, "strategy": {"name": "x"}}
    assert ground_truth_jobs(other_search, space, archs, [0], str(tmp_path))[0]["done"]
    with pytest.raises(ValueError, match="another config"):
        ground_truth_jobs({**config, "data": {"name": "fashion_mnist"}}, space, archs, [0], str(tmp_path))
    with pytest.raises(ValueError, match="another config"):
        ground_truth_jobs({**config, "trainer": {"epochs": 5}}, space, archs, [0], str(tmp_path))
    # nor does a supernet size that the trained network's sizes override
    pinned = {**config, "space": {"name": "micro_cnn", "sizes": {"sep_conv_stack": 2}},
              "trainer": {"sizes": {"sep_conv_stack": 1}}}
    fresh = tmp_path / "pinned"
    first = ground_truth_jobs(pinned, space, archs, [0], str(fresh))[0]
    (fresh / first["run_dir"] / "result.json").write_text(json.dumps(result))
    other_supernet = {**pinned, "space": {"name": "micro_cnn", "sizes": {"sep_conv_stack": 1}}}
    assert ground_truth_jobs(other_supernet, space, archs, [0], str(fresh))[0]["done"]
    said_by_the_space = {**pinned, "trainer": {}, "space": {"name": "micro_cnn", "sizes": {"sep_conv_stack": 1}}}
    assert ground_truth_jobs(said_by_the_space, space, archs, [0], str(fresh))[0]["done"]
    # a pool reached through a symbolic link is the same pool
    (tmp_path / "linked").symlink_to(fresh, target_is_directory=True)
    assert ground_truth_jobs(pinned, space, archs, [0], str(tmp_path / "linked"))[0]["done"]


def fake_train(job: dict) -> dict:
    """A stand-in for the enas-train job: accuracy from the job's index and seed; index 1 fails."""
    if job["index"] == 1:
        raise RuntimeError("diverged\nsecond line")
    value = 0.5 + 0.1 * job["index"] + 0.01 * job["seed"]
    return {"valid": {"acc": value}, "test": {"acc": value}, "params": 10, "seconds": 0.1}


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "enas.quality"]


def test_train_architectures_keeps_order_and_records_failures(caplog):
    caplog.set_level(logging.INFO, logger="enas")
    jobs = [{"index": i, "seed": s, "run_dir": f"d{i}{s}", "done": False} for i in range(3) for s in (0, 1)]
    results = train_architectures(fake_train, jobs, build_engine("inline", 1))
    lines = _lines(caplog)
    assert [(r["index"], r["seed"]) for r in results] == [(j["index"], j["seed"]) for j in jobs]
    assert results[2]["error"] == "RuntimeError: diverged" and "error" not in results[0]
    assert any("FAILED" in line for line in lines) and lines[0].startswith("training 6 networks")
    table = values_by_seed(results, [0, 1], 3, "test", "acc")
    assert table[0][0] == 0.5 and table[1][2] == pytest.approx(0.71) and math.isnan(table[0][1])


@pytest.mark.slow
def test_beats_random_end_to_end(tmp_path):
    out_dir = tmp_path / "br"
    out = run_command("enas-beats-random", "experiment=smoke_micro", "strategies=[random]", "seeds=[0]",
                      "num_random=3", "workers=2", "search.epochs=1", "trainer.steps_per_epoch=3",
                      f"out_dir={out_dir}").stdout
    assert "Percentile of the derived architecture" in out
    report = json.loads((out_dir / "beats_random.json").read_text())
    assert report["random"]["num_archs"] == 3 and len(report["random"]["values"]) == 2
    (run,) = report["runs"]
    assert run["status"] == "ok" and 0 <= run["percentile"] <= 100
    # the derived architecture was trained as the random ones were (train seed 0, same recipe)
    (trained,) = (out_dir / "derived" / "random-seed0").glob("arch000-*/seed0/result.json")
    assert json.loads(trained.read_text())["test"]["acc"] == run["value"]
    assert (out_dir / "random-seed0" / "train" / "result.json").exists()          # enas-compare's own run
    rows = list(csv.DictReader(io.StringIO((out_dir / "beats_random.csv").read_text())))
    assert [r["kind"] for r in rows] == ["random"] * 6 + ["derived"]
    assert all(float(r["value"]) >= 0 for r in rows)
    _check_png(out_dir / "beats_random.png")
    assert (out_dir / "comparison.md").exists() and list((out_dir / "tb").glob("events.out.tfevents.*"))


def test_ground_truth_overrides_change_only_the_named_keys():
    from enas.cli.harness import check_seeds, check_split, with_overrides
    from enas.utils import UserError
    config = {"trainer": {"epochs": 2, "optim": {"lr": 0.05}}, "seed": 0}
    changed = with_overrides(config, ["trainer.epochs=3", "trainer.optim.lr=0.1"], "ground_truth.overrides")
    assert changed == {"trainer": {"epochs": 3, "optim": {"lr": 0.1}}, "seed": 0} and config["trainer"]["epochs"] == 2
    with pytest.raises(UserError, match="key=value"):
        with_overrides(config, ["trainer.epochs"], "ground_truth.overrides")
    with pytest.raises(UserError, match="valid or test"):
        check_split("train")
    assert check_seeds([0, 1], "ground_truth.seeds") == [0, 1]
    for bad in ([0, 0], [], "0,1", [True]):
        with pytest.raises(UserError, match="distinct integer seeds"):
            check_seeds(bad, "ground_truth.seeds")


def test_harness_commands_check_their_options_before_training(tmp_path):
    from enas.build import with_changes
    from enas.cli import beats_random, rank_check
    from enas.utils import UserError
    config = {"trainer": {"epochs": 2, "sizes": {"channels": 4}}, "seed": 0}
    assert with_changes(config, {"trainer": {"sizes": {"channels": 8}}, "data": {"split_seed": 1}}) == {
        "trainer": {"epochs": 2, "sizes": {"channels": 8}}, "seed": 0, "data": {"split_seed": 1}}
    assert config["trainer"]["sizes"] == {"channels": 4}
    cfg = {"num_archs": 3, "one_shot": {"bn": "auto"}, "stats": {"top_fraction": 0.2, "level": 0.95},
           "report": "rank_check", "estimator": {"name": "one_shot", "steps": 0, "lr": None, "repeats": 1,
                                                         "recalibrate_bn": 0, "rank_by": "score"},
           "ground_truth": {"seeds": [0, 1], "average": 1, "split": "test", "engine": "inline", "workers": 1,
                            "overrides": ["trainer.epochs=3"]}}
    assert rank_check.check_options(cfg) == {"trainer": {"epochs": 3}}
    for key, value, error in [("average", 3, "divides the 2 seeds"), ("engine", "threads", "choose one of"),
                              ("workers", 0, "positive number of workers"), ("split", "train", "valid or test")]:
        with pytest.raises(UserError, match=error):
            rank_check.check_options({**cfg, "ground_truth": {**cfg["ground_truth"], key: value}})
    with pytest.raises(UserError, match="at least 2"):
        rank_check.check_options({**cfg, "num_archs": 1})
    rank_check.check_options({**cfg, "estimator": {"name": "inherit", "steps": 5, "lr": 0.01, "repeats": 2,
                                                   "recalibrate_bn": 10, "rank_by": "loss"}})
    for estimator, error in [({"name": "proxy"}, "choose one_shot, inherit or standalone"),
                             ({"steps": 3}, "train them first with estimator.name=inherit"),
                             ({"name": "standalone"}, "give estimator.steps >= 1"),
                             ({"name": "inherit", "steps": 2, "lr": 0.0}, "positive learning rate"),
                             ({"name": "inherit", "steps": 2, "repeats": 0}, "estimator.repeats=0: inherit"),
                             ({"repeats": 2}, "one_shot scores are deterministic"),
                             ({"recalibrate_bn": 5}, "one_shot.bn=recalibrate"),
                             ({"name": "inherit", "steps": 2, "recalibrate_bn": -1}, "recalibrate_bn=-1"),
                             ({"rank_by": "acc"}, "estimator.rank_by='acc': choose one of score, loss")]:
        with pytest.raises(UserError, match=error):
            rank_check.check_options({**cfg, "estimator": {**cfg["estimator"], **estimator}})
    for report in ("", "runs/x", ".hidden"):
        with pytest.raises(UserError, match="file name stem without a directory"):
            rank_check.check_options({**cfg, "report": report})
    options = {"strategies": ["random"], "seeds": [0], "split": "test", "train_seeds": [0, 1], "average": 1,
               "engine": "process", "workers": 2, "num_random": 3, "resume": False}
    beats_random.check_options(options, str(tmp_path), ["search.epochs=1"])
    beats_random.check_options({**options, "seeds": [], "strategies": []}, str(tmp_path), [])   # the pool alone
    (tmp_path / "random-seed0").mkdir()
    with pytest.raises(UserError, match="already holds random-seed0: continue that comparison with resume=true"):
        beats_random.check_options(options, str(tmp_path), ["search.epochs=1"])
    # resume=true: the run's folder must say which command line started it, and it must be this one
    resume = {**options, "resume": True}
    with pytest.raises(UserError, match="has no run.json"):
        beats_random.check_options(resume, str(tmp_path), ["search.epochs=1"])
    (tmp_path / "random-seed0" / "run.json").write_text(
        json.dumps({"overrides": ["search.epochs=1", "strategy=random", "seed=0"]}))
    beats_random.check_options(resume, str(tmp_path), ["search.epochs=1"])
    with pytest.raises(UserError, match=r"started with the overrides \['search.epochs=1'.*this command gives "
                                        r"\['search.epochs=2'"):
        beats_random.check_options(resume, str(tmp_path), ["search.epochs=2"])
    with pytest.raises(UserError, match="distinct integer seeds"):
        beats_random.check_options({**options, "seeds": [], "train_seeds": [1, 1]}, str(tmp_path), [])


def test_cost_summary_means_over_timed_trainings():
    from enas.quality import cost_summary, format_cost
    results = [{"seconds": 10.0, "cpu_seconds": 4.0}, {"seconds": 20.0, "cpu_seconds": 6.0}, {"error": "x"},
               {"seconds": 30.0}]
    cost = cost_summary(results)
    assert cost == {"networks": 3, "failed": 1, "seconds_mean": 20.0, "cpu_seconds_mean": 5.0}
    assert format_cost(cost) == "3 networks trained, 20 s wall each (5 s CPU), 1 failed"
    report = _report()
    report["random"]["cost"] = cost
    assert "; 3 networks trained, 20 s wall each (5 s CPU), 1 failed." in format_beats_random(report, "t")


class _CrashOnce(Exception):
    pass


class _CrashingEngine:
    """An inline engine whose first job dies as a killed worker would (a crash, not a failure)."""

    name, workers = "fake", 1

    def __init__(self):
        from enas.parallel import InlineEngine
        self.inline, self.crashed, self.restarts = InlineEngine(), False, 0

    @property
    def generation(self):
        return self.inline.generation

    def submit(self, fn, job):
        if not self.crashed:
            self.crashed = True
            return self.inline.submit(_raise_crash, job)
        return self.inline.submit(fn, job)

    def wait_any(self, handles):
        return self.inline.wait_any(handles)

    def result(self, handle):
        return self.inline.result(handle)

    def is_crash(self, error):
        return isinstance(error, _CrashOnce)

    def restart(self):
        self.restarts += 1
        self.inline.restart()


def _raise_crash(job):
    raise _CrashOnce("worker died")


def test_train_architectures_retries_a_job_whose_worker_died(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="enas")
    jobs = [{"index": 0, "seed": 0, "run_dir": str(tmp_path / "a"), "done": False, "config": {"resume": False}}]
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "checkpoint.pt").write_bytes(b"")            # the lost run had saved an epoch
    engine = _CrashingEngine()
    seen = []

    (result,) = train_architectures(lambda job: seen.append(job) or fake_train(job), jobs, engine)
    assert result["test"] == {"acc": 0.5} and engine.restarts == 1
    assert seen[0]["config"]["resume"] is True and any("retry 1/1" in line for line in _lines(caplog))
    # without retries the crash is recorded as a failure
    (failed,) = train_architectures(fake_train, jobs, _CrashingEngine(), retries=0)
    assert failed["error"] == "_CrashOnce: worker died"


def test_experiment_table_groups_reports_and_placed_runs(tmp_path):
    """experiments/search_quality/table.py: a setting's rows from enas-beats-random reports, from
    place_derived lines of an interrupted run, and the rank checks of each search."""
    from experiments.search_quality.table import markdown, parse_groups, rows, select_checks
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "beats_random.json").write_text(json.dumps({"noise_ceiling_tau": 0.7, "runs": [
        {"strategy": "reinforce", "seed": 2, "status": "ok", "percentile": 90.0, "value": 0.4},
        {"strategy": "random", "seed": 0, "status": "ok", "percentile": 50.0, "value": 0.37},
        {"strategy": "random", "seed": 1, "status": "failed", "percentile": math.nan, "value": None}]}))
    (tmp_path / "b" / "reinforce-seed0" / "search").mkdir(parents=True)
    (tmp_path / "b" / "placed.jsonl").write_text(json.dumps(
        {"search": str(tmp_path / "b" / "reinforce-seed0" / "search"), "percentile": 70.0, "value": 0.38}) + "\n")
    (tmp_path / "b" / "reinforce-seed0" / "search" / "rank_check.json").write_text(
        json.dumps({"one_shot_tau": 0.35, "noise_ceiling_tau": 0.7}))
    (tmp_path / "b" / "reinforce-seed0" / "search" / "rank_check_2000.json").write_text(
        json.dumps({"one_shot_tau": 0.42, "noise_ceiling_tau": 0.7}))
    (tmp_path / "b" / "reinforce-seed0" / "search" / "rank_check_24.json").write_text(  # 24 archs: its own ceiling
        json.dumps({"one_shot_tau": 0.4, "noise_ceiling_tau": 0.8}))
    found = rows(str(tmp_path), parse_groups(["main=a,b"]))
    by = {(r["setting"], r["strategy"]): r for r in found}
    assert set(by) == {("main", "reinforce"), ("main", "random")}
    assert by["main", "reinforce"]["seeds"] == [0, 2] and by["main", "reinforce"]["percentiles"] == [70.0, 90.0]
    assert by["main", "reinforce"]["checks"]["rank_check.json"]["taus"] == [0.35]
    assert by["main", "random"]["percentiles"] == [50.0]
    table = markdown(found)
    assert ("| main | reinforce | 0.700 | 0.35 | 0.50 | 0.42 | 0.60 | 0.800 | 0.40 | 0.50 | - | - | - | - "
            "| 0.3900 ± 0.0141 | 80.0 ± 14.1 | 1/2 | 0,2 |") in table
    assert "| main | random | 0.700 | - | - | - | - | - | - | - | - | - | - | - | 0.3700 | 50.0 | 0/1 | 0 |" in table
    # placed again in a larger pool's measurements (each the mean of some trainings)
    pool = {"random": {"num_archs": 4, "measurements": [[0.36, 0.38, 0.385, 0.41], [0.35, 0.37, 0.39, 0.40]]}}
    again = {(r["setting"], r["strategy"]): r for r in rows(str(tmp_path), parse_groups(["main=a,b"]), pool)}
    assert again["main", "reinforce"]["pool_percentiles"] == [43.75, 81.25]  # 0.38: 37.5 / 50, 0.4: 75 / 87.5 (ties half)
    assert "| derived percentile among 4 random | seeds |" in markdown(list(again.values()))
    # only the 2,000-image check (the micro table): its two columns and no other check's
    only = select_checks(["rank_check_2000.json"])
    short = markdown(rows(str(tmp_path), parse_groups(["main=a,b"]), checks=only))
    assert "| main | reinforce | 0.700 | 0.42 | 0.60 | 0.3900 ± 0.0141 | 80.0 ± 14.1 | 1/2 | 0,2 |" in short
    assert "1,000" not in short and "24 archs" not in short
    # the check against more trainings per architecture: its ceiling is the row's (no beats_random.json)
    (tmp_path / "b" / "reinforce-seed0" / "search" / "rank_check_6seeds.json").write_text(
        json.dumps({"one_shot_tau": 0.39, "noise_ceiling_tau": 0.65}))
    six = markdown(rows(str(tmp_path), parse_groups(["six=b"]), checks=select_checks(["rank_check_6seeds.json"])))
    assert "one-shot tau, 2,000 valid images, 6 trainings" in six
    assert "| six | reinforce | 0.650 | 0.39 | 0.60 | 0.3800 | 70.0 | 0/1 | 0 |" in six
    # a check whose report has the ceiling over every split: the table shows that mean (the verdict's)
    (tmp_path / "b" / "reinforce-seed0" / "search" / "rank_check_e6.json").write_text(json.dumps(
        {"one_shot_tau": 0.39, "noise_ceiling_tau": 0.5,
         "noise_ceiling_splits": {"mean": 0.78, "min": 0.5, "max": 0.9, "splits": 3}}))
    e6 = markdown(rows(str(tmp_path), parse_groups(["e6=b"]), checks=select_checks(["rank_check_e6.json"])))
    assert "| e6 | reinforce | 0.780 | 0.39 | 0.50 | 0.3800 | 70.0 | 0/1 | 0 |" in e6
    with pytest.raises(SystemExit, match="unknown rank check 'rank_check_5.json'"):
        select_checks(["rank_check_5.json"])


def test_experiment_table_compares_two_rows_percentiles():
    """table.py --versus: A's derived percentiles against B's, not paired, tested both ways."""
    from experiments.search_quality.table import ahead, versus
    c = ahead([100.0, 90.0], [50.0])
    assert (c["difference"], c["share"]) == (45.0, 1.0)
    # exact Mann-Whitney: B's one value is the lowest of 3 in 1 of the 3 equally likely orders
    assert c["p_ahead"] == pytest.approx(1 / 3) and c["p_behind"] == pytest.approx(1.0)
    assert ahead([70.0], [70.0, 90.0])["share"] == 0.25                  # a tie counts half
    found = [{"setting": "few", "strategy": "reinforce", "percentiles": [100.0, 90.0]},
             {"setting": "main", "strategy": "random", "percentiles": [50.0]}]
    assert "| few/reinforce | main/random | 2 / 1 | +45.0 | 1.00 | 0.33 | 1.00 |" in \
        versus(found, ["few/reinforce:main/random"])
    with pytest.raises(SystemExit, match="no row 'main/reinforce'"):
        versus(found, ["few/reinforce:main/reinforce"])


def test_entropy_curve_reads_the_controller_entropy_of_a_run(tmp_path, capsys):
    """experiments/search_quality/entropy_curve.py: first, lowest and last window means and the
    change in per cent, from the TensorBoard events a search writes; the PNG of the curve."""
    from torch.utils.tensorboard import SummaryWriter

    from experiments.search_quality.entropy_curve import main, summary
    values = [20.0] * 10 + [16.0] * 10 + [18.0] * 10
    writer = SummaryWriter(str(tmp_path / "run" / "tb"))
    for step, value in enumerate(values):
        writer.add_scalar("controller/entropy", value, step)
    writer.close()
    s = summary(values, window=10)
    assert (s["first"], s["lowest"], s["last"]) == (20.0, 16.0, 18.0)
    assert s["change"] == pytest.approx(-0.10) and s["lowest_change"] == pytest.approx(-0.20)
    main([str(tmp_path / "run"), "--names", "ptb", "--png", str(tmp_path / "e.png")])
    assert "| ptb | 30 | 20.000 | 16.000 | 18.000 | -10.0% | -20.0% |" in capsys.readouterr().out
    assert (tmp_path / "e.png").read_bytes()[:8] == PNG_SIGNATURE


def test_op_bias_counts_pools_and_skips_and_correlates_them(tmp_path):
    """experiments/search_quality/op_bias.py: what one-shot scores and the ground truth reward."""
    from experiments.search_quality.op_bias import counts, markdown
    assert counts("layer0_op=max_pool3x3 layer1_op=conv3x3 layer1_skip=skip[1] layer2_op=avg_pool3x3 "
                  "layer2_skip=skip[01]") == {"pools": 2, "skips": 2, "sep_convs": 0}
    assert counts("normal_node0_in_a=<-1 normal_node0_op_a=sep_conv5x5 normal_node0_op_b=max_pool3x3 "
                  "reduce_node0_op_a=sep_conv3x3 reduce_node0_op_b=identity") == {"pools": 1, "skips": 0, "sep_convs": 2}
    genotypes = ["layer0_op=conv3x3 layer1_op=conv3x3 layer1_skip=skip[1]",
                 "layer0_op=max_pool3x3 layer1_op=conv3x3 layer1_skip=skip[0]",
                 "layer0_op=max_pool3x3 layer1_op=avg_pool3x3 layer1_skip=skip[0]"]
    # one-shot scores fall with the pools (0, 1, 2) and follow the skips; the truth rises with the pools
    rows = [{"genotype": g, "one_shot_score": s, "ground_truth_mean": t}
            for g, s, t in zip(genotypes, [0.3, 0.2, 0.1], [0.35, 0.36, 0.37])]
    search = tmp_path / "main" / "reinforce-seed0" / "search"
    search.mkdir(parents=True)
    (search / "rank_check_2000.json").write_text(json.dumps({"rows": rows}))
    table = markdown(str(tmp_path)).splitlines()
    assert table[2] == "| main/reinforce-seed0 | -1.00 | 1.00 | -1.00 | -0.82 | 0.82 |"
    assert table[3].startswith("| mean of 1 | -1.00 |")
    (search / "rank_check_24.json").write_text(json.dumps({"rows": rows[:2]}))
    other = markdown(str(tmp_path), "rank_check_24.json").splitlines()
    assert other[2].startswith("| main/reinforce-seed0 | -1.00 | 1.00 |")
    run = tmp_path / "s4" / "random_s0"                     # the fourth session's layout, another estimator
    run.mkdir(parents=True)
    (run / "inherit20.json").write_text(json.dumps({"rows": rows}))
    s4 = markdown(str(tmp_path / "s4"), "inherit20.json", "*_s?").splitlines()
    assert s4[2] == "| random_s0 | -1.00 | 1.00 | -1.00 | -0.82 | 0.82 |" and len(s4) == 4


def test_op_bias_counts_the_micro_features_of_the_pool_and_of_the_derived_cell(tmp_path):
    """op_bias.py --features pools,sep_convs --derived: separable convolutions of micro cells, and
    the derived cell's counts read from the search's arch.json through its space."""
    from enas.spaces import build_space
    from experiments.search_quality.op_bias import main, markdown
    space = build_space("micro_cnn", num_nodes=2)
    op = next(d for d in space.decisions() if "_op_" in d.name)
    ops = {op.describe(i): i for i in range(op.num_choices)}

    def cell(*names):                                  # a genotype and choices: inputs 0, these 8 ops in turn
        choices, it = [], iter(names)
        for d in space.decisions():
            choices.append(ops[next(it)] if "_op_" in d.name else 0)
        return choices

    def arch(choices):
        return space.arch_from_dict({"space": "micro_cnn", "version": 1, "choices": choices,
                                     "structure": {"num_nodes": 2}})

    pool = [cell(*["sep_conv3x3"] * k + ["identity"] * (8 - k)) for k in (0, 2, 4)]
    rows = [{"genotype": space.describe(arch(c)),
             "one_shot_score": s, "ground_truth_mean": t}
            for c, s, t in zip(pool, [0.3, 0.2, 0.1], [0.35, 0.37, 0.36])]
    search = tmp_path / "main" / "reinforce-seed0" / "search"
    search.mkdir(parents=True)
    (search / "check.json").write_text(json.dumps({"rows": rows}))
    table = markdown(str(tmp_path), "check.json", features=("sep_convs",), derived=True).splitlines()
    assert table[0] == ("| supernet | tau(one-shot, truth) | tau(truth, sep convs) | tau(one-shot, sep convs) "
                        "| derived: sep convs |")
    assert table[2] == "| main/reinforce-seed0 | -0.33 | 0.33 | -1.00 | - |"      # not derived yet
    derived = cell(*["sep_conv3x3"] * 3 + ["max_pool3x3"] * 5)
    (search / "arch.json").write_text(json.dumps(space.arch_to_dict(arch(derived))))
    again = markdown(str(tmp_path), "check.json", features=("pools", "sep_convs"), derived=True).splitlines()
    assert again[2].endswith("| 5 | 3 |") and again[3].endswith("| 5.00 | 3.00 |")
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--features", "pools,convs"])


def test_estimator_table_summarises_reports_and_pairs_inherit_with_standalone(tmp_path, capsys):
    from experiments.search_quality.estimators import main, markdown, paired_rows, summary_rows

    def report(tau, label=None, seconds=48.0, scores=(1, 2, 3)):
        pair = {"kendall_tau": tau, "spearman_rho": tau + 0.1, "top_k_overlap": 0.4}
        out = {"one_shot_tau": tau, "noise_ceiling_tau": 0.7, "num_archs": 24, "one_shot": {"seconds": seconds},
               "rows": [{"one_shot_score": s, "ground_truth_mean": t} for s, t in zip(scores, (0.3, 0.5, 0.4))],
               "measurement_names": ["m1", "m2"], "pairs": {"one-shot vs m1": pair, "one-shot vs m2": pair}}
        return {**out, "estimator": {"label": label}} if label else out

    files = {("reinforce_s0", "rank_check_24"): report(0.1),
             ("reinforce_s1", "rank_check_24"): report(0.3, scores=(3, 2, 1)),
             ("reinforce_s0", "inherit78"): report(0.5, "inherit, 78 steps"),
             ("reinforce_s1", "inherit78"): report(0.3, "inherit, 78 steps"),
             ("reinforce_s0", "standalone78"): report(0.2, "standalone, 78 steps"),
             ("random_s0", "inherit78"): report(0.4, "inherit, 78 steps")}
    for (run, name), content in files.items():
        (tmp_path / run).mkdir(exist_ok=True)
        (tmp_path / run / f"{name}.json").write_text(json.dumps(content))
    (tmp_path / "pool").mkdir()                               # not a <strategy>_s<seed> run: ignored
    rows = summary_rows(str(tmp_path), ["rank_check_24", "inherit78"])
    assert [(r["report"], r["strategy"], r["seeds"], r["taus"]) for r in rows] == [
        ("rank_check_24", "reinforce", [0, 1], [0.1, 0.3]), ("inherit78", "random", [0], [0.4]),
        ("inherit78", "reinforce", [0, 1], [0.5, 0.3])]
    assert rows[0]["estimator"] == "one-shot" and rows[0]["seconds"] == [2.0, 2.0] and rows[0]["rho"] == [0.2, 0.4]
    assert rows[0]["self_tau"] == [pytest.approx(-1.0)] and rows[1]["self_tau"] == []   # reversed scores; one run
    # reinforce_s0 picks the third (truth 0.4: beats one of the two others), reinforce_s1 the first (beats none)
    assert rows[0]["top_pick"] == [50.0, 0.0]
    assert paired_rows(str(tmp_path), ["inherit20", "standalone20"]) == []               # no reports: no row
    paired = paired_rows(str(tmp_path), ["inherit78", "standalone78"])
    assert len(paired) == 1 and paired[0]["runs"] == ["reinforce 0"] and paired[0]["diffs"] == [pytest.approx(0.3)]
    md = markdown(str(tmp_path), ["rank_check_24", "inherit78", "standalone78"])
    assert "| one-shot (rank_check_24) | reinforce | 0,1 | 24 | 0.700 | 0.20 ± 0.14 | 0.29 |" in md
    assert "| 0.40 ± 0.00 | -1.00 | 25.0 ± 35.4 | 2.0 ± 0.0 |" in md
    assert "| inherit78 - standalone78 | 0.30 | 1/1 | reinforce 0 |" in md
    md = markdown(str(tmp_path), ["rank_check_24", "inherit78"], pairs=[("inherit78", "rank_check_24")])
    assert "| inherit78 - rank_check_24 | 0.20 ± 0.28 | 1/2 | reinforce 0, reinforce 1 |" in md
    main([str(tmp_path), "rank_check_24", "inherit78", "--pair", "inherit78:rank_check_24"])
    assert "| inherit78 - rank_check_24 | 0.20 ± 0.28 |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([str(tmp_path), "inherit78", "--pair", "inherit78"])
    # --loss: reports whose rows keep the estimator's loss, ranked by accuracy and by -loss
    lossy = report(0.2, "inherit, 78 steps")
    for row, loss in zip(lossy["rows"], (2.0, 1.0, 1.5)):       # by loss: the truth's order (0.3, 0.5, 0.4)
        row["one_shot_loss"] = loss
    (tmp_path / "reinforce_s0" / "inherit20.json").write_text(json.dumps(lossy))
    main([str(tmp_path), "inherit20", "inherit78", "--loss"])
    out = capsys.readouterr().out
    assert "| inherit20 | reinforce | 0 | 0.33 | 1.00 | 1/1 |" in out and "| inherit78 | reinforce |" not in out.split(
        "Ranked by accuracy or by loss")[1]


def test_best_of_k_is_the_exact_mean_over_every_subset(tmp_path, capsys):
    """estimators.py --best-of K: the expected percentile of the estimator's favourite among K
    random pool architectures equals the brute-force mean over all K-subsets, by score and by loss."""
    from itertools import combinations as subsets

    from enas.quality import percentile
    from experiments.search_quality.estimators import best_of_k_percentile, main
    truth = [0.30, 0.42, 0.35, 0.38, 0.41, 0.33, 0.36]
    scores = [0.2, 0.5, 0.1, 0.4, 0.3, 0.25, 0.45]
    losses = [1.9, 1.6, 1.5, 1.7, 1.8, 2.0, 1.65]
    rows = [{"one_shot_score": s, "one_shot_loss": l, "ground_truth_mean": t} for s, l, t in zip(scores, losses, truth)]
    report = {"rows": rows + [{"one_shot_score": 0.9, "one_shot_loss": 0.1, "ground_truth_mean": math.nan}]}

    def brute(k, key):
        picks = [min(subset, key=key) for subset in subsets(range(7), k)]
        return sum(percentile(truth[i], truth[:i] + truth[i + 1:]) for i in picks) / len(picks)

    for k in (1, 3, 7):
        assert best_of_k_percentile(report, k) == pytest.approx(brute(k, lambda i: -scores[i]))
        assert best_of_k_percentile(report, k, by_loss=True) == pytest.approx(brute(k, lambda i: losses[i]))
    assert best_of_k_percentile(report, 1) == pytest.approx(50.0)          # one random architecture: the median
    assert best_of_k_percentile(report, 7) == pytest.approx(100.0)          # score's favourite (0.5): the best truth
    with pytest.raises(ValueError, match="--best-of 8: between 1 and the 7 architectures"):
        best_of_k_percentile(report, 8)
    (tmp_path / "random_s0").mkdir()
    figures = {"kendall_tau": 0.4, "spearman_rho": 0.5, "top_k_overlap": 0.5}
    (tmp_path / "random_s0" / "standalone78.json").write_text(json.dumps({
        **report, "estimator": {"label": "standalone, 78 steps"}, "one_shot_tau": 0.4, "noise_ceiling_tau": 0.7,
        "num_archs": 7, "one_shot": {}, "measurement_names": ["m1"], "pairs": {"one-shot vs m1": figures}}))
    main([str(tmp_path), "standalone78", "--best-of", "7"])
    out = capsys.readouterr().out
    by_loss = brute(7, lambda i: losses[i])
    assert f"| standalone, 78 steps (standalone78) | random | 0 | 7 | 100.0 | {by_loss:.1f} |" in out
    assert "| all |" not in out                                          # one strategy: no pooled row
    (tmp_path / "reinforce_s1").mkdir()                                  # a second supernet, reversed scores
    reversed_rows = [{**row, "one_shot_score": -row["one_shot_score"]} for row in rows]
    (tmp_path / "reinforce_s1" / "standalone78.json").write_text(json.dumps({
        **json.loads((tmp_path / "random_s0" / "standalone78.json").read_text()), "rows": reversed_rows}))
    main([str(tmp_path), "standalone78", "--best-of", "7"])
    out = capsys.readouterr().out
    worst = percentile(truth[2], truth[:2] + truth[3:])                   # reversed: the lowest score (arch 2) wins
    assert f"| reinforce | 1 | 7 | {worst:.1f} |" in out
    assert f"| all | 0,1 | 7 | {(100.0 + worst) / 2:.1f} ± " in out


def test_consensus_of_supernets_averages_their_ranks_against_each_measurement(tmp_path, capsys):
    """estimators.py --consensus: the tau of the supernets' mean rank, against each measurement of the
    ground truth (means of `average` trainings) and averaged over them, for k-subsets as k grows."""
    from experiments.search_quality.estimators import consensus_curve, consensus_tau, main

    # three architectures; measurement 1 (trainings 1-2) orders them a < c < b, measurement 2 (3-4) a < b < c
    truth = {(0,): [0.3, 0.3, 0.3, 0.3], (1,): [0.5, 0.5, 0.35, 0.35], (2,): [0.4, 0.4, 0.4, 0.4]}

    def report(scores, losses=(2.0, 1.0, 1.5)):
        rows = [{"choices": list(c), "one_shot_score": s, "one_shot_loss": l, "ground_truth": t}
                for (c, t), s, l in zip(truth.items(), scores, losses)]
        return {"rows": rows, "average": 2, "run_dir": "runs/x"}

    first, second = report((1, 2, 3)), report((1, 3, 2))
    # second: tau 1 with measurement 1, 1/3 with measurement 2; first: 1/3 and 1
    assert consensus_tau([second]) == pytest.approx(2 / 3) and consensus_tau([first]) == pytest.approx(2 / 3)
    # mean ranks (1, 2.5, 2.5): two concordant pairs, one tied -> tau-b 2 / sqrt(2 * 3) with either measurement
    assert consensus_tau([first, second]) == pytest.approx(2 / math.sqrt(6))
    assert consensus_tau([first], by_loss=True) == pytest.approx(2 / 3)      # -loss orders a < c < b
    assert consensus_curve([first, second]) == pytest.approx({1: 2 / 3, 2: 2 / math.sqrt(6)})
    assert list(consensus_curve([first] * 5, subsets=3)) == [1, 2, 4, 5]   # drawn subsets where there are more
    failed = report((1, math.nan, 3))                   # b's estimate failed: tau over a and c (both agree)
    assert consensus_tau([failed, second]) == pytest.approx(1.0)
    untrained = report((1, 2, 3))
    untrained["rows"][1]["ground_truth"] = [math.nan, 0.5, 0.35, 0.35]   # b's first training failed
    assert consensus_tau([untrained]) == pytest.approx(1.0)
    other = report((1, 2, 3))
    other["rows"][0]["choices"] = [7]
    with pytest.raises(ValueError, match="rank different architectures"):
        consensus_tau([first, other])
    figures = {"kendall_tau": 2 / 3, "spearman_rho": 0.5, "top_k_overlap": 1.0}
    for name, content in (("reinforce_s0", first), ("random_s1", second)):
        for row in content["rows"]:
            row["ground_truth_mean"] = sum(row["ground_truth"]) / 4
        (tmp_path / name).mkdir()
        (tmp_path / name / "check.json").write_text(json.dumps({
            **content, "estimator": {"label": "one-shot"}, "one_shot_tau": 2 / 3, "noise_ceiling_tau": 0.7,
            "num_archs": 3, "one_shot": {}, "measurement_names": ["m1"], "pairs": {"one-shot vs m1": figures}}))
    main([str(tmp_path), "check", "--consensus"])
    out = capsys.readouterr().out.split("Noise or bias?")[1]
    both = 2 / math.sqrt(6)
    assert (f"| one-shot (check) | all | 2 supernets | score | 0.67 ± 0.00 | 1: 0.67, 2: {both:.2f} | "
            f"{both:.2f} |") in out
    assert "| one-shot (check) | random | 1 | score | 0.67 | 1: 0.67 | 0.67 |" in out
    assert "| one-shot (check) | reinforce | 0 | loss | 0.67 | 1: 0.67 | 0.67 |" in out


def test_picks_table_places_each_estimators_pick_and_pairs_them(tmp_path, capsys):
    """experiments/search_quality/picks.py: per search and estimator of the pick, the percentile
    over the seeds, how often two estimators picked the same architecture, the paired difference."""
    from experiments.search_quality.picks import load_picks, main, markdown
    lines = []
    for seed, (one_shot, inherit, same) in enumerate([(50.0, 87.5, False), (25.0, 25.0, True)]):
        for pick, percentile in (("one_shot", one_shot), ("inherit20", inherit)):
            folder = tmp_path / f"reinforce_s{seed}" / f"pick_{pick}"
            folder.mkdir(parents=True)
            choices = [seed, 1] if same or pick == "one_shot" else [seed, 2]
            (folder / "arch.json").write_text(json.dumps({"choices": choices}))
            lines.append(json.dumps({"search": str(folder), "value": percentile / 100, "percentile": percentile}))
    picks = load_picks(lines + [""])
    assert sorted(picks) == [("reinforce", "inherit20"), ("reinforce", "one_shot")]
    assert sorted(picks[("reinforce", "one_shot")]) == [0, 1]
    md = markdown(picks, "one_shot")
    assert "| reinforce | inherit20 | 56.2 ± 44.2 | s0 87.5, s1 25.0 | 0.5625 ± 0.4419 | 1/2 |" in md
    assert "| reinforce | one_shot | 37.5 ± 17.7 | s0 50.0, s1 25.0 |" in md and "| 2/2 |" in md
    assert "| reinforce | inherit20 | 18.8 ± 26.5 | 1 / 0 / 1 | 1.000 | nan |" in md      # too few to test
    with pytest.raises(ValueError, match="not a <search>_s<seed>/pick_<estimator> folder"):
        load_picks([json.dumps({"search": str(tmp_path / "elsewhere"), "percentile": 1.0, "value": 0.1})])
    placed = tmp_path / "placed.jsonl"
    placed.write_text("\n".join(lines) + "\n")
    main([str(placed), "--baseline", "inherit20"])
    out = capsys.readouterr().out
    assert "minus that of the inherit20 pick" in out and "| reinforce | one_shot | -18.8 ± 26.5 | 0 / 1 / 1 |" in out
    # random search's picks: 50.0 (one_shot, inherit20 beside it at 25.0) on one seed
    for pick, percentile in (("one_shot", 50.0), ("inherit20", 25.0)):
        folder = tmp_path / "random_s0" / f"pick_{pick}"
        folder.mkdir(parents=True)
        (folder / "arch.json").write_text(json.dumps({"choices": [7]}))
        lines.append(json.dumps({"search": str(folder), "value": percentile / 100, "percentile": percentile}))
    placed.write_text("\n".join(lines) + "\n")
    main([str(placed), "--versus", "reinforce:random"])
    out = capsys.readouterr().out
    # inherit20: reinforce 87.5 and 25.0 against 25.0: ahead in one pair, tied in the other
    assert "| inherit20 | 2 | 1 | 31.2 | 0.75 |" in out and "| one_shot | 2 | 1 | -12.5 | 0.25 |" in out
    assert "| all searches | inherit20 | 4.2 ± 31.5 | 1 / 1 / 1 |" in out
    with pytest.raises(SystemExit):
        main([str(placed), "--versus", "reinforce"])


def test_picks_reads_its_own_tables_back_and_tests_the_differences(tmp_path, capsys):
    """picks.py on a table it wrote (a session whose placement lines are gone): the per-seed
    percentiles come back; paired differences get a sign and a Wilcoxon test, searches against
    each other a one-sided Mann-Whitney test; a seed placed twice is refused."""
    from experiments.search_quality.picks import main
    table = tmp_path / "picks_old.md"
    table.write_text("| search | derive picks by | percentile (mean ± sd) | per seed | test acc | same pick as one_shot |\n"
                     "|---|---|---|---|---|---|\n"
                     "| random | inherit20 | 1.5 ± 0.7 | s0 1.0, s1 2.0 | 0.3 | 0/2 |\n"
                     "| reinforce | inherit20 | 38.5 ± 20.6 | s10 11.0, s11 22.0, s12 33.0, s13 44.0, s14 55.0, s15 66.0 "
                     "| 0.3 | 0/6 |\n"
                     "| reinforce | one_shot | 35.0 ± 18.7 | s10 10.0, s11 20.0, s12 30.0, s13 40.0, s14 50.0, s15 60.0 "
                     "| 0.3 | 6/6 |\n\nPaired on the same supernets: ...\n| reinforce | inherit20 | 3.5 ± 1.9 | 6 / 0 / 0 |\n")
    main([str(table), "--versus", "reinforce:random"])
    out = capsys.readouterr().out
    assert "| reinforce | inherit20 | 38.5 ± 20.6 | s10 11.0, s11 22.0, s12 33.0, s13 44.0, s14 55.0, s15 66.0 | - | - |" in out
    # 6 of 6 better: sign test 2 / 2^6, Wilcoxon (exact) the same; alone, so the all-searches row is not repeated
    assert "| reinforce | inherit20 | 3.5 ± 1.9 | 6 / 0 / 0 | 0.031 | 0.031 |" in out and "all searches" not in out
    # every reinforce pick above both random ones: one-sided Mann-Whitney p = 1 / C(8, 2)
    assert "| inherit20 | 6 | 2 | 37.0 | 1.00 | 0.036 |" in out
    with pytest.raises(ValueError, match="picks_old.md: a second placement of random seed 0, pick inherit20"):
        main([str(table), str(table)])
    (tmp_path / "notes.md").write_text("# nothing here\n")
    with pytest.raises(ValueError, match="notes.md: no per-seed rows of a picks table"):
        main([str(tmp_path / "notes.md")])


def test_pool_table_keeps_what_placing_needs_and_reads_back_like_the_folder(tmp_path, capsys):
    """experiments/search_quality/pool_table.py: a pool folder exported to one JSON file gives
    place_derived.py the same accuracies and recipe as the folder; a missing training is named."""
    from experiments.search_quality.pool_table import export_pool, load_pool, main
    pool = tmp_path / "pool"
    for a, accs in enumerate([(0.3, 0.32), (0.4, 0.38), (0.35, 0.36)]):
        arch_dir = pool / "random" / f"arch{a:03d}-x"
        arch_dir.mkdir(parents=True)
        (arch_dir / "arch.json").write_text(json.dumps({"space": "macro_cnn", "choices": [a]}))
        for seed, acc in enumerate(accs):
            (arch_dir / f"seed{seed}").mkdir()
            (arch_dir / f"seed{seed}" / "result.json").write_text(json.dumps({"test": {"acc": acc, "loss": 1.0}}))
            (arch_dir / f"seed{seed}" / "job.json").write_text(json.dumps({"space": {"name": "macro_cnn"}, "seed": seed}))
    exported = export_pool(str(pool), [0, 1])
    assert [a["arch"]["choices"] for a in exported["archs"]] == [[0], [1], [2]]
    assert exported["test_acc"] == [[0.3, 0.4, 0.35], [0.32, 0.38, 0.36]]
    table_path = tmp_path / "pool.json"
    table_path.write_text(json.dumps(exported))
    (from_file, recipe), (from_folder, _) = load_pool(str(table_path), [1]), load_pool(str(pool), [1])
    assert from_file == from_folder == [[0.32, 0.38, 0.36]]
    assert recipe == {"space": {"name": "macro_cnn"}, "seed": 0}       # the job.json of the first training
    with pytest.raises(ValueError, match=r"no trainings with seeds \[2\]"):
        load_pool(str(table_path), [0, 2])
    with pytest.raises(ValueError, match=r"seed2/result.json: missing"):
        export_pool(str(pool), [0, 2])
    with pytest.raises(ValueError, match="not an enas-beats-random out_dir"):
        export_pool(str(tmp_path), [0])
    table_path.write_text(json.dumps({"version": 99}))
    with pytest.raises(ValueError, match="not a pool table of version 1"):
        load_pool(str(table_path), [0])
    main([str(pool), "--seeds", "0,1"])
    assert json.loads(capsys.readouterr().out) == exported          # the command prints the exported table
    main([str(pool), "--seeds", "0,1", "--ceilings"])                 # 2 seeds: one split of single trainings
    tau = kendall_tau([0.3, 0.4, 0.35], [0.32, 0.38, 0.36])
    assert capsys.readouterr().out.splitlines()[2] == f"| 1 | 1 | {tau:.3f} | {tau:.3f} | {tau:.3f} |"


def test_place_derived_places_a_pick_in_the_committed_pool_and_names_a_failed_training(tmp_path, monkeypatch, capsys):
    """place_derived.py against pool24_s7.json: the mean of the pick's trainings placed among the
    pool's two measurements; a training that failed (e.g. another process training the same
    architecture into the same folder) stops it with that error, not a KeyError."""
    import sys
    from pathlib import Path

    from experiments.search_quality import place_derived
    pool = Path(place_derived.__file__).with_name("pool24_s7.json")
    arch = json.loads(pool.read_text())["archs"][0]["arch"]
    pick = tmp_path / "reinforce_s0" / "pick_x"
    pick.mkdir(parents=True)
    (pick / "arch.json").write_text(json.dumps(arch))
    trained = []

    def fake_training(train_job, jobs, engine):
        trained.extend(jobs)
        return [{"test": {"acc": acc}} for acc in (0.50, 0.52, 0.54)]          # above every pool network

    monkeypatch.setattr(place_derived, "train_architectures", fake_training)
    monkeypatch.setattr(sys, "argv", ["place_derived", str(pool), str(pick), "--workers", "1", "--data-path", "/data"])
    place_derived.main()
    line = json.loads(capsys.readouterr().out)
    assert line["search"] == str(pick) and line["value"] == pytest.approx(0.52) and line["percentile"] == 100.0
    assert len(trained) == 3 and line["trainings"] == [0.50, 0.52, 0.54]
    monkeypatch.setattr(place_derived, "train_architectures",
                        lambda train_job, jobs, engine: [{"test": {"acc": 0.4}}, {"error": "run dir is locked"}, {}])
    with pytest.raises(SystemExit, match="pick_x: 2 of 3 trainings failed: run dir is locked"):
        place_derived.main()


def test_controller_steps_measures_adam_gradients_against_eps(tmp_path, capsys):
    """experiments/search_quality/controller_steps.py: a gradient of 1e-5 under eps 1e-3 moves
    Adam by about 1% of its learning rate; under eps 1e-8 by all of it. Read from checkpoints."""
    from enas.checkpoint import save_checkpoint
    from experiments.search_quality.controller_steps import main, step_sizes
    for name, eps in (("official", 1e-3), ("small_eps", 1e-8)):
        weight = torch.nn.Parameter(torch.zeros(4))
        optimizer = torch.optim.Adam([weight], lr=0.0035, betas=(0.0, 0.999), eps=eps)
        for _ in range(5):
            weight.grad = torch.full((4,), 1e-5)
            optimizer.step()
        save_checkpoint(str(tmp_path / name / "checkpoint.pt"),
                        {"kind": "search", "strategy": {"optimizer": optimizer.state_dict()}})
    sizes = step_sizes(optimizer.state_dict())
    assert sizes["updates"] == 5 and sizes["rms_median"] == pytest.approx(1e-5, rel=1e-4)
    assert sizes["below_eps"] == 0.0 and sizes["relative_step"] == pytest.approx(1.0, abs=1e-3)
    main([str(tmp_path / "official"), str(tmp_path / "small_eps")])
    rows = capsys.readouterr().out.splitlines()
    assert rows[2] == "| official | 0.0035 | 0 / 0.001 | 5 | 1.0e-05 / 1.0e-05 / 1.0e-05 | 1.00 | 0.010 |"
    assert rows[3].startswith("| small_eps | 0.0035 | 0 / 1e-08 | 5 |") and rows[3].endswith("| 0.00 | 0.999 |")
    with pytest.raises(SystemExit):
        main([str(tmp_path / "official"), "--names", "a", "b"])
