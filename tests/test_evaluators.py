"""Evaluators: one-shot registry, standalone/inherit children on engines, failures, resume, smoke runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import numpy as np
import torch

from enas.arch import Architecture
from enas.build import build_evaluator, build_task
from enas.evaluators import child_seed, inherited_state
from enas.spaces import build_space
from enas.strategies.base import uniform_architecture
from enas.utils import UserError
from tests.faulty_children import FaultyChild
from tests.helpers import run_command


DATA = {"name": "digits", "path": None, "num_valid": 297, "batch_size": 32, "eval_batch_size": 64,
        "train_limit": 200, "test_limit": None, "limit_per_class": None,
        "augment": {"crop_padding": 0, "flip": False, "cutout": 0}}
TRAINER = {"epochs": 1, "steps_per_epoch": 2, "batch_size": 32, "valid_batches": 1, "log_every": 0,
           "optim": {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.0, "grad_clip": 5.0,
                     "schedule": "constant"},
           "aux_weight": 0.0, "drop_path": 0.0, "cutout": None, "sizes": {}}


@pytest.fixture(scope="module")
def digits():
    return build_task(DATA, "cpu", 0)


def setup(task, space_name="nas_cnn", structure=None, sizes=None):
    space = build_space(space_name, **(structure or {"num_layers": 2}))
    sizes = {**(sizes or {"width_multiplier": 0.25}), **task.model_sizes()}
    return space, sizes


def make(task, space, sizes, run_dir=None, name="standalone", supernet=None, child_fn=None, **options):
    """An evaluator built by the build layer, as a search with these options would build it."""
    cfg = {"data": DATA, "trainer": TRAINER, "seed": 0, "evaluator": {"name": name}}
    return build_evaluator(cfg, task, space, supernet, sizes, None if run_dir is None else str(run_dir), "cpu",
                           options=options, child_fn=child_fn)


def archs_of(space, n, seed=0):
    g = np.random.default_rng(seed)
    return [uniform_architecture(space.name, space.decisions(), g) for _ in range(n)]


def journal(run_dir):
    path = Path(run_dir) / "evaluations.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_registry_errors(digits, toy_space):
    with pytest.raises(UserError, match="known: one_shot, standalone, inherit"):
        make(digits, toy_space, {}, name="magic")
    with pytest.raises(UserError, match="needs a supernet"):
        make(digits, toy_space, {}, name="inherit")
    with pytest.raises(UserError, match="bad option"):
        make(digits, toy_space, {}, nonsense=1)
    space, sizes = setup(digits)
    with pytest.raises(UserError, match="mode"):
        make(digits, space, sizes, mode="later")
    with pytest.raises(UserError, match="unknown engine"):
        make(digits, space, sizes, engine="cluster")


def test_inline_sync_is_deterministic_and_applies_knobs(digits, tmp_path):
    space, sizes = setup(digits)
    ev = make(digits, space, sizes, tmp_path, engine="inline", width_multiplier=0.5, steps_per_epoch=2)
    assert ev.name == "standalone" and not ev.asynchronous
    archs = archs_of(space, 3)
    ev.begin_phase(0)
    first = ev.evaluate(archs)
    assert len(first) == 3 and all(0.0 <= r <= 1.0 for r in first)
    job = ev.make_job(archs[0], 3)
    assert job["sizes"]["width_multiplier"] == 0.5 and job["training"]["steps_per_epoch"] == 2
    assert job["seed"] == child_seed(0, 0, 3)
    again = make(digits, space, sizes, None, engine="inline", width_multiplier=0.5, steps_per_epoch=2)
    again.begin_phase(0)
    assert again.evaluate(archs) == first              # children seeded from (seed, phase, index)
    again.begin_phase(0)
    scored = again.scored(archs)                       # the same rewards, with each child's metrics
    assert [r for r, _ in scored] == first and all(set(m) >= {digits.metric, "loss"} for _, m in scored)
    assert [digits.score(m) for _, m in scored] == first
    entries = journal(tmp_path)
    assert [e["index"] for e in entries] == [0, 1, 2]
    assert all(e["phase"] == 0 and e["attempts"] == 1 and not e["failed"] for e in entries)
    state = ev.state_dict()
    fresh = make(digits, space, sizes, tmp_path, engine="inline")
    fresh.load_state_dict(state)
    assert fresh.state_dict() == state == {"phase": 0, "index": 3, "evaluated": 3, "reused": 0, "failed": 0}


def test_recalibrated_bn_statistics_score_a_short_child(digits, monkeypatch):
    """recalibrate_bn=n: the child's BN running statistics are re-estimated on n training batches
    before its reward (the reward then differs); off (0), the job and the journal fingerprint
    are those of runs made before the option existed."""
    import enas.training
    space, sizes = setup(digits)
    archs = archs_of(space, 2)
    plain = make(digits, space, sizes, engine="inline", steps_per_epoch=2)
    assert "recalibrate_bn" not in plain.make_job(archs[0], 0)["training"]
    calls = []
    original = enas.training.recalibrate_bn

    def spy(model, task, arch, batches):
        calls.append(batches)
        original(model, task, arch, batches)
        norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert norms and all(m.num_batches_tracked.item() == batches and m.momentum == 0.1 for m in norms)

    monkeypatch.setattr(enas.training, "recalibrate_bn", spy)
    recalibrated = make(digits, space, sizes, engine="inline", steps_per_epoch=2, recalibrate_bn=3)
    assert recalibrated.make_job(archs[0], 0)["training"]["recalibrate_bn"] == 3
    assert recalibrated.journal.fidelity != plain.journal.fidelity
    plain.begin_phase(0)
    recalibrated.begin_phase(0)
    before, after = plain.scored(archs), recalibrated.scored(archs)
    assert calls == [3, 3] and [r for r, _ in before] != [r for r, _ in after]
    assert [digits.score(m) for _, m in after] == [r for r, _ in after]
    with pytest.raises(UserError, match="recalibrate_bn is a number of training batches >= 0, got -1"):
        make(digits, space, sizes, engine="inline", recalibrate_bn=-1)


def test_train_limit_reaches_the_child_task(digits):
    space, sizes = setup(digits)
    ev = make(digits, space, sizes, engine="inline", train_limit=64)
    job = ev.make_job(archs_of(space, 1)[0], 0)
    assert job["train_limit"] == 64 and DATA["train_limit"] == 200
    assert job["recipe"]["data"]["train_limit"] == 200        # the recipe itself is shared, untouched


def test_process_pool_sync_and_async_with_a_failure_and_a_dying_worker(digits, tmp_path, caplog):
    space, sizes = setup(digits)
    child = FaultyChild(call_log=str(tmp_path / "calls.jsonl"), index=1, crash_once=str(tmp_path / "crashed"),
                        raise_once=str(tmp_path / "raised"))
    ev = make(digits, space, sizes, tmp_path, workers=2, engine="process", retries=2, child_fn=child)
    try:
        ev.begin_phase(0)
        archs = archs_of(space, 3)
        rewards = ev.evaluate(archs)
        # index 1 died once (pool recreated), then raised once, then succeeded
        assert all(0.0 <= r <= 1.0 for r in rewards)
        assert any("worker process died" in m for m in caplog.messages)
        assert any("RuntimeError: injected failure" in m and "retry" in m for m in caplog.messages)
        assert (tmp_path / "crashed").exists() and (tmp_path / "raised").exists()
        by_index = {e["index"]: e for e in journal(tmp_path)}
        assert by_index[1]["attempts"] == 3 and not by_index[1]["failed"]

        ev.mode = "async"
        ev.begin_phase(1)
        told, proposed = [], []

        def propose(n):
            proposed.append(n)
            return archs_of(space, 1, seed=100 + len(proposed))

        ev.run_async(propose, lambda a, r: told.append((a, r)), budget=4)
        assert proposed == [1, 1, 1, 1] and len(told) == 4
        assert all(len(a) == 1 and len(r) == 1 for a, r in told)
        assert sorted(e["index"] for e in journal(tmp_path) if e["phase"] == 1) == [0, 1, 2, 3]
    finally:
        ev.close()


def test_failure_reward_after_retries(digits, tmp_path, caplog):
    space, sizes = setup(digits, structure={"num_layers": 1})
    ev = make(digits, space, sizes, tmp_path, engine="inline", retries=1, failure_reward=-1.0,
              child_fn=FaultyChild(always_raise=True))
    ev.begin_phase(0)
    assert ev.evaluate(archs_of(space, 1)) == [-1.0]
    messages = caplog.messages
    ev.begin_phase(1)
    assert ev.scored(archs_of(space, 1)) == [(-1.0, None)]        # a failed child has no metrics
    assert len(messages) == 2 and "retry 1/1" in messages[0] and "after 2 attempts" in messages[1]
    entry = journal(tmp_path)[0]
    assert entry["failed"] and entry["reward"] == -1.0 and entry["attempts"] == 2 and entry["error"]


def test_resume_mid_batch_skips_finished_children(digits, tmp_path):
    space, sizes = setup(digits)
    calls = tmp_path / "calls.jsonl"
    child = FaultyChild(call_log=str(calls), index=2, interrupt_once=str(tmp_path / "interrupted"))
    archs = archs_of(space, 4)
    ev = make(digits, space, sizes, tmp_path, engine="inline", child_fn=child)
    ev.begin_phase(5)
    with pytest.raises(KeyboardInterrupt):
        ev.evaluate(archs)
    assert [e["index"] for e in journal(tmp_path)] == [0, 1]
    first_calls = len(calls.read_text().splitlines())
    resumed = make(digits, space, sizes, tmp_path, engine="inline", child_fn=child)
    resumed.begin_phase(5)
    scored = resumed.scored(archs)
    rewards = [r for r, _ in scored]
    assert len(rewards) == 4 and all(r is not None for r in rewards)
    assert all(m is not None for _, m in scored)          # journal hits bring the child's metrics too
    new_calls = [json.loads(line)["index"] for line in calls.read_text().splitlines()[first_calls:]]
    assert new_calls == [2, 3]                           # only the unfinished children were trained
    assert resumed.reused == 2 and resumed.evaluated == 2
    old = {e["index"]: e["reward"] for e in journal(tmp_path)[:2]}
    assert rewards[:2] == [old[0], old[1]]


def test_inherited_weights_start_with_a_lower_loss(digits):
    space, sizes = setup(digits, space_name="macro_cnn", structure={"num_layers": 3}, sizes={"channels": 8})
    torch.manual_seed(0)
    supernet = space.build_supernet(**sizes)
    optimizer = torch.optim.SGD(supernet.parameters(), lr=0.05, momentum=0.9)
    g = np.random.default_rng(1)
    supernet.train()
    for epoch in range(10):
        for batch in digits.train_batches(epoch):
            arch = uniform_architecture(space.name, space.decisions(), g)
            loss, _ = digits.loss(supernet, batch, None, arch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    arch = uniform_architecture(space.name, space.decisions(), g)
    batch = next(iter(digits.train_batches(9)))
    fresh = space.build_network(arch, **sizes)
    inherited = space.build_network(arch, **sizes)
    inherited.load_state_dict(inherited_state(space, supernet, arch, sizes))
    with torch.no_grad():
        fresh_loss = digits.loss(fresh.train(), batch, None, None)[0].item()
        inherited_loss = digits.loss(inherited.train(), batch, None, None)[0].item()
    assert inherited_loss < fresh_loss - 0.2, (inherited_loss, fresh_loss)

    ev = make(digits, space, sizes, name="inherit", supernet=supernet, engine="inline")
    assert ev.name == "inherit"
    job = ev.make_job(arch, 0)
    assert set(job["init_state"]) == set(fresh.state_dict()) and job["init_state"]
    ev.begin_phase(0)
    assert all(0.0 <= r <= 1.0 for r in ev.evaluate([arch]))
    with pytest.raises(UserError, match="width_multiplier"):
        make(digits, space, sizes, name="inherit", supernet=supernet, width_multiplier=0.5)


def test_repeated_inherit_estimates_train_on_other_batches(digits):
    """A rank check's estimator.repeats=k trains each inherited child k times on other batch orders
    (another data seed, the same split): the repeats differ, so their mean is not one training."""
    from types import SimpleNamespace
    from enas import runs
    space, sizes = setup(digits, space_name="macro_cnn", structure={"num_layers": 3}, sizes={"channels": 8})
    torch.manual_seed(0)
    loop = SimpleNamespace(task=digits, space=space, supernet=space.build_supernet(**sizes), metadata={"sizes": sizes})
    config = {"data": {**DATA, "split_seed": None}, "trainer": TRAINER, "seed": 3}
    archs = archs_of(space, 3)
    truth = {"workers": 1, "engine": "inline"}
    once = {"name": "inherit", "steps": 5, "lr": 0.1, "repeats": 1}

    def scores(estimator):
        return [s for s, _ in runs._trained_estimates(estimator, config, loop, archs, None, truth, "cpu")]

    first = scores(once)
    assert scores(once) == first                                         # one training is repeatable
    estimates = runs._trained_estimates(once, config, loop, archs, None, truth, "cpu")
    assert all(set(metrics) == {"acc", "loss"} and metrics["acc"] == score for score, metrics in estimates)
    second = [2 * m - f for m, f in zip(scores({**once, "repeats": 2}), first)]
    assert any(abs(a - b) > 1e-6 for a, b in zip(first, second)), (first, second)
    again = runs.reseeded(config, 4)
    assert again["seed"] == 4 and again["data"]["split_seed"] == 3 and config["data"]["split_seed"] is None
    assert runs.reseeded({**config, "data": {**DATA, "split_seed": 0}}, 4)["data"]["split_seed"] == 0
    assert "split_seed" not in runs.reseeded({"data": {"name": "ptb"}, "seed": 1}, 2)["data"]     # no split to pin


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["smoke_nas_cnn", "smoke_nas_rnn"])
def test_smoke_search_derive_train(preset, tmp_path):
    search_dir, train_dir = tmp_path / "search", tmp_path / "train"
    out = run_command("enas-search", f"experiment={preset}", "evaluator=standalone", "search.epochs=1",
                      f"hydra.run.dir={search_dir}", cwd=tmp_path).stdout
    assert "evaluator standalone" in out and "no supernet" in out
    assert len(journal(search_dir)) == 4
    run_command("enas-derive", f"run_dir={search_dir}", cwd=tmp_path)
    assert (search_dir / "arch.json").exists()
    run_command("enas-train", f"arch={search_dir / 'arch.json'}", f"experiment={preset}",
                f"hydra.run.dir={train_dir}", cwd=tmp_path)
    assert (train_dir / "result.json").exists()
