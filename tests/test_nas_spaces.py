"""Tests of the NAS-RL spaces `nas_cnn` and `nas_rnn_tree` (tiny sizes, CPU)."""

import io

import pytest
import numpy as np
import torch
import torch.nn.functional as F

from enas.strategies.base import uniform_architecture
from enas.arch import Architecture, ArchitectureError
from enas.spaces.base import SPACES
from enas.spaces.nas_cnn import NASCNNSpace
from enas.spaces.nas_rnn_tree import NASRNNTreeSpace


def sample(space, seed):
    """A uniformly random architecture of `space` (random bits for skip decisions)."""
    return uniform_architecture(space.name, space.decisions(), np.random.default_rng(seed))


def cnn_arch(space, layers, skips=None, strides=None):
    """An nas_cnn architecture from per-layer (fh index, fw index, filters index) and skip bits."""
    choices = []
    for i, (fh, fw, n) in enumerate(layers):
        choices += [fh, fw, n]
        if strides is not None:
            choices.append(strides[i])
        if i >= 1:
            choices.append(tuple(skips[i]) if skips and i in skips else (0,) * i)
    return Architecture("nas_cnn", tuple(choices))


@pytest.fixture
def one_thread():
    """Training tests run on one thread: faster than two contended ones on a busy CI machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------- nas_cnn

def test_registered():
    assert SPACES["nas_cnn"] is NASCNNSpace and NASCNNSpace.task == "image"
    assert SPACES["nas_rnn_tree"] is NASRNNTreeSpace and NASRNNTreeSpace.task == "lm"


def test_cnn_decisions():
    decisions = NASCNNSpace(num_layers=3).decisions()
    assert [d.name for d in decisions] == [
        "layer0_fh", "layer0_fw", "layer0_filters",
        "layer1_fh", "layer1_fw", "layer1_filters", "layer1_skip",
        "layer2_fh", "layer2_fw", "layer2_filters", "layer2_skip"]
    assert [d.name for d in decisions if d.anchor] == ["layer0_filters", "layer1_skip", "layer2_skip"]
    skips = [d for d in decisions if d.kind == "skip"]
    assert [d.num_choices for d in skips] == [1, 2]
    assert decisions[0].labels == ("1", "3", "5", "7") and decisions[2].labels == ("24", "36", "48", "64")
    # Each skip decision attends over exactly the anchors stored before it.
    anchors = 0
    for d in decisions:
        if d.kind == "skip":
            assert d.num_choices == anchors
        anchors += d.anchor

    with_stride = NASCNNSpace(num_layers=2, strides=(1, 2)).decisions()
    assert [d.name for d in with_stride] == [
        "layer0_fh", "layer0_fw", "layer0_filters", "layer0_stride",
        "layer1_fh", "layer1_fw", "layer1_filters", "layer1_stride", "layer1_skip"]
    assert with_stride[3].labels == ("1", "2") and with_stride[3].anchor


def test_cnn_bad_structure():
    with pytest.raises(ValueError, match="filter_sizes"):
        NASCNNSpace(filter_sizes=(2, 3))
    with pytest.raises(ValueError, match="num_layers"):
        NASCNNSpace(num_layers=0)
    with pytest.raises(ValueError, match="strides"):
        NASCNNSpace(strides=(1, 1))


@pytest.mark.parametrize("seed", range(4))
def test_cnn_random_arch_shapes(seed):
    space = NASCNNSpace(num_layers=4, strides=(1, 2))
    arch = sample(space, seed)
    model = space.build_network(arch, num_classes=3, in_channels=2, image_size=8, width_multiplier=0.25)
    out = model(torch.randn(2, 2, 8, 8), arch)
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    # The JSON form round-trips and the drawing names every layer.
    assert space.arch_from_dict(space.arch_to_dict(arch)) == space.validate(arch)
    dot = space.to_dot(arch)
    assert all(f'"layer{i}"' in dot for i in range(4))


def test_cnn_strides_shrink_spatial_size():
    space = NASCNNSpace(num_layers=3, strides=(1, 2))
    arch = cnn_arch(space, [(1, 1, 0)] * 3, strides=[1, 0, 1], skips={2: (1, 1)})
    model = space.build_network(arch, num_classes=3, in_channels=1, image_size=8, width_multiplier=0.25)
    outs = model.layer_outputs(torch.randn(2, 1, 8, 8))
    assert [tuple(o.shape[2:]) for o in outs] == [(4, 4), (4, 4), (2, 2)]
    # Layer 2 concatenates layers 0 and 1 (both 4x4); all-stride-1 keeps the size.
    arch1 = cnn_arch(space, [(1, 1, 0)] * 3, strides=[0, 0, 0])
    model1 = space.build_network(arch1, num_classes=3, in_channels=1, image_size=8)
    assert [tuple(o.shape[2:]) for o in model1.layer_outputs(torch.randn(1, 1, 8, 8))] == [(8, 8)] * 3


def test_cnn_mixed_spatial_sizes_are_pooled():
    space = NASCNNSpace(num_layers=3, strides=(1, 2))
    # layer0 stride 1 (8x8), layer1 stride 2 (4x4), layer2 reads both: layer0 is pooled to 4x4.
    arch = cnn_arch(space, [(1, 1, 0)] * 3, strides=[0, 1, 0], skips={2: (1, 0)})
    model = space.build_network(arch, num_classes=3, in_channels=1, image_size=8, width_multiplier=0.25)
    outs = model.layer_outputs(torch.randn(2, 1, 8, 8))
    assert [tuple(o.shape[2:]) for o in outs] == [(8, 8), (4, 4), (4, 4)]
    assert model.layers[2].conv.in_channels == 12
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 3)


def test_cnn_skip_bits_change_input_channels_and_outputs():
    space = NASCNNSpace(num_layers=3)
    layers = [(1, 1, 0), (1, 1, 3), (2, 1, 1)]  # 24, 64, 36 filters
    plain = space.build_network(cnn_arch(space, layers), num_classes=2, in_channels=3, image_size=8)
    skip = space.build_network(cnn_arch(space, layers, skips={2: (1, 0)}), num_classes=2, in_channels=3,
                               image_size=8)
    assert [m.conv.in_channels for m in plain.layers] == [3, 24, 64]
    assert [m.conv.in_channels for m in skip.layers] == [3, 24, 24 + 64]
    assert plain.layers[2].conv.kernel_size == (5, 3)
    # Without the skip, layer 0 feeds only layer 1: only the last layer is an output.
    assert plain.outputs == [2] and skip.outputs == [2]
    assert plain.classifier.in_features == 36
    # The bit of the previous layer is redundant under connect_previous=True.
    same = space.build_network(cnn_arch(space, layers, skips={2: (0, 1)}), num_classes=2, in_channels=3,
                               image_size=8)
    assert [m.conv.in_channels for m in same.layers] == [3, 24, 64]


def test_cnn_paper_wiring_dangling_layers_reach_the_output():
    space = NASCNNSpace(num_layers=3, connect_previous=False)
    layers = [(0, 0, 0), (0, 0, 1), (0, 0, 2)]  # 24, 36, 48 filters
    # layer1 reads nothing -> the image; layer2 reads layer 0 only; layer 1 dangles.
    model = space.build_network(cnn_arch(space, layers, skips={1: (0,), 2: (1, 0)}), num_classes=4,
                                in_channels=3, image_size=8)
    assert [m.conv.in_channels for m in model.layers] == [3, 3, 24]
    assert model.outputs == [1, 2] and model.classifier.in_features == 36 + 48
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 4)
    graph = space.graph(cnn_arch(space, layers, skips={1: (0,), 2: (1, 0)}))
    assert ("layer1", "output", "") in graph.edges and ("image", "layer1", "") in graph.edges
    assert dict(graph.nodes)["layer2"] == "1x1 conv 48"


def test_cnn_graph_labels():
    space = NASCNNSpace(num_layers=2, strides=(1, 2))
    arch = cnn_arch(space, [(2, 1, 2), (0, 3, 0)], strides=[0, 1])
    graph = space.graph(arch)
    labels = dict(graph.nodes)
    assert labels["layer0"] == "5x3 conv 48" and labels["layer1"] == "1x7 conv 24 /2"
    assert ("layer0", "layer1", "") in graph.edges and ("layer1", "output", "") in graph.edges


def test_cnn_width_multiplier_changes_parameter_count():
    space = NASCNNSpace(num_layers=3)
    arch = sample(space, 7)
    sizes = dict(num_classes=3, in_channels=1, image_size=8)
    full = space.build_network(arch, **sizes)
    small = space.build_network(arch, width_multiplier=0.5, **sizes)
    tiny = space.build_network(arch, width_multiplier=1e-3, **sizes)
    assert n_params(small) < n_params(full)
    assert all(m.conv.out_channels == 1 for m in tiny.layers)


def test_cnn_state_dict_is_plain_tensors():
    space = NASCNNSpace(num_layers=2)
    model = space.build_network(sample(space, 1), num_classes=2, in_channels=1, image_size=4, width_multiplier=0.1)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    assert loaded.keys() == model.state_dict().keys()


@pytest.mark.parametrize("space", [NASCNNSpace(num_layers=2), NASRNNTreeSpace(num_leaves=2)])
def test_no_supernet(space):
    with pytest.raises(NotImplementedError, match="standalone"):
        space.build_supernet()


def test_cnn_training_lowers_loss(one_thread):
    torch.manual_seed(0)
    space = NASCNNSpace(num_layers=3)
    arch = cnn_arch(space, [(1, 1, 0), (1, 1, 0), (1, 1, 0)], skips={2: (1, 1)})
    model = space.build_network(arch, num_classes=2, in_channels=1, image_size=6, width_multiplier=0.25)
    # Toy task: is the image bright on its left or its right half?
    labels = torch.randint(0, 2, (16,))
    images = torch.randn(16, 1, 6, 6) * 0.3
    images[labels == 0, :, :, :3] += 1.0
    images[labels == 1, :, :, 3:] += 1.0
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(20):
        loss = F.cross_entropy(model(images), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# ----------------------------------------------------------------------------- nas_rnn_tree

def test_tree_decisions():
    decisions = NASRNNTreeSpace(num_leaves=2).decisions()
    assert [d.name for d in decisions] == [
        "node0_comb", "node0_act", "node1_comb", "node1_act", "node2_comb", "node2_act",
        "cell_inject", "cell_inject_comb", "cell_inject_act", "cell_index"]
    assert [d.kind for d in decisions] == ["op"] * 6 + ["input", "op", "op", "input"]
    assert [d.name for d in decisions if d.anchor] == ["node0_act", "node1_act", "node2_act"]
    assert decisions[0].labels == ("add", "mul")
    assert decisions[1].labels == ("tanh", "relu", "sigmoid", "identity")
    assert decisions[6].num_choices == decisions[9].num_choices == 3
    big = NASRNNTreeSpace().decisions()
    assert len(big) == 2 * 15 + 4 and sum(d.anchor for d in big) == 15
    assert all(d.group == "main" for d in big)
    with pytest.raises(ValueError, match="num_leaves"):
        NASRNNTreeSpace(num_leaves=1)


def test_tree_invalid_arch_names_decision():
    space = NASRNNTreeSpace(num_leaves=2)
    bad = Architecture("nas_rnn_tree", (0, 0, 0, 0, 0, 0, 3, 0, 0, 0))
    with pytest.raises(ArchitectureError, match="cell_inject"):
        space.build_network(bad, vocab_size=5, hidden_size=4)


def test_tree_cell_matches_hand_computation():
    """The paper's worked example (num_leaves=2) with fixed weights, computed by hand."""
    torch.manual_seed(0)
    space = NASRNNTreeSpace(num_leaves=2)
    # node0 add/tanh, node1 mul/relu, node2 mul/sigmoid; inject c_{t-1} at node 0 with add/relu;
    # c_t = node 1 before its activation.
    arch = Architecture("nas_rnn_tree", (0, 0, 1, 1, 1, 2, 0, 0, 1, 1))
    model = space.build_network(arch, vocab_size=5, hidden_size=3)
    cell = model.cell
    H = 3
    W1, W3 = cell.w.weight[:H], cell.w.weight[H:]
    b1, b3 = cell.w.bias[:H], cell.w.bias[H:]
    W2, W4 = cell.u.weight[:H], cell.u.weight[H:]
    x = torch.randn(2, 4, H)  # (T, B, I)
    h, c = torch.randn(4, H), torch.randn(4, H)
    out, (h_out, c_out) = cell(x, (h, c))
    for t in range(2):
        a0 = torch.tanh(x[t] @ W1.T + b1 + h @ W2.T)
        a1_pre = (x[t] @ W3.T + b3) * (h @ W4.T)
        a1 = torch.relu(a1_pre)
        a0_new = torch.relu(a0 + c)
        h = torch.sigmoid(a0_new * a1)
        c = a1_pre
        assert torch.allclose(out[t], h, atol=1e-6)
    assert torch.allclose(h_out, h, atol=1e-6) and torch.allclose(c_out, c, atol=1e-6)


def test_tree_every_cell_link_is_finite():
    space = NASRNNTreeSpace(num_leaves=4)
    base = list(sample(space, 3).choices)
    tokens = torch.randint(0, 7, (3, 2))
    for inject in range(space.num_nodes):
        for index in range(space.num_nodes):
            choices = base[:-4] + [inject, base[-3], base[-2], index]
            arch = Architecture("nas_rnn_tree", tuple(choices))
            model = space.build_network(arch, vocab_size=7, hidden_size=4)
            logits, (h, c) = model(tokens, model.init_hidden(2))
            assert logits.shape == (3, 2, 7)
            assert torch.isfinite(logits).all() and torch.isfinite(c).all()


@pytest.mark.parametrize("seed", range(3))
def test_tree_random_arch_shapes_and_graph(seed):
    space = NASRNNTreeSpace(num_leaves=4)
    arch = sample(space, seed)
    model = space.build_network(arch, vocab_size=11, hidden_size=6, emb_dropout=0.1, in_dropout=0.2,
                                hidden_dropout=0.2, out_dropout=0.2)
    hidden = model.init_hidden(3)
    assert [tuple(t.shape) for t in hidden] == [(3, 6), (3, 6)]
    logits, hidden = model(torch.randint(0, 11, (5, 3)), hidden, arch)
    assert logits.shape == (5, 3, 11)
    assert [tuple(t.shape) for t in hidden] == [(3, 6), (3, 6)]
    assert model.decoder.weight is model.encoder.weight
    assert space.arch_from_dict(space.arch_to_dict(arch)) == space.validate(arch)
    graph = space.graph(arch)
    # Every tree node but the root has one outgoing tree edge; the root feeds h_t.
    ids = dict(graph.nodes)
    assert all(f"node{k}" in ids for k in range(7))
    assert sum(1 for e in graph.edges if e[1] == "h_t") == 1
    assert "digraph" in space.to_dot(arch)


def test_tree_eval_is_deterministic_and_untied_option():
    space = NASRNNTreeSpace(num_leaves=2)
    arch = sample(space, 0)
    model = space.build_network(arch, vocab_size=6, hidden_size=4, emb_dropout=0.5, out_dropout=0.5,
                                tie_weights=False).eval()
    tokens = torch.randint(0, 6, (4, 2))
    a, _ = model(tokens, model.init_hidden(2))
    b, _ = model(tokens, model.init_hidden(2))
    assert torch.equal(a, b)
    assert model.decoder.weight is not model.encoder.weight


@pytest.mark.parametrize("which", ["emb_dropout", "in_dropout", "hidden_dropout", "out_dropout"])
def test_tree_dropouts_act_only_in_training(which):
    torch.manual_seed(0)
    space = NASRNNTreeSpace(num_leaves=2)
    arch = Architecture("nas_rnn_tree", (0, 0, 0, 0, 0, 0, 0, 0, 0, 1))
    model = space.build_network(arch, vocab_size=6, hidden_size=8, **{which: 0.5})
    tokens = torch.randint(0, 6, (4, 3))
    train_out, _ = model(tokens, model.init_hidden(3))
    model.eval()
    eval_out, _ = model(tokens, model.init_hidden(3))
    assert not torch.allclose(train_out, eval_out)
    with pytest.raises(ValueError, match=which):
        space.build_network(arch, vocab_size=6, hidden_size=8, **{which: 1.0})


def test_tree_training_lowers_loss(one_thread):
    torch.manual_seed(0)
    space = NASRNNTreeSpace(num_leaves=2)
    # add/tanh leaves, add/tanh root, inject add/tanh at node 0, c_t from node 1.
    arch = Architecture("nas_rnn_tree", (0, 0, 0, 0, 0, 0, 0, 0, 0, 1))
    model = space.build_network(arch, vocab_size=5, hidden_size=16)
    # Toy corpus: the cycle 0 1 2 3 4 0 1 ...; predict the next token.
    stream = torch.arange(0, 5).repeat(20)  # (100,)
    data = stream[:96].view(4, 24).t()  # (T=24, B=4)
    inputs, targets = data[:-1], data[1:]
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(30):
        logits, _ = model(inputs, model.init_hidden(4))
        loss = F.cross_entropy(logits.reshape(-1, 5), targets.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# ----------------------------------------------------------------------------- CUDA

@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_both_spaces_on_cuda():
    cnn = NASCNNSpace(num_layers=3, strides=(1, 2))
    model = cnn.build_network(sample(cnn, 0), num_classes=3, in_channels=2, image_size=8).cuda()
    assert model(torch.randn(2, 2, 8, 8, device="cuda")).shape == (2, 3)
    tree = NASRNNTreeSpace(num_leaves=4)
    lm = tree.build_network(sample(tree, 0), vocab_size=9, hidden_size=8, emb_dropout=0.1,
                            hidden_dropout=0.2).cuda()
    hidden = lm.init_hidden(2)
    assert hidden[0].is_cuda and hidden[1].is_cuda
    logits, (h, c) = lm(torch.randint(0, 9, (4, 2), device="cuda"), hidden)
    assert logits.is_cuda and h.is_cuda and c.is_cuda
