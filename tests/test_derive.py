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

    # a search config saved before derive had an estimator: the search's own (here one-shot)
    checkpoint = one_shot_run / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=True)
    for key in ("estimator", "steps", "lr", "workers", "recalibrate_bn", "rank_by"):
        del state["config"]["derive"][key]
    torch.save(state, checkpoint)
    run_command("enas-derive", f"run_dir={one_shot_run}")
    assert _arch_json(one_shot_run)["ranking"] == one_shot["ranking"]
