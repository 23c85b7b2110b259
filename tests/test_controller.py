"""Controller and REINFORCE: shapes, teacher forcing, state, a real learning test, and the
details of the official ENAS controllers (priors, skip parametrisation and penalty, aggregation)."""

import math

import pytest
import torch

from enas.arch import Decision
from enas.spaces import build_space
from enas.spaces.micro_cnn import MICRO_OPS
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


# --- fidelity to the official controllers ---------------------------------------------------------

# melodyguan/enas src/cifar10/micro_controller.py:100-109 in the official op order
OFFICIAL_OPS = ("sep_conv3x3", "sep_conv5x5", "avg_pool3x3", "max_pool3x3", "identity")
OFFICIAL_INIT = (10.0, 10.0, 0.0, 0.0, 0.0)
OFFICIAL_NORMAL_FIXED = (0.25, 0.25, -0.25, -0.25, -0.25)


def choice_probs(ctrl: Controller) -> torch.Tensor:
    """Probabilities of every choice of a one-decision controller, by teacher forcing."""
    k = ctrl.decisions[0].num_choices
    return ctrl(k, actions=[torch.arange(k)]).log_prob.exp()


def test_micro_op_prior_shifts_initial_probabilities():
    """Official micro recipe: tanh_c 1.10, op_tanh_reduce 2.5, no temperature."""
    ops = [d for d in build_space("micro_cnn", num_nodes=2).decisions() if d.kind == "op"]
    normal, reduce = ops[0], ops[-1]
    assert normal.name.startswith("normal") and reduce.name.startswith("reduce")
    order = [OFFICIAL_OPS.index(op) for op in MICRO_OPS]   # official values in this project's op order
    init = torch.tensor([OFFICIAL_INIT[i] for i in order])
    fixed = torch.tensor([OFFICIAL_NORMAL_FIXED[i] for i in order])
    op_tanh = 1.10 / 2.5
    for decision, extra in ((normal, fixed), (reduce, torch.zeros(5))):
        torch.manual_seed(0)
        ctrl = Controller([decision], lstm_size=8, tanh_c=1.10, op_tanh_reduce=2.5, temperature=1.0, priors=True)
        with torch.no_grad():
            ctrl.op_heads[0].weight.zero_()   # logits = the learned bias alone
        expected = torch.softmax(op_tanh * torch.tanh(init) + extra, 0)
        assert torch.allclose(choice_probs(ctrl), expected, atol=1e-6)
    # normal cell: each sep conv ~0.315, each other op ~0.123 (uniform would be 0.2)
    sep = [MICRO_OPS.index("sep_conv3x3"), MICRO_OPS.index("sep_conv5x5")]
    normal_probs = torch.softmax(op_tanh * torch.tanh(init) + fixed, 0)
    assert normal_probs[sep].min() > 0.31 and normal_probs.max() < 0.32
    # with the controller's own random weights the shift survives; without priors it is near uniform
    torch.manual_seed(0)
    with_prior = choice_probs(Controller([normal], lstm_size=8, tanh_c=1.10, op_tanh_reduce=2.5,
                                         temperature=1.0, priors=True))
    torch.manual_seed(0)
    without = choice_probs(Controller([normal], lstm_size=8, tanh_c=1.10, op_tanh_reduce=2.5, temperature=1.0))
    assert with_prior[sep].min() > 0.28 and with_prior.max() < 0.33
    assert (without - 0.2).abs().max() < 0.02


def test_prior_bias_is_learned_fixed_bias_is_not():
    normal = build_space("micro_cnn", num_nodes=2).decisions()[2]
    ctrl = Controller([normal], lstm_size=8, tanh_c=1.1, op_tanh_reduce=2.5, temperature=1.0, priors=True)
    names = {n for n, _ in ctrl.named_parameters()}
    assert "op_heads.0.bias" in names and not any("fixed" in n for n in names)
    assert not any("fixed" in k for k in ctrl.state_dict())   # not state: it comes from the space
    with pytest.raises(ValueError, match="init_bias"):
        Decision("x", "input", 3, init_bias=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="fixed_bias has 2 values"):
        Decision("x", "op", 3, ("a", "b", "c"), fixed_bias=(1.0, 2.0))


def test_distance_prior_on_rnn_inputs():
    """ptb_enas_controller.py:122-127: logits = tanh_c * tanh(q / T) - (i - j)^2 / 6."""
    node3_input = build_space("rnn_cell", num_nodes=4).decisions()[5]
    assert node3_input.name == "node3_input"
    ctrl = Controller([node3_input], lstm_size=8, tanh_c=2.5, temperature=5.0, priors=True)
    with torch.no_grad():
        ctrl.attn_v.weight.zero_()        # attention scores q = 0
    expected = torch.softmax(torch.tensor([-9.0, -4.0, -1.0]) / 6.0, 0)
    assert torch.allclose(choice_probs(ctrl), expected, atol=1e-6)
    off = Controller([node3_input], lstm_size=8, tanh_c=2.5, temperature=5.0)
    with torch.no_grad():
        off.attn_v.weight.zero_()
    assert torch.allclose(choice_probs(off), torch.full((3,), 1 / 3), atol=1e-6)


def official_skip_penalty(qs: list[torch.Tensor], tanh_c: float, temperature: float, target: float) -> float:
    """general_controller.py:145,216-233,268 written out for one architecture."""
    penalties = []
    for q in qs:                                             # q: (k,) attention scores of one layer
        logit = torch.stack([-q, q], dim=1) / temperature    # (k, 2)
        logit = tanh_c * torch.tanh(logit)
        skip_prob = torch.sigmoid(logit)
        targets = torch.tensor([1.0 - target, target])
        penalties.append((skip_prob * torch.log(skip_prob / targets)).sum())
    return torch.stack(penalties).mean().item()


def test_skip_penalty_at_init_equals_official_formula():
    decisions = build_space("macro_cnn", num_layers=12).decisions()
    torch.manual_seed(0)
    ctrl = Controller(decisions, lstm_size=16, tanh_c=1.5, temperature=1.0, skip_target=0.4,
                      skip_pair=True, skip_penalty="mean")
    scores = []
    ctrl.attn_v.register_forward_hook(lambda m, i, out: scores.append(out.squeeze(-1)))
    with torch.no_grad():
        out = ctrl(2)
    assert len(scores) == 11 and [s.shape[1] for s in scores] == list(range(1, 12))
    for a in range(2):
        want = official_skip_penalty([s[a] for s in scores], 1.5, 1.0, 0.4)
        assert out.skip_kl[a].item() == pytest.approx(want, rel=1e-5)
    # at q = 0 every bit has sigmoid(0) = 0.5: the mean is the sum / 11 (the old, 11x stronger sum)
    with torch.no_grad():
        ctrl.attn_v.weight.zero_()
        kl_bit = 0.5 * math.log(0.5 / 0.4) + 0.5 * math.log(0.5 / 0.6)
        assert ctrl(1).skip_kl.item() == pytest.approx(kl_bit * sum(range(1, 12)) / 11, rel=1e-5)
        summed = Controller(decisions, lstm_size=16, tanh_c=1.5, temperature=1.0, skip_penalty="sum")
        summed.attn_v.weight.zero_()
        assert summed(1).skip_kl.item() == pytest.approx(kl_bit * sum(range(1, 12)), rel=1e-5)


def test_skip_bits_are_a_two_way_softmax():
    """A bit is on with probability softmax([-s, s])[1] = sigmoid(2 s) (general_controller.py:220-237)."""
    skip = Decision("skip", "skip", 3)
    for pair, scale in ((True, 2.0), (False, 1.0)):
        torch.manual_seed(0)
        ctrl = Controller([skip], lstm_size=8, tanh_c=1.5, temperature=1.0, skip_pair=pair)
        scores = []
        ctrl.attn_v.register_forward_hook(lambda m, i, out: scores.append(out.squeeze(-1)))
        with torch.no_grad():
            lp = ctrl(1, actions=[torch.ones(1, 3, dtype=torch.long)]).log_prob
        s = 1.5 * torch.tanh(scores[0][0])
        assert lp.item() == pytest.approx(torch.nn.functional.logsigmoid(scale * s).sum().item(), rel=1e-5)


def test_one_update_aggregates_all_archs_with_the_shared_baseline(toy_space):
    """10 architectures per theta step = one Adam step on the mean of their losses (num_aggregate)."""
    rewards = [0.1 * i for i in range(10)]
    results = []
    for last in (rewards[-1], 5.0):
        torch.manual_seed(0)
        strategy = build_strategy("reinforce", toy_space, lstm_size=16, adam_beta1=0.0, adam_eps=1e-3,
                                  baseline_decay=0.9)
        archs = strategy.ask(10)
        strategy.tell(archs, rewards[:-1] + [last])
        steps = {int(s["step"]) for s in strategy.optimizer.state.values()}
        assert steps == {1}
        results.append((strategy.baseline, [p.detach().clone() for p in strategy.controller.parameters()]))
    baseline = rewards[0]
    for r in rewards[1:]:
        baseline = 0.9 * baseline + 0.1 * r
    assert results[0][0] == pytest.approx(baseline)
    # the last architecture's reward moved the one update: every architecture takes part
    assert any(not torch.equal(a, b) for a, b in zip(results[0][1], results[1][1]))
    group = strategy.optimizer.param_groups[0]
    assert group["betas"] == (0.0, 0.999) and group["eps"] == 1e-3


def test_batch_mean_baseline_is_leave_one_out_and_ignores_a_common_offset(toy_space):
    """A validation batch that is easier for every architecture of an update (all rewards + 5) moves
    the controller with `baseline=batch_mean` exactly as without the offset; with the moving
    average it does not (the baseline lags)."""
    from enas.strategies.reinforce import leave_one_out_means
    assert leave_one_out_means([1.0, 2.0, 6.0]) == [4.0, 3.5, 1.5]
    with pytest.raises(ValueError, match="archs_per_step"):
        leave_one_out_means([1.0])

    def params_after(baseline, offset):
        torch.manual_seed(0)
        strategy = build_strategy("reinforce", toy_space, lstm_size=16, baseline=baseline)
        strategy.tell(strategy.ask(4), [0.0, 0.1, 0.2, 0.3])   # a baseline history
        strategy.tell(strategy.ask(4), [offset + r for r in (0.0, 0.4, 0.1, 0.2)])
        return [p.detach().clone() for p in strategy.controller.parameters()]

    same = [torch.allclose(x, y, atol=1e-6) for x, y in zip(params_after("batch_mean", 0.0),
                                                              params_after("batch_mean", 5.0))]
    assert all(same)
    moving = [torch.allclose(x, y, atol=1e-6) for x, y in zip(params_after("moving_average", 0.0),
                                                               params_after("moving_average", 5.0))]
    assert not all(moving)
    with pytest.raises(ValueError, match="controller.baseline"):
        build_strategy("reinforce", toy_space, lstm_size=16, baseline="median")


def test_batch_mean_baseline_with_one_architecture_per_update_is_refused_before_the_search(tmp_path):
    from enas.build import build_search
    from enas.utils import UserError
    from tests.helpers import compose_config
    cfg = compose_config("search", ["experiment=smoke_micro", "controller.baseline=batch_mean",
                                    "search.archs_per_step=1"])
    with pytest.raises(UserError, match="search.archs_per_step to 2 or more"):
        build_search(cfg, str(tmp_path), torch.device("cpu"))


def test_batch_mean_baseline_with_asynchronous_rewards_is_refused_before_the_search(tmp_path):
    from enas.build import build_search
    from enas.utils import UserError
    from tests.helpers import compose_config
    cfg = compose_config("search", ["experiment=smoke_nas_cnn", "evaluator=standalone", "evaluator.options.mode=async",
                                    "controller.baseline=batch_mean"])
    with pytest.raises(UserError, match="mode=async tells the strategy one architecture at a time"):
        build_search(cfg, str(tmp_path), torch.device("cpu"))


def test_entropy_bonus_in_reward_mode_is_added_to_each_reward_without_a_gradient(toy_space):
    """Official entropy bonus (micro_controller.py:237-238): R' = R + w * H(arch), H detached, R'
    tracked by the baseline; the update equals a loss-free-of-entropy update on the rewards R'."""
    rewards, weight = [0.1, 0.4, 0.2, 0.3], 0.05

    def fresh(**options):
        torch.manual_seed(0)
        return build_strategy("reinforce", toy_space, lstm_size=16, baseline_decay=0.9, **options)

    strategy = fresh(entropy_weight=weight, entropy_mode="reward")
    archs = strategy.ask(4)
    with torch.no_grad():
        entropy = strategy.controller(4, actions=strategy._actions(archs)).entropy
    assert entropy.min() > 0.1                        # the bonus is not negligible at this weight
    stats = strategy.tell(archs, rewards)
    assert stats["reward"] == pytest.approx(sum(rewards) / 4)       # logged: the task's reward
    shifted = [r + weight * h for r, h in zip(rewards, entropy.tolist())]
    by_hand = fresh(entropy_weight=0.0)
    by_hand.ask(4)                                    # the same sampler state
    by_hand.tell(archs, shifted)
    assert strategy.baseline == pytest.approx(by_hand.baseline)
    for a, b in zip(strategy.controller.parameters(), by_hand.controller.parameters()):
        assert torch.allclose(a, b, atol=1e-7)
    # the default differentiates -w * H instead: another update
    in_loss = fresh(entropy_weight=weight)
    in_loss.ask(4)
    in_loss.tell(archs, rewards)
    assert not all(torch.allclose(a, b, atol=1e-7)
                   for a, b in zip(in_loss.controller.parameters(), by_hand.controller.parameters()))
    with pytest.raises(ValueError, match="controller.entropy_mode"):
        build_strategy("reinforce", toy_space, lstm_size=16, entropy_mode="bonus")
