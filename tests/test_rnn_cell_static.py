"""The architecture-as-data recurrent supernet (enas/spaces/rnn_cell_static.py) against the eager one,
and MaskedSGD (enas/masked_sgd.py): unused rows of the stacked edge weights get neither weight
decay nor momentum."""

import random

import pytest
import torch
import torch.nn.functional as F

from enas.arch import Architecture
from enas.masked_sgd import MaskedSGD
from enas.spaces import build_space
from enas.spaces.rnn_cell_static import ArchTensors, StaticRNNCellSupernet, arch_tensors, edge_row

V, H, T, B = 30, 8, 6, 3
DROPOUTS = dict(emb_dropout=0.2, in_dropout=0.3, hidden_dropout=0.25, out_dropout=0.3)


def random_archs(space, n, seed):
    rng = random.Random(seed)
    return [Architecture("rnn_cell", tuple(rng.randrange(d.num_choices) for d in space.decisions())) for _ in range(n)]


def pair(space, **sizes):
    """An eager and a static supernet with the same weights (same seed: same draws)."""
    torch.manual_seed(0)
    eager = space.build_supernet(vocab_size=V, hidden_size=H, **sizes)
    torch.manual_seed(0)
    static = space.build_supernet(vocab_size=V, hidden_size=H, static_graph=True, **sizes)
    return eager, static


def eager_edge_grad(eager, i, j):
    g = eager.edges[f"{i}_{j}"].grad
    return torch.zeros(H, 2 * H) if g is None else g


def loss_and_grads(model, tokens, h0, arch, seed):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # the same dropout masks in both models (drawn in the same order)
    logits, h = model(tokens, h0, arch)
    loss = F.cross_entropy(logits.view(-1, V), tokens.view(-1))
    loss.backward()
    return loss.detach(), h.detach(), logits.detach()


SPACES = [dict(num_nodes=5), dict(num_nodes=5, cell_output="average"),
          dict(num_nodes=4, cell_output="average", node0_act="tanh")]


@pytest.mark.parametrize("structure", SPACES, ids=["loose_ends", "average", "enas_lm"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_static_equals_eager_loss_and_gradients(structure, mode):
    space = build_space("rnn_cell", **structure)
    eager, static = pair(space, hidden_dropout_every_node=True, **DROPOUTS)
    assert isinstance(static, StaticRNNCellSupernet)
    eager.train(mode == "train")
    static.train(mode == "train")
    tokens = torch.randint(0, V, (T, B))
    h0 = torch.randn(B, H) * 0.5
    for k, arch in enumerate(random_archs(space, 4, seed=k_seed(structure))):
        want = loss_and_grads(eager, tokens, h0, arch, seed=k)
        got = loss_and_grads(static, tokens, h0, arch, seed=k)
        for a, b in zip(want, got):
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), (arch, (a - b).abs().max())
        for name in ("w_x", "w_h", "encoder.weight", "decoder.bias"):
            assert torch.allclose(eager.get_parameter(name).grad, static.get_parameter(name).grad,
                                  rtol=1e-5, atol=1e-7), name
        plan = space.plan(arch)
        for r, (i, j) in enumerate(static.edge_pairs):
            assert torch.allclose(static.edge_stack.grad[r], eager_edge_grad(eager, i, j), rtol=1e-5, atol=1e-7)
            if (i, j) not in plan.edges:
                assert not static.edge_stack.grad[r].any()  # unused rows: zero gradient
        assert torch.equal(static.rows_for(static.edge_stack).sort().values,
                           torch.tensor(sorted(edge_row(i, j) for i, j in plan.edges)))


def k_seed(structure):
    return len(structure) * 7 + structure["num_nodes"]


def test_dropout_really_differs_between_modes():
    """The train-mode comparison above uses dropout: the masks matter (the test could fail)."""
    space = build_space("rnn_cell", num_nodes=4)
    _, static = pair(space, **DROPOUTS)
    tokens, h0 = torch.randint(0, V, (T, B)), torch.zeros(B, H)
    arch = random_archs(space, 1, 0)[0]
    train = loss_and_grads(static.train(), tokens, h0, arch, seed=0)[0]
    other_seed = loss_and_grads(static.train(), tokens, h0, arch, seed=1)[0]
    evaluated = loss_and_grads(static.eval(), tokens, h0, arch, seed=0)[0]
    assert train != other_seed and train != evaluated


def test_same_seed_same_weights_and_state_dict_names():
    space = build_space("rnn_cell", num_nodes=5)
    eager, static = pair(space)
    a, b = eager.state_dict(), static.state_dict()
    assert sorted(a) == sorted(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert static.edge_stack.shape == (10, H, 2 * H) and len(static.edges) == 0
    assert sum(p.numel() for p in static.parameters()) == sum(p.numel() for p in eager.parameters())


def test_state_dicts_load_both_ways():
    space = build_space("rnn_cell", num_nodes=4)
    eager, static = pair(space)
    with torch.no_grad():
        eager.edges["3_1"].add_(1.0)
    static.load_state_dict(eager.state_dict())
    assert torch.equal(static.edge_stack[edge_row(3, 1)], eager.edges["3_1"])
    with torch.no_grad():
        static.edge_stack[edge_row(2, 0)].mul_(-2.0)
    eager.load_state_dict(static.state_dict())
    assert torch.equal(eager.edges["2_0"], static.edge_stack[edge_row(2, 0)])
    broken = static.state_dict()
    del broken["edges.3_2"]
    with pytest.raises(RuntimeError, match="edge_stack"):
        static.load_state_dict(broken)


def test_inheritance_from_the_static_supernet():
    space = build_space("rnn_cell", num_nodes=5)
    _, static = pair(space, **DROPOUTS)
    static.eval()
    tokens, h0 = torch.randint(0, V, (T, B)), torch.randn(B, H) * 0.5
    for arch in random_archs(space, 3, seed=5):
        net = space.build_network(arch, vocab_size=V, hidden_size=H, static_graph=True, **DROPOUTS).eval()
        space.load_inherited(net, static, arch)
        with torch.no_grad():
            want, h_want = static(tokens, h0, arch)
            got, h_got = net(tokens, h0)
        assert torch.allclose(got, want, atol=1e-6) and torch.allclose(h_got, h_want, atol=1e-6)


def test_arch_tensors_layout():
    space = build_space("rnn_cell", num_nodes=4)
    # node0 tanh; node1 <-0 relu; node2 <-0 identity; node3 <-1 sigmoid: loose ends 2 and 3
    at = arch_tensors(space.plan(Architecture("rnn_cell", (0, 0, 1, 0, 2, 1, 3))))
    assert at.acts.tolist() == [0, 1, 2, 3] and at.inputs.tolist() == [0, 0, 1]
    assert at.rows.tolist() == [edge_row(1, 0), edge_row(2, 0), edge_row(3, 1)] == [0, 1, 4]
    assert at.out_mask.tolist() == [False, False, True, True] and at.scale.item() == 0.5
    static = space.build_supernet(vocab_size=V, hidden_size=H, static_graph=True)
    assert static.arch_tensors(at) is at and isinstance(static.arch_tensors(
        Architecture("rnn_cell", (0, 0, 1, 0, 2, 1, 3))), ArchTensors)
    with pytest.raises(ValueError, match="needs an architecture"):
        static(torch.zeros(2, 1, dtype=torch.long), static.init_hidden(1))


# --- MaskedSGD: unused rows get neither weight decay nor momentum -------------------------------------


def train_steps(model, optimizer, archs, tokens, clip=0.25):
    h = torch.zeros(B, H)
    for k, arch in enumerate(archs):
        optimizer.zero_grad(set_to_none=True)
        torch.manual_seed(100 + k)
        logits, h = model(tokens, h.detach(), arch)
        F.cross_entropy(logits.view(-1, V), tokens.view(-1)).backward()
        torch.nn.utils.clip_grad_norm_(list(model.parameters()), clip)
        optimizer.step()


OPTIM = dict(lr=0.5, momentum=0.9, weight_decay=0.01, nesterov=True)


def test_unused_rows_stay_bit_identical_and_used_rows_follow_eager_sgd():
    space = build_space("rnn_cell", num_nodes=5)
    eager, static = pair(space, hidden_dropout=0.2)
    archs = random_archs(space, 4, seed=3)
    used = {edge_row(i, j) for a in archs for i, j in space.plan(a).edges}
    assert len(used) < len(static.edge_pairs)          # some rows are never used
    before = static.edge_stack.detach().clone()
    tokens = torch.randint(0, V, (T, B))
    train_steps(eager, torch.optim.SGD(eager.parameters(), **OPTIM), archs, tokens)
    opt = MaskedSGD(static.parameters(), rows_for=static.rows_for, **OPTIM)
    train_steps(static, opt, archs, tokens)
    buf = opt.state[static.edge_stack]["momentum_buffer"]
    for r, (i, j) in enumerate(static.edge_pairs):
        if r in used:
            assert not torch.equal(static.edge_stack[r], before[r])
            assert torch.allclose(static.edge_stack[r], eager.edges[f"{i}_{j}"], rtol=1e-5, atol=1e-6)
        else:
            assert torch.equal(static.edge_stack[r], before[r]), (i, j)   # no decay, no momentum
            assert not buf[r].any()
    for name in ("w_x", "w_h", "encoder.weight", "decoder.bias"):
        assert torch.allclose(static.get_parameter(name), eager.get_parameter(name), rtol=1e-5, atol=1e-6), name


def test_plain_sgd_would_move_unused_rows():
    """Why MaskedSGD exists: SGD with decay and momentum changes rows that got a zero gradient."""
    space = build_space("rnn_cell", num_nodes=5)
    _, static = pair(space)
    archs = random_archs(space, 2, seed=3)
    unused = [r for r, (i, j) in enumerate(static.edge_pairs)
              if all((i, j) not in space.plan(a).edges for a in archs)]
    before = static.edge_stack.detach().clone()
    train_steps(static, torch.optim.SGD(static.parameters(), **OPTIM), archs, torch.randint(0, V, (T, B)))
    assert unused and not torch.equal(static.edge_stack[unused], before[unused])


def test_masked_sgd_is_sgd_bit_for_bit_without_masks():
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(4, 6)), torch.nn.Parameter(torch.randn(5))]
    twins = [torch.nn.Parameter(p.detach().clone()) for p in params]
    for options in (OPTIM, dict(lr=0.1), dict(lr=0.1, momentum=0.5, weight_decay=1e-3)):
        ref = torch.optim.SGD(params, **options)
        opt = MaskedSGD(twins, **options)
        for step in range(3):
            grads = [torch.randn_like(p) for p in params]
            for p, q, g in zip(params, twins, grads):
                p.grad, q.grad = g.clone(), g.clone()
            ref.step()
            opt.step()
            for p, q in zip(params, twins):
                assert torch.equal(p, q), (options, step)


def test_masked_sgd_skips_on_a_false_flag_and_keeps_rows():
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(5, 3))
    rows = torch.tensor([1, 3])
    opt = MaskedSGD([p], rows_for=lambda _: rows, **OPTIM)
    p.grad = torch.randn(5, 3)
    opt.step(ok=torch.tensor(True))
    first, buf = p.detach().clone(), opt.state[p]["momentum_buffer"].clone()
    assert torch.equal(buf[[0, 2, 4]], torch.zeros(3, 3)) and buf[[1, 3]].abs().sum() > 0
    p.grad = torch.full((5, 3), float("nan"))
    opt.step(ok=torch.tensor(False))                 # skipped on the device: nothing changes
    assert torch.equal(p, first) and torch.equal(opt.state[p]["momentum_buffer"], buf)
    opt.capturable = True
    opt.param_groups[0]["lr"] = 0.25
    p.grad = torch.ones(5, 3)
    opt.step(ok=torch.tensor(True))                  # the lr tensor follows the group's lr
    assert torch.equal(p[[0, 2, 4]], first[[0, 2, 4]])
    d_p = 1 + OPTIM["weight_decay"] * first[[1, 3]]
    new_buf = buf[[1, 3]] * 0.9 + d_p
    assert torch.allclose(p[[1, 3]], first[[1, 3]] - 0.25 * (d_p + 0.9 * new_buf), atol=1e-6)


def test_checkpoints_of_the_static_supernet_load_back_and_into_the_eager_one(tmp_path):
    """A checkpoint file (weights_only) of the static supernet and its MaskedSGD: both load back exactly,
    and the supernet's tensors load into an eager supernet under the same names."""
    from enas.checkpoint import load_checkpoint, save_checkpoint
    space = build_space("rnn_cell", num_nodes=4)
    eager, static = pair(space)
    opt = MaskedSGD(static.parameters(), rows_for=static.rows_for, **OPTIM)
    train_steps(static, opt, random_archs(space, 2, seed=6), torch.randint(0, V, (T, B)))
    path = str(tmp_path / "checkpoint.pt")
    save_checkpoint(path, {"kind": "search", "supernet": static.state_dict(), "optimizer": opt.state_dict()})
    saved = load_checkpoint(path, kind="search")
    _, again = pair(space)
    opt2 = MaskedSGD(again.parameters(), rows_for=again.rows_for, **OPTIM)
    again.load_state_dict(saved["supernet"])
    opt2.load_state_dict(saved["optimizer"])
    assert torch.equal(again.edge_stack, static.edge_stack)
    assert torch.equal(opt2.state[again.edge_stack]["momentum_buffer"], opt.state[static.edge_stack]["momentum_buffer"])
    eager.load_state_dict(saved["supernet"])
    for r, (i, j) in enumerate(static.edge_pairs):
        assert torch.equal(eager.edges[f"{i}_{j}"], static.edge_stack[r])
