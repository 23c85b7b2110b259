"""The search loop: exact resume, non-finite losses, checkpoint contents."""

import math

import pytest
import torch

from enas.checkpoint import load_checkpoint
from enas.build import build_search
from tests.helpers import compose_config, run_loop


def smoke_config(*overrides):
    return compose_config("search", ["experiment=smoke_ptb", "search.log_every=0", *overrides])


def test_resume_continues_exactly(tmp_path):
    """2k steps in one go == k steps, checkpoint, a fresh process-like restart, k more steps.

    k = 12 stops in the middle of epoch 1 (15 omega steps), so the resumed part crosses an
    epoch end with a theta phase; both runs must end with equal parameters.
    """
    cfg = smoke_config("search.epochs=3", "search.checkpoint_every=0")
    whole = run_loop(cfg, tmp_path / "a", 24)
    run_loop(smoke_config("search.epochs=3", "search.checkpoint_every=0"), tmp_path / "b", 12)
    resumed = run_loop(smoke_config("search.epochs=3", "search.checkpoint_every=0"), tmp_path / "b", 24,
                       resume_from=str(tmp_path / "b" / "checkpoint.pt"))
    assert resumed.global_step == whole.global_step == 24
    assert resumed.epoch == whole.epoch == 1
    for name, value in whole.supernet.state_dict().items():
        assert torch.equal(value, resumed.supernet.state_dict()[name]), name
    for name, value in whole.strategy.controller.state_dict().items():
        assert torch.equal(value, resumed.strategy.controller.state_dict()[name]), name
    assert whole.strategy.baseline == resumed.strategy.baseline
    assert whole.history == resumed.history


def test_checkpoint_describes_itself(tmp_path):
    loop = run_loop(smoke_config("search.epochs=1"), tmp_path, None)
    state = load_checkpoint(str(tmp_path / "checkpoint.pt"))
    assert state["kind"] == "search" and state["space"] == "rnn_cell"
    assert state["structure"] == {"num_nodes": 4}
    for key in ("supernet", "strategy", "optimizer", "evaluator", "position", "rng", "config", "best", "history"):
        assert key in state, key
    assert state["position"]["global_step"] == loop.global_step == 15
    assert state["strategy"]["baseline"] is not None
    assert len(state["best"]) > 0


def test_nonfinite_losses_are_skipped_then_stop_the_run(tmp_path):
    cfg = smoke_config("search.epochs=1", "search.max_nonfinite=3", "search.checkpoint_every=2")
    loop = build_search(cfg, str(tmp_path), torch.device("cpu"))
    real_loss = loop.task.loss
    calls = {"n": 0}

    def flaky_loss(model, batch, state, arch=None, aux_weight=0.0):
        calls["n"] += 1
        loss, state = real_loss(model, batch, state, arch)
        if calls["n"] == 3 or calls["n"] >= 6:
            loss = loss * math.nan
        return loss, state

    loop.task.loss = flaky_loss
    from enas.training import NonFiniteLossError
    with pytest.raises(NonFiniteLossError, match="3 non-finite losses in a row"):
        loop.run()
    assert loop.nonfinite_total == 4
    saved = load_checkpoint(str(tmp_path / "checkpoint.pt"))
    # steps 6 and 7 were skipped, step 8 raised: the checkpoint of step 6 (weights untouched by
    # the skipped steps) is the last one written, and nothing overwrote it
    assert saved["position"]["global_step"] == 6 and loop.global_step == 7
    for value in saved["supernet"].values():
        assert torch.isfinite(value).all()


def test_sync_free_steps_keep_the_nonfinite_policy(tmp_path):
    """accel.sync_free: the same skips, count, weights and last checkpoint as the default step;
    the stop comes at the next sync point (here the checkpoint of step 8) instead of inside step 8."""
    from enas.masked_sgd import MaskedSGD
    from enas.training import NonFiniteLossError
    runs = {}
    for mode in ("default", "sync_free"):
        overrides = ["search.epochs=1", "search.max_nonfinite=3", "search.checkpoint_every=2"]
        cfg = smoke_config(*overrides, *(["accel.sync_free=true"] if mode == "sync_free" else []))
        loop = build_search(cfg, str(tmp_path / mode), torch.device("cpu"))
        assert loop.stepper.sync_free == (mode == "sync_free")
        assert isinstance(loop.optimizer, MaskedSGD) == (mode == "sync_free")
        real_loss, calls = loop.task.loss, {"n": 0}

        def flaky_loss(model, batch, state, arch=None, aux_weight=0.0, real_loss=real_loss, calls=calls):
            calls["n"] += 1
            loss, state = real_loss(model, batch, state, arch)
            return (loss * math.nan if calls["n"] == 3 or calls["n"] >= 6 else loss), state

        loop.task.loss = flaky_loss
        with pytest.raises(NonFiniteLossError, match="3 non-finite losses in a row"):
            loop.run()
        runs[mode] = loop
        saved = load_checkpoint(str(tmp_path / mode / "checkpoint.pt"))
        assert saved["position"]["global_step"] == 6 and saved["nonfinite_total"] == 2
    assert runs["default"].global_step == 7 and runs["sync_free"].global_step == 8
    assert runs["default"].nonfinite_total == runs["sync_free"].nonfinite_total == 4
    for name, value in runs["default"].supernet.state_dict().items():
        assert torch.equal(value, runs["sync_free"].supernet.state_dict()[name]), name


def test_sync_free_fair_groups_equal_the_default_step(tmp_path):
    """FairNAS groups (one update on the mean loss of k architectures) through step_mean_nosync."""
    loops = {}
    for mode in ("default", "sync_free"):
        cfg = smoke_config("search.epochs=1", "search.fair_sampling=true", f"accel.sync_free={mode == 'sync_free'}")
        loops[mode] = run_loop(cfg, tmp_path / mode, 4)
    assert loops["sync_free"].stepper.sync_free and loops["sync_free"].stepper.nonfinite_total == 0
    for name, value in loops["default"].supernet.state_dict().items():
        assert torch.equal(value, loops["sync_free"].supernet.state_dict()[name]), name


def test_static_graph_search_follows_the_eager_search(tmp_path):
    """accel.static_graph: same seed, same initial weights, same architectures, same weights after
    6 omega steps with momentum and weight decay (up to float rounding); unused rows untouched."""
    from enas.spaces.rnn_cell_static import StaticRNNCellSupernet
    loops = {}
    for mode in ("eager", "static"):
        cfg = smoke_config("search.epochs=1", "search.optim.momentum=0.9", "search.optim.weight_decay=1e-3",
                           "space.structure.num_nodes=7", f"accel.static_graph={mode == 'static'}")
        loops[mode] = run_loop(cfg, tmp_path / mode, 6)
    static = loops["static"].supernet
    assert isinstance(static, StaticRNNCellSupernet) and loops["static"].metadata["sizes"]["static_graph"]
    for name, value in loops["eager"].supernet.state_dict().items():
        assert torch.allclose(value, static.state_dict()[name], rtol=1e-4, atol=1e-6), name
    eager = loops["eager"]
    unused = [name for name, p in eager.supernet.edges.items() if p not in eager.optimizer.state]
    assert unused                         # edges no sampled architecture used: never decayed, never moved
    for name in unused:
        assert torch.equal(static.state_dict()[f"edges.{name}"], eager.supernet.edges[name]), name


def test_the_omega_step_trains_the_aux_head(tmp_path):
    """ENAS micro search adds the aux head's loss (weight 0.4) to the omega step."""
    cfg = compose_config("search", ["experiment=smoke_micro", "++space.sizes.aux_head=true", "search.aux_weight=0.4",
                                    "search.epochs=1", "search.omega_steps=2", "search.strategy_steps=1"])
    loop = build_search(cfg, str(tmp_path), torch.device("cpu"))
    seen = []
    real_loss = loop.task.loss

    def recording_loss(model, batch, state=None, arch=None, aux_weight=0.0):
        seen.append(aux_weight)
        return real_loss(model, batch, state, arch, aux_weight=aux_weight)

    loop.task.loss = recording_loss
    loop.run()
    assert seen == [0.4, 0.4]
    batch = next(iter(loop.task.train_batches(0)))
    arch = loop.strategy.train_samples(1)[0]
    torch.manual_seed(0)
    with_aux = real_loss(loop.supernet.train(), batch, None, arch, aux_weight=0.4)[0]
    torch.manual_seed(0)
    without = real_loss(loop.supernet, batch, None, arch, aux_weight=0.0)[0]
    assert with_aux.item() > without.item() + 1e-3       # the aux loss is really in the sum


def test_one_shot_rewards_start_from_a_fresh_recurrent_state(tmp_path):
    """The official code scores every architecture from zero state: the previous one does not matter."""
    from enas.evaluators import OneShot
    loop = build_search(smoke_config("search.epochs=1"), str(tmp_path), torch.device("cpu"))
    a, b, c = loop.strategy.ask(3)

    def reward_of_b_after(first, **options):
        evaluator = OneShot(loop.task, loop.supernet, **options)
        evaluator.position = 0
        evaluator.evaluate([first])
        return evaluator.evaluate([b])[0]

    assert reward_of_b_after(a) == reward_of_b_after(c)
    assert reward_of_b_after(a, fresh_state=False) != reward_of_b_after(c, fresh_state=False)
    averaged = OneShot(loop.task, loop.supernet, batches_per_reward=3)
    averaged.evaluate([a])
    assert averaged.position == 3


def test_shared_batches_score_the_architectures_of_one_call_on_the_same_batches(tmp_path, monkeypatch):
    """Common random numbers: every architecture of one call sees the same batches, and the stream
    moves on by one reward's batches per call, not per architecture."""
    from enas.evaluators import OneShot
    loop = build_search(smoke_config("search.epochs=1"), str(tmp_path), torch.device("cpu"))
    a, b = loop.strategy.ask(2)
    seen = []                                            # (architecture, batch) per scored batch
    score = loop.task.reward
    monkeypatch.setattr(loop.task, "reward", lambda net, batch, state, arch: (
        seen.append((arch, batch)) or score(net, batch, state, arch)))

    def batches_of(arch):
        return [batch for x, batch in seen if x is arch]

    shared = OneShot(loop.task, loop.supernet, batches_per_reward=2, shared_batches=True)
    first, _, again = shared.evaluate([a, b, a])
    assert first == again and shared.position == 2
    assert len(seen) == 6 and batches_of(a)[:2] == batches_of(b) == batches_of(a)[2:]
    seen.clear()
    not_shared = OneShot(loop.task, loop.supernet, batches_per_reward=2)
    not_shared.evaluate([a, b])
    assert not_shared.position == 4
    assert all(x is not y for x in batches_of(a) for y in batches_of(b))


def test_fair_group_trains_every_op_of_every_decision_once():
    import numpy as np
    from enas.spaces import build_space
    from enas.strategies.base import fair_group
    space = build_space("micro_cnn", num_nodes=3)
    decisions = space.decisions()
    group = fair_group(space.name, decisions, np.random.default_rng(0))
    assert len(group) == 5                               # the 5 micro ops
    for i, d in enumerate(decisions):
        values = [arch.choices[i] for arch in group]
        if d.kind == "op":
            assert sorted(values) == list(range(5)), d.name
        else:                                            # inputs: every value, fewer choices repeat
            assert set(values) == set(range(d.num_choices)) or len(set(values)) == 5, d.name
    assert [space.validate(a) for a in group] == group


def test_step_mean_is_one_update_on_the_mean_gradient():
    from enas.training import StepRunner
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    x = torch.randn(4, 3)
    targets = [torch.randn(4, 1) for _ in range(3)]
    reference = torch.nn.Linear(3, 1)
    reference.load_state_dict(model.state_dict())
    mean_loss = sum(torch.nn.functional.mse_loss(reference(x), t) for t in targets) / 3
    mean_loss.backward()
    expected = {n: p.detach() - 0.1 * p.grad for n, p in reference.named_parameters()}
    stepper = StepRunner(torch.optim.SGD(model.parameters(), lr=0.1), model.parameters())
    forwards = [lambda t=t: (torch.nn.functional.mse_loss(model(x), t), None) for t in targets]
    value, _ = stepper.step_mean(forwards)
    assert value == pytest.approx(mean_loss.item(), rel=1e-6)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), expected[name])


def test_warmup_epochs_train_on_uniform_samples_without_a_theta_phase(tmp_path):
    cfg = smoke_config("search.epochs=2", "search.warmup_epochs=1", "search.omega_steps=3", "search.strategy_steps=1")
    loop = build_search(cfg, str(tmp_path), torch.device("cpu"))
    told, sampled = [], []
    real_tell, real_samples = loop.strategy.tell, loop.strategy.train_samples
    loop.strategy.tell = lambda archs, rewards: (told.append(loop.epoch), real_tell(archs, rewards))[1]
    loop.strategy.train_samples = lambda n: (sampled.append(loop.epoch), real_samples(n))[1]
    loop.run()
    assert set(told) == {1} and sampled == [1, 1, 1]     # epoch 0 (the warm-up): no tell, no controller sample
    assert "reward_mean" not in loop.history[0] and "reward_mean" in loop.history[1]


def test_fair_sampling_search_runs_k_forwards_per_update(tmp_path):
    cfg = compose_config("search", ["experiment=smoke_micro", "search.fair_sampling=true", "search.epochs=1",
                                    "search.omega_steps=2", "search.strategy_steps=1"])
    loop = build_search(cfg, str(tmp_path), torch.device("cpu"))
    calls, steps = [], []
    real_loss, real_step = loop.task.loss, loop.optimizer.step
    loop.task.loss = lambda *a, **k: (calls.append(1), real_loss(*a, **k))[1]
    loop.optimizer.step = lambda *a, **k: (steps.append(1), real_step(*a, **k))[1]
    loop.run()
    assert len(steps) == 2 and len(calls) == 2 * 5


class _RecordingWriter:
    """Stands in for a SummaryWriter: keeps (tag, step) of every scalar."""

    def __init__(self):
        self.scalars = []

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, step))

    def __getattr__(self, name):                    # images, histograms, flush: not recorded
        return lambda *args, **kwargs: None


def test_strategy_tags_count_updates_across_a_resume(tmp_path):
    """controller/* has one point per REINFORCE update at x = 1, 2, ... (not every update of an
    epoch stacked at one omega step), and a resumed run goes on counting."""
    cfg = smoke_config("search.epochs=2", "search.strategy_steps=3")
    writer = _RecordingWriter()
    loop = build_search(cfg, str(tmp_path), torch.device("cpu"), writer=writer)
    loop.run()
    steps = [step for tag, step in writer.scalars if tag == "controller/entropy"]
    assert steps == list(range(1, 7)) and loop.strategy_updates == 6
    resumed = build_search(cfg, str(tmp_path), torch.device("cpu"))
    resumed.load_state_dict(load_checkpoint(loop.checkpoint_path))
    assert resumed.strategy_updates == 6
