"""enas-derive's estimators: the search's own (one-shot or inherit), or one named by derive.estimator."""

from __future__ import annotations

import json
import math

import pytest
import torch

from enas import runs
from enas.arch import Architecture
from enas.derive import best_first, lowest_loss_first
from enas.utils import UserError
from tests.helpers import run_command

SHORT = ["experiment=smoke_micro", "search.epochs=1", "search.omega_steps=3", "derive.num_samples=3"]


def _arch(k: int) -> Architecture:
    return Architecture.from_plain("toy", [k])


def test_best_first_puts_failed_candidates_last_and_keeps_ties_in_order():
    scored = [(_arch(0), {}, 0.5), (_arch(1), {}, math.nan), (_arch(2), {}, 0.9), (_arch(3), {}, 0.5),
              (_arch(4), {}, -1.0)]
    order = [a.plain_choices()[0] for a, _, _ in best_first(scored)]
    assert order == [2, 0, 3, 4, 1]


def test_lowest_loss_first_orders_by_validation_loss_and_puts_missing_losses_last():
    ranked = [(_arch(0), {"loss": 1.5}, 0.9), (_arch(1), {}, math.nan), (_arch(2), {"loss": 1.2}, 0.8),
              (_arch(3), {"loss": math.nan}, 0.7), (_arch(4), {"loss": 1.5}, 0.1)]
    assert [a.plain_choices()[0] for a, _, _ in lowest_loss_first(ranked)] == [2, 0, 4, 1, 3]


class _Loop:
    """What derive reads of a restored search."""

    def __init__(self, evaluator: str, supernet=True):
        self.evaluator = type("Evaluator", (), {"name": evaluator})()
        self.supernet = object() if supernet else None


def test_derive_estimator_follows_the_search_or_the_option():
    assert runs.derive_estimator(_Loop("one_shot"), "search") == "one_shot"
    assert runs.derive_estimator(_Loop("inherit"), "search") == "inherit"
    assert runs.derive_estimator(_Loop("inherit"), "one_shot") == "one_shot"
    assert runs.derive_estimator(_Loop("one_shot"), "inherit") == "inherit"
    assert runs.derive_estimator(_Loop("standalone", supernet=False), "search") == "recorded"
    with pytest.raises(UserError, match="derive.estimator='best': choose one of search, one_shot, inherit"):
        runs.derive_estimator(_Loop("one_shot"), "best")
    with pytest.raises(UserError, match="derive.estimator=inherit: the search used evaluator=standalone, which "
                                        "has no supernet"):
        runs.derive_estimator(_Loop("standalone", supernet=False), "inherit")


def _options(**given) -> dict:
    return {"valid_batches": 4, "seed": 7, "steps": None, "lr": None, "workers": None, "recalibrate_bn": None,
            **given}


def test_derive_inherit_options_take_the_searchs_inherit_setting_or_the_given_steps():
    searched = {"name": "inherit", "options": {"epochs": 1, "steps_per_epoch": 10, "lr": 0.02, "valid_batches": 1,
                                               "workers": 3, "engine": "inline", "failure_reward": 0.0,
                                               "journal": "evaluations.jsonl", "seed": None, "retries": 2,
                                               "recalibrate_bn": 10}}
    options = runs.derive_inherit_options({"evaluator": searched}, _options())
    assert (options["steps_per_epoch"], options["lr"], options["workers"], options["engine"]) == (10, 0.02, 3, "inline")
    assert options["valid_batches"] == 4 and options["seed"] == 7 and options["retries"] == 2   # derive's subset
    assert math.isnan(options["failure_reward"]) and options["journal"] is None and options["mode"] == "sync"
    assert options["recalibrate_bn"] == 10
    options = runs.derive_inherit_options({"evaluator": searched}, _options(steps=20, lr=0.1, workers=1,
                                                                           recalibrate_bn=0))
    assert (options["steps_per_epoch"], options["lr"], options["workers"], options["recalibrate_bn"]) == (20, 0.1, 1, 0)
    one_shot = {"name": "one_shot", "options": {"something": 1}}
    options = runs.derive_inherit_options({"evaluator": one_shot}, _options(steps=5))
    assert (options["steps_per_epoch"], options["lr"], options["workers"], options["recalibrate_bn"]) == (5, None, 2, 0)
    assert "something" not in options and "epochs" not in options
    with pytest.raises(UserError, match="give derive.steps=<training steps per candidate>; the search "
                                        r"\(evaluator=one_shot\) has no inherit setting"):
        runs.derive_inherit_options({"evaluator": one_shot}, _options())
    with pytest.raises(UserError, match="derive.steps=0: needs at least 1"):
        runs.derive_inherit_options({"evaluator": one_shot}, _options(steps=0))


class _SearchedLoop:
    """What derive's final round reads of a restored search."""

    def __init__(self):
        self.metadata = {"config": {"seed": 3, "trainer": {}, "data": {}}}
        self.space = type("Space", (), {"describe": staticmethod(lambda arch: str(arch.plain_choices()))})()
        self.task = type("Task", (), {"metric": "acc"})()
        self.checkpoint_path = "run/checkpoint.pt"


def test_final_round_trains_the_first_candidates_from_scratch_and_ranks_them_again(monkeypatch):
    """derive.finalists=k: the first k of the first round are trained by the standalone evaluator
    (derive's seed, subset, workers, BN recalibration; finalist_epochs passes) and ranked again by
    score or loss; a failed finalist comes last; the rest keep their first-round order."""
    calls = []
    trained = {0: (0.30, {"acc": 0.30, "loss": 1.9}), 1: (0.50, {"acc": 0.50, "loss": 1.7}),
               2: (math.nan, None), 3: (0.45, {"acc": 0.45, "loss": 1.6}), 4: (0.2, {"acc": 0.2, "loss": 2.0}),
               5: (0.6, {"acc": 0.6, "loss": 1.65})}

    def fake_trained_scores(config, loop, name, archs, options, device):
        calls.append((name, [a.plain_choices()[0] for a in archs], options, config["device"]))
        return [trained[a.plain_choices()[0]] for a in archs]

    monkeypatch.setattr(runs, "trained_scores", fake_trained_scores)
    first = [(_arch(k), {"acc": 0.9 - k / 10, "loss": 1.0 + k}, 0.9 - k / 10) for k in range(6)]
    options = {"finalists": 4, "finalist_epochs": 2, "valid_batches": 4, "workers": None, "seed": 7,
               "recalibrate_bn": 20, "rank_by": "loss", "scored_by": "the shared weights"}
    ranked, text = runs._final_round(_SearchedLoop(), first, options, "cpu", "device")
    name, archs, evaluator_options, device = calls[0]
    assert (name, archs, device) == ("standalone", [0, 1, 2, 3], "cpu")
    assert (evaluator_options["epochs"], evaluator_options["steps_per_epoch"], evaluator_options["seed"]) == (2, None, 7)
    assert (evaluator_options["valid_batches"], evaluator_options["workers"], evaluator_options["recalibrate_bn"]) == (4, 2, 20)
    assert evaluator_options["journal"] is None and math.isnan(evaluator_options["failure_reward"])
    assert [a.plain_choices()[0] for a, _, _ in ranked] == [3, 1, 0, 2, 4, 5]     # by loss; the failure last
    assert ranked[0][2] == 0.45 and ranked[0][1]["first_round_score"] == first[3][2]
    assert ranked[4:] == first[4:]                                              # untouched
    assert text == ("the shared weights; then the first 4 trained from scratch for 2 epochs of the trainer recipe "
                    "(standalone, BN statistics re-estimated on 20 training batches) and ranked again by their "
                    "validation loss")
    ranked, text = runs._final_round(_SearchedLoop(), first, {**options, "rank_by": "score", "finalists": 9,
                                                             "recalibrate_bn": None, "workers": 1}, "cpu", "device")
    assert calls[-1][1] == [0, 1, 2, 3, 4, 5]                                   # at most every candidate
    assert [a.plain_choices()[0] for a, _, _ in ranked] == [5, 1, 3, 0, 4, 2]     # by score; the failure last
    assert calls[-1][2]["workers"] == 1 and calls[-1][2]["recalibrate_bn"] == 0 and "ranked again by their score" in text
    trained.update({0: (math.nan, None), 1: (math.nan, None)})
    with pytest.raises(UserError, match="the training of every finalist failed .*run/derive.log"):
        runs._final_round(_SearchedLoop(), first, {**options, "finalists": 3}, "cpu", "device")
    runs.check_derive_options({"rank_by": "loss", "finalists": 0, "finalist_epochs": 1})
    with pytest.raises(UserError, match="derive.finalists=-1: the number of best candidates"):
        runs.check_derive_options({"rank_by": "score", "finalists": -1, "finalist_epochs": 1})
    with pytest.raises(UserError, match="derive.finalist_epochs=0: each finalist trains at least 1 epoch"):
        runs.check_derive_options({"rank_by": "score", "finalists": 2, "finalist_epochs": 0})


def _arch_json(run_dir) -> dict:
    return json.loads((run_dir / "arch.json").read_text())


@pytest.mark.slow
def test_derive_scores_with_the_searchs_own_estimator(tmp_path):
    """A one-shot search derives one-shot; derive.estimator=inherit trains each candidate from the
    shared weights (repeatably); an inherit search derives by inherit with its own steps, and
    derive.estimator=one_shot takes it back; a config from before these options derives as before."""
    one_shot_run, inherit_run = tmp_path / "one_shot", tmp_path / "inherit"
    run_command("enas-search", *SHORT, f"hydra.run.dir={one_shot_run}")
    run_command("enas-derive", f"run_dir={one_shot_run}")
    one_shot = _arch_json(one_shot_run)
    assert one_shot["derive"]["estimator"] == "search" and "one-shot" in one_shot["derive"]["scored_by"]

    out = run_command("enas-derive", f"run_dir={one_shot_run}", "estimator=inherit", "steps=2", "workers=1").stdout
    inherit = _arch_json(one_shot_run)
    assert "each scored by 2 training steps from the supernet's weights (inherit" in out
    assert inherit["derive"]["steps"] == 2 and "inherit" in inherit["derive"]["scored_by"]
    scores = [row["score"] for row in inherit["ranking"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert all(row["acc"] == row["score"] for row in inherit["ranking"])    # the children's own metrics
    assert scores != [row["score"] for row in one_shot["ranking"]]
    run_command("enas-derive", f"run_dir={one_shot_run}", "estimator=inherit", "steps=2", "workers=1")
    assert _arch_json(one_shot_run)["ranking"] == inherit["ranking"]               # repeatable

    proc = run_command("enas-derive", f"run_dir={one_shot_run}", "estimator=inherit", check=False)
    assert proc.returncode != 0 and "give derive.steps=" in proc.stderr and "Traceback" not in proc.stderr

    run_command("enas-search", *SHORT, "evaluator=inherit", "evaluator.options.steps_per_epoch=2",
                "evaluator.options.workers=1", f"hydra.run.dir={inherit_run}")
    out = run_command("enas-derive", f"run_dir={inherit_run}").stdout
    assert "each scored by 2 training steps from the supernet's weights" in out
    run_command("enas-derive", f"run_dir={inherit_run}", "estimator=one_shot")
    assert "one-shot" in _arch_json(inherit_run)["derive"]["scored_by"]

    # rank_by=loss: the same one-shot scores, ordered by the validation loss; anything else is refused
    out = run_command("enas-derive", f"run_dir={one_shot_run}", "rank_by=loss").stdout
    by_loss = _arch_json(one_shot_run)
    losses = [row["loss"] for row in by_loss["ranking"]]
    assert losses == sorted(losses) and by_loss["derive"]["rank_by"] == "loss"
    assert sorted(r["score"] for r in by_loss["ranking"]) == sorted(r["score"] for r in one_shot["ranking"])
    assert by_loss["derive"]["scored_by"].endswith("ranked by the validation loss (lowest first)")
    assert "ranked by their validation loss" in out and "loss" in out.split("rank ")[1].splitlines()[0]
    proc = run_command("enas-derive", f"run_dir={one_shot_run}", "rank_by=accuracy", check=False)
    assert proc.returncode != 0 and "derive.rank_by='accuracy': choose one of score, loss" in proc.stderr

    # finalists=2: the two best of the one-shot round trained from scratch and ranked again; the rest as before
    out = run_command("enas-derive", f"run_dir={one_shot_run}", "finalists=2", "finalist_epochs=1", "workers=1").stdout
    final = _arch_json(one_shot_run)
    assert "final round: the first 2 candidates, each trained from scratch for 1 epoch" in out
    assert final["derive"]["scored_by"].endswith("then the first 2 trained from scratch for 1 epoch of the trainer "
                                                 "recipe (standalone) and ranked again by their score")
    one_shot_scores = {str(row["choices"]): row["score"] for row in one_shot["ranking"][:2]}
    assert {str(row["choices"]): row["first_round_score"] for row in final["ranking"][:2]} == one_shot_scores
    assert final["ranking"][0]["score"] >= final["ranking"][1]["score"]
    assert final["ranking"][2:] == one_shot["ranking"][2:] and "first_round_score" not in final["ranking"][2]
    assert final["choices"] == final["ranking"][0]["choices"] and final["score"] == final["ranking"][0]["score"]
    proc = run_command("enas-derive", f"run_dir={one_shot_run}", "finalist_epochs=0", "finalists=1", check=False)
    assert proc.returncode != 0 and "derive.finalist_epochs=0: each finalist" in proc.stderr

    # a search config saved before derive had an estimator: the search's own (here one-shot)
    checkpoint = one_shot_run / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=True)
    for key in ("estimator", "steps", "lr", "workers", "recalibrate_bn", "rank_by", "finalists", "finalist_epochs"):
        del state["config"]["derive"][key]
    torch.save(state, checkpoint)
    run_command("enas-derive", f"run_dir={one_shot_run}")
    assert _arch_json(one_shot_run)["ranking"] == one_shot["ranking"]
