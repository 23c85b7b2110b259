"""Controller and REINFORCE: shapes, teacher forcing, state, and a real learning test."""

import torch

from enas.strategies.base import build_strategy
from enas.strategies.controller import Controller


def test_sampled_archs_are_valid_and_scored_consistently(toy_space):
    torch.manual_seed(0)
    ctrl = Controller(toy_space.decisions(), lstm_size=16)
    out = ctrl(5)
    assert len(out.choices) == len(toy_space.decisions())
    assert out.log_prob.shape == (5,) and torch.all(out.log_prob < 0)
    again = ctrl(5, actions=out.choices)   # teacher forcing reproduces the log-probabilities
    assert torch.allclose(again.log_prob, out.log_prob, atol=1e-6)
    strategy = build_strategy("reinforce", toy_space, lstm_size=16)
    for arch in strategy.ask(8):
        toy_space.validate(arch)


def test_greedy_is_deterministic(toy_space):
    strategy = build_strategy("reinforce", toy_space, lstm_size=16)
    assert strategy.greedy() == strategy.greedy()


def test_skip_penalty_pulls_skip_rate_to_target(toy_space):
    torch.manual_seed(0)
    strategy = build_strategy("reinforce", toy_space, lstm_size=16, skip_target=0.1,
                              skip_weight=5.0, lr=0.02, entropy_weight=0.0, tanh_c=0.0, temperature=1.0)
    first = strategy.tell(strategy.ask(32), [0.0] * 32)["skip_kl"]
    for _ in range(60):
        stats = strategy.tell(strategy.ask(32), [0.0] * 32)
    assert stats["skip_kl"] < first / 4
    assert stats["skip_rate"] < 0.25


def test_reinforce_raises_probability_of_rewarded_arch(toy_space):
    """A real learning test: reward 1 for one target architecture's op choices, 0 otherwise."""
    torch.manual_seed(1)
    strategy = build_strategy("reinforce", toy_space, lstm_size=32, lr=0.01, entropy_weight=0.0,
                              baseline_decay=0.9, tanh_c=2.5, temperature=1.0)
    op_index = [i for i, d in enumerate(toy_space.decisions()) if d.kind == "op"]
    target = {i: 2 for i in op_index}

    def reward(arch):
        return sum(arch.choices[i] == target[i] for i in op_index) / len(op_index)

    probe = strategy.ask(1)[0]
    probe = probe.__class__(probe.space, tuple(target.get(i, c) for i, c in enumerate(probe.choices)))
    before = strategy.log_prob([probe]).item()
    for _ in range(150):
        archs = strategy.ask(8)
        strategy.tell(archs, [reward(a) for a in archs])
    after = strategy.log_prob([probe]).item()
    mean_reward = sum(reward(a) for a in strategy.ask(64)) / 64
    assert after > before + 2.0, (before, after)
    assert mean_reward > 0.8


def test_state_dict_resumes_exactly(toy_space, tmp_path):
    torch.manual_seed(3)
    a = build_strategy("reinforce", toy_space, lstm_size=16)
    for _ in range(3):
        archs = a.ask(4)
        a.tell(archs, [float(i) for i in range(4)])
    torch.save(a.state_dict(), tmp_path / "s.pt")
    b = build_strategy("reinforce", toy_space, lstm_size=16)
    b.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    rng = torch.get_rng_state()
    archs_a = a.ask(4)
    stats_a = a.tell(archs_a, [1.0, 2.0, 3.0, 4.0])
    torch.set_rng_state(rng)
    archs_b = b.ask(4)
    stats_b = b.tell(archs_b, [1.0, 2.0, 3.0, 4.0])
    assert archs_a == archs_b and stats_a == stats_b
    assert a.best(3) == b.best(3)
