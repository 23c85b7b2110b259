"""Tests of the CNN search spaces (macro_cnn, micro_cnn) and their shared ops (cnn_ops)."""

import io

import pytest
import numpy as np
import torch
import torch.nn.functional as F

import enas.spaces.macro_cnn  # noqa: F401  (registers the space)
import enas.spaces.micro_cnn  # noqa: F401
from enas.strategies.base import uniform_architecture
from enas.arch import Architecture, ArchitectureError
from enas.spaces.base import SPACES
from enas.spaces.cnn_ops import OPS, drop_path, make_op
from enas.spaces.macro_cnn import MACRO_OPS
from enas.spaces.micro_cnn import MICRO_OPS, loose_ends

# (space name, structure, sizes): tiny versions of every CNN space; add new spaces here.
# The last two are the official ENAS variants (options the paper presets turn on).
CASES = [
    ("macro_cnn", {"num_layers": 6}, {"channels": 4}),
    ("micro_cnn", {"num_nodes": 3}, {"channels": 4, "num_layers": 3}),
    ("macro_cnn", {"num_layers": 6}, {"channels": 4, "branch_conv1x1": True}),
    ("micro_cnn", {"num_nodes": 3}, {"channels": 4, "num_layers": 3, "sep_conv_stack": 2,
                                     "per_input_weights": True}),
]
IDS = ["macro_cnn", "micro_cnn", "macro_cnn-enas_branches", "micro_cnn-enas_ops"]
DATA = {"num_classes": 3, "in_channels": 3, "image_size": 8}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors gain nothing from threads, and on a busy machine extra threads cost a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sample_arch(space, seed: int) -> Architecture:
    """A uniformly random architecture: every op/input choice and every skip bit drawn uniformly."""
    return uniform_architecture(space.name, space.decisions(), np.random.default_rng(seed))


def images(batch: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, DATA["in_channels"], DATA["image_size"], DATA["image_size"],
                       generator=torch.Generator().manual_seed(seed))


def build_pair(case, arch=None, seed=0, device="cpu"):
    """(space, arch, supernet, standalone network with inherited weights), both in train mode."""
    name, structure, sizes = case
    space = SPACES[name](**structure)
    arch = arch or sample_arch(space, seed)
    torch.manual_seed(seed)
    supernet = space.build_supernet(**DATA, **sizes).to(device)
    network = space.build_network(arch, **DATA, **sizes).to(device)
    space.load_inherited(network, supernet, arch)
    return space, arch, supernet.train(), network.train()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_inherited_network_computes_what_the_supernet_computes(case):
    for seed in range(4):
        space, arch, supernet, network = build_pair(case, seed=seed)
        x = images(seed=seed)
        expected = supernet(x, arch)
        got = network(x)
        assert got.shape == expected.shape == (4, DATA["num_classes"])
        assert torch.allclose(got, expected, atol=1e-5), f"{space.name} arch {space.describe(arch)}"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_unchosen_ops_get_no_grad_and_standalone_is_smaller(case):
    for seed in range(3):
        space, arch, supernet, network = build_pair(case, seed=seed)
        x = images(seed=seed)
        supernet(x, arch).logsumexp(1).sum().backward()
        network(x).logsumexp(1).sum().backward()
        kept = set(network.state_dict())
        for name, p in supernet.named_parameters():
            # exactly the parameters the standalone network holds take part in the step
            assert (p.grad is not None) == (name in kept), name
        assert all(p.grad is not None for p in network.parameters())
        n_super = sum(p.numel() for p in supernet.parameters())
        n_net = sum(p.numel() for p in network.parameters())
        assert 0 < n_net < n_super


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_output_shapes_in_train_and_eval(case):
    space, arch, supernet, network = build_pair(case)
    x = images(batch=5)
    for mode in (True, False):
        supernet.train(mode)
        network.train(mode)
        assert supernet(x, arch).shape == (5, DATA["num_classes"])
        assert network(x).shape == (5, DATA["num_classes"])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_supernet_bn_uses_batch_statistics_standalone_bn_is_normal(case):
    space, arch, supernet, network = build_pair(case)
    bns = lambda m: [b for b in m.modules() if isinstance(b, torch.nn.BatchNorm2d)]  # noqa: E731
    assert all(not b.track_running_stats for b in bns(supernet))
    # with per-input weights (ENAS) the micro ops' BN is affine, one scale/shift per input index
    per_input = case[2].get("per_input_weights", False)
    assert all(b.affine == (per_input and ".nodes." in name) for name, b in supernet.named_modules()
               if isinstance(b, torch.nn.BatchNorm2d))
    assert all(b.track_running_stats and b.affine for b in bns(network))
    x = images()
    train_out = supernet(x, arch)
    assert torch.allclose(supernet.eval()(x, arch), train_out, atol=1e-6)  # no running statistics to drift


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_standalone_ignores_arch_supernet_requires_it(case):
    space, arch, supernet, network = build_pair(case)
    other = sample_arch(space, 99)
    x = images()
    assert torch.equal(network(x), network(x, other))
    with pytest.raises(ArchitectureError, match="needs an architecture"):
        supernet(x)
    bad = list(arch.choices)
    bad[0] = 99
    with pytest.raises(ArchitectureError, match=space.decisions()[0].name):
        supernet(x, Architecture(space.name, tuple(bad)))
    with pytest.raises(ArchitectureError, match="expected"):
        supernet(x, Architecture("rnn_cell", arch.choices))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_arch_json_round_trip_and_graph(case):
    name, structure, sizes = case
    space = SPACES[name](**structure)
    arch = sample_arch(space, 3)
    assert space.arch_from_dict(space.arch_to_dict(arch)) == arch
    g = space.graph(arch)
    ids = {n for n, _ in g.nodes}
    assert all(src in ids and dst in ids for src, dst, _ in g.edges)
    assert space.to_dot(arch).startswith("digraph")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_state_dicts_hold_plain_tensors(case):
    space, arch, supernet, network = build_pair(case)
    for model in (supernet, network):
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        buf.seek(0)
        loaded = torch.load(buf, weights_only=True)
        assert loaded.keys() == model.state_dict().keys()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_tiny_training_lowers_the_loss(case):
    """Omega steps that take turns over a few sampled architectures fit a toy task
    (the class is the brightest colour channel); all of them improve on the shared weights."""
    name, structure, sizes = case
    space = SPACES[name](**structure)
    torch.manual_seed(0)
    supernet = space.build_supernet(**DATA, **sizes).train()
    gen = torch.Generator().manual_seed(1)
    labels = torch.arange(12) % DATA["num_classes"]
    x = 0.5 * torch.randn(12, 3, 8, 8, generator=gen) + F.one_hot(labels, 3).float()[:, :, None, None]
    archs = [sample_arch(space, seed) for seed in range(3)]

    def losses():
        with torch.no_grad():
            return [F.cross_entropy(supernet(x, a), labels).item() for a in archs]

    before = losses()
    optimizer = torch.optim.Adam(supernet.parameters(), lr=0.02)
    for step in range(30):
        optimizer.zero_grad()
        F.cross_entropy(supernet(x, archs[step % len(archs)]), labels).backward()
        optimizer.step()
    after = losses()
    assert all(a < 0.5 * b for a, b in zip(after, before)), (before, after)


# ---------------------------------------------------------------- macro_cnn

def test_macro_decisions():
    space = SPACES["macro_cnn"](num_layers=6)
    ds = space.decisions()
    assert len(ds) == 6 + 5
    assert [d.name for d in ds[:5]] == ["layer0_op", "layer1_op", "layer1_skip", "layer2_op", "layer2_skip"]
    for d in ds:
        assert d.group == "main"
        if d.kind == "op":
            assert d.labels == MACRO_OPS == (
                "conv3x3", "conv5x5", "sep_conv3x3", "sep_conv5x5", "max_pool3x3", "avg_pool3x3")
        else:
            assert d.kind == "skip" and d.num_choices == int(d.name[5:].split("_")[0])
    # the last decision of every layer is an anchor: layer 0's op, then every skip decision
    assert [d.name for d in ds if d.anchor] == ["layer0_op"] + [f"layer{i}_skip" for i in range(1, 6)]
    with pytest.raises(ValueError, match="num_layers"):
        SPACES["macro_cnn"](num_layers=2)
    with pytest.raises(ValueError, match="channels"):
        space.build_supernet(**DATA, channels=0)


def test_macro_skip_bits_change_the_output():
    space = SPACES["macro_cnn"](num_layers=6)
    choices = [0] + [c for i in range(1, 6) for c in (0, (0,) * i)]  # conv3x3 everywhere, no skips
    plain = Architecture("macro_cnn", tuple(choices))
    torch.manual_seed(0)
    supernet = space.build_supernet(**DATA, channels=4)
    x = images()
    out_plain = supernet(x, plain)
    for layer, source in ((5, 0), (2, 1), (4, 3)):  # across two reductions, one, within a stage
        skipped = list(choices)
        skipped[2 * layer] = tuple(int(j == source) for j in range(layer))
        out = supernet(x, Architecture("macro_cnn", tuple(skipped)))
        assert (out - out_plain).abs().max() > 1e-4, (layer, source)


def test_macro_graph_has_chain_and_skip_edges():
    space = SPACES["macro_cnn"](num_layers=6)
    arch = sample_arch(space, 5)
    g = space.graph(arch)
    n_skips = sum(sum(c) for c in arch.choices if isinstance(c, tuple))
    assert len(g.nodes) == 6 + 2
    assert len(g.edges) == 7 + n_skips
    assert sum(label == "skip" for _, _, label in g.edges) == n_skips
    assert sum(label == "reduce" for _, _, label in g.edges) == 2


def test_macro_official_branches_start_with_conv1x1_bn_relu():
    """general_child.py:500-504, 562-566: conv1x1-BN-ReLU before every conv and pool branch."""
    space = SPACES["macro_cnn"](num_layers=3)
    c = 4
    supernet = space.build_supernet(**DATA, channels=c, branch_conv1x1=True)
    for k, label in enumerate(MACRO_OPS):
        op = supernet.layers[0].ops[str(k)]
        head = [type(m) for m in list(op)[:3]]
        assert head == [torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.ReLU], label
        assert op[0].kernel_size == (1, 1)
        kinds = [type(m) for m in op]
        if "pool" in label:
            assert kinds[3:] == [torch.nn.MaxPool2d if "max" in label else torch.nn.AvgPool2d], label
        else:
            assert kinds[-2:] == [torch.nn.BatchNorm2d, torch.nn.ReLU], label
        k_size = 5 if "5x5" in label else 3
        body = c * c * k_size * k_size if label.startswith("conv") else (c * k_size * k_size + c * c)
        expected = c * c + (0 if "pool" in label else body)   # non-affine BN in the supernet
        assert sum(p.numel() for p in op.parameters()) == expected, label
    plain = space.build_supernet(**DATA, channels=c)
    assert isinstance(plain.layers[0].ops["4"], torch.nn.MaxPool2d)   # the option is off by default


# ---------------------------------------------------------------- micro_cnn

def test_micro_decisions():
    space = SPACES["micro_cnn"](num_nodes=3)
    ds = space.decisions()
    assert len(ds) == 2 * 3 * 4
    assert [d.name for d in ds[:4]] == ["normal_node0_in_a", "normal_node0_in_b", "normal_node0_op_a",
                                        "normal_node0_op_b"]
    assert ds[12].name == "reduce_node0_in_a"
    for d in ds:
        cell, node, slot = d.name.split("_", 2)
        j = int(node[4:])
        assert d.group == cell
        if slot.startswith("in"):
            assert d.kind == "input" and d.num_choices == j + 2 and not d.anchor
        else:
            assert d.kind == "op" and d.labels == MICRO_OPS
            assert d.anchor == (slot == "op_b")
    assert MICRO_OPS == ("identity", "sep_conv3x3", "sep_conv5x5", "avg_pool3x3", "max_pool3x3")


# node0 = sep_conv3x3(x0) + identity(x1); node1 = identity(node0) + avg_pool(x0);
# node2 = max_pool(x1) + sep_conv5x5(x1): node 0 feeds node 1, so the loose ends are nodes 1 and 2.
KNOWN_CELL = [(0, 1, 1, 0), (2, 0, 0, 3), (1, 1, 4, 2)]


def known_arch():
    flat = [c for node in KNOWN_CELL for c in node]
    return Architecture("micro_cnn", tuple(flat + flat))


def test_micro_loose_ends_are_concatenated():
    assert loose_ends(KNOWN_CELL) == [1, 2]
    assert loose_ends([(0, 1, 0, 0), (2, 2, 0, 0), (3, 2, 0, 0)]) == [2]
    case = CASES[1]
    space, arch, supernet, network = build_pair(case, arch=known_arch())
    cell = network.cells[0]
    assert set(cell.out) == {"1", "2"}  # only the loose ends' output weights
    s = network.stem(images())
    states = cell.node_states(s, s, KNOWN_CELL, 0.0)
    # node 1 = identity(node 0) + avg_pool(x0): the wiring follows the genotype
    pooled = F.avg_pool2d(states[0], 3, 1, 1, count_include_pad=False)
    assert torch.allclose(states[3], states[2] + pooled, atol=1e-6)
    weight = torch.cat([cell.out["1"].weight, cell.out["2"].weight], dim=1)  # (c, 2c, 1, 1)
    expected = cell.out_bn(F.conv2d(F.relu(torch.cat([states[3], states[4]], dim=1)), weight))
    assert torch.allclose(cell(s, s, KNOWN_CELL), expected, atol=1e-6)
    # in the supernet, a node that is not a loose end does not reach the output; a loose end does
    x = images()
    base = supernet(x, arch)
    with torch.no_grad():
        supernet.cells[0].out["0"].weight.add_(1.0)
    assert torch.equal(supernet(x, arch), base)
    with torch.no_grad():
        supernet.cells[0].out["2"].weight.add_(1.0)
    assert (supernet(x, arch) - base).abs().max() > 1e-4


def test_micro_aux_head_only_in_training():
    space = SPACES["micro_cnn"](num_nodes=3)
    arch = known_arch()
    for model in (space.build_network(arch, **DATA, channels=4, num_layers=3, aux_head=True),
                  space.build_supernet(**DATA, channels=4, num_layers=3, aux_head=True)):
        model.train()
        out = model(images(), arch)
        assert isinstance(out, tuple) and len(out) == 2
        assert out[0].shape == out[1].shape == (4, DATA["num_classes"])
        model.eval()
        out = model(images(), arch)
        assert isinstance(out, torch.Tensor) and out.shape == (4, DATA["num_classes"])
    no_aux = space.build_network(arch, **DATA, channels=4, num_layers=3).train()
    assert isinstance(no_aux(images()), torch.Tensor)


def test_micro_drop_path_only_in_training():
    space = SPACES["micro_cnn"](num_nodes=3)
    network = space.build_network(known_arch(), **DATA, channels=4, num_layers=3)
    x = images()
    network.eval()
    clean = network(x)
    network.drop_path_prob = 0.5
    assert torch.equal(network(x), clean)
    network.train()
    torch.manual_seed(0)
    plain = network(x)
    network.drop_path_prob = 0.0
    assert (network(x) - plain).abs().max() > 1e-4


def test_micro_graph_has_two_clusters():
    space = SPACES["micro_cnn"](num_nodes=3)
    g = space.graph(known_arch())
    assert list(g.clusters) == ["normal", "reduce"]
    op_edges = [e for e in g.edges if e[2]]
    assert len(op_edges) == 2 * 3 * 2
    assert ("normal_node0", "normal_node1", "identity") in g.edges
    assert {(s, d) for s, d, label in g.edges if not label} == {
        (f"{k}_node{j}", f"{k}_out") for k in ("normal", "reduce") for j in (1, 2)}
    assert "subgraph cluster_0" in g.to_dot()


def test_micro_per_input_weights_count():
    """ENAS (micro_child.py:579-623): op weights and an affine BN per input index of a slot."""
    c, stack = 4, 2
    space = SPACES["micro_cnn"](num_nodes=3)
    shared = space.build_supernet(**DATA, channels=c, num_layers=3, sep_conv_stack=stack)
    per_input = space.build_supernet(**DATA, channels=c, num_layers=3, sep_conv_stack=stack,
                                     per_input_weights=True)

    def sep_params(affine: bool) -> int:   # sep3 + sep5, each (dw kxk + pw 1x1 [+ BN scale/shift]) x stack
        return sum(stack * (c * k * k + c * c + (2 * c if affine else 0)) for k in (3, 5))

    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    for j in range(3):
        assert count(shared.cells[0].nodes[j]["a"]) == sep_params(affine=False)
        assert count(per_input.cells[0].nodes[j]["a"]) == (j + 2) * sep_params(affine=True)
        assert set(per_input.cells[0].nodes[j]["b"]) == {f"{k}_{i}" for k in range(5) for i in range(j + 2)}
    # a standalone network holds one op per slot either way, named after its input when per-input
    network = space.build_network(known_arch(), **DATA, channels=c, num_layers=3, per_input_weights=True)
    assert [set(node["a"]) | set(node["b"]) for node in network.cells[0].nodes] == [
        {"1_0", "0_1"}, {"0_2", "3_0"}, {"4_1", "2_1"}]


def test_sep_conv_stacked_twice():
    """ENAS micro child: ReLU-sepconv-BN twice (micro_child.py:579-623 search, :341-367 final)."""
    x = torch.randn(2, 6, 8, 8)
    for stack in (1, 2):
        op = make_op("sep_conv3x3", 6, 2, affine=True, track_running_stats=True, sep_stack=stack)
        kinds = [type(m).__name__ for m in op]
        assert kinds == ["ReLU", "Conv2d", "Conv2d", "BatchNorm2d"] * stack
        depthwise = [m for m in op if isinstance(m, torch.nn.Conv2d) and m.groups == 6]
        assert len(depthwise) == stack and [m.stride for m in depthwise] == [(2, 2)] + [(1, 1)] * (stack - 1)
        assert op(x).shape == (2, 6, 4, 4)
    space = SPACES["micro_cnn"](num_nodes=3)
    for model in (space.build_supernet(**DATA, channels=4, num_layers=3, sep_conv_stack=2),
                  space.build_network(known_arch(), **DATA, channels=4, num_layers=3, sep_conv_stack=2)):
        sep5 = model.cells[0].nodes[2]["b"]["2"]   # node 2 slot b is sep_conv5x5 in KNOWN_CELL
        assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in sep5) == 2
        assert sum(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (5, 5) for m in sep5) == 2
    with pytest.raises(ValueError, match="sep_conv_stack"):
        space.build_supernet(**DATA, channels=4, num_layers=3, sep_conv_stack=0)


# ---------------------------------------------------------------- cnn_ops

def test_ops_keep_shape_and_halve_with_stride_two():
    x = torch.randn(2, 6, 8, 8)
    assert set(OPS) == {"conv3x3", "conv5x5", "sep_conv3x3", "sep_conv5x5", "max_pool3x3", "avg_pool3x3",
                        "identity"}
    for label in OPS:
        for stride, size in ((1, 8), (2, 4)):
            op = make_op(label, 6, stride, affine=False, track_running_stats=False)
            assert op(x).shape == (2, 6, size, size), (label, stride)
    assert torch.equal(make_op("identity", 6, 1, True, True)(x), x)
    with pytest.raises(ValueError, match="conv7x7"):
        make_op("conv7x7", 6, 1, True, True)


def test_drop_path_zeroes_whole_samples():
    x = torch.ones(64, 3, 4, 4)
    torch.manual_seed(0)
    y = drop_path(x, 0.5)
    per_sample = y.flatten(1)
    dropped = (per_sample == 0).all(1)
    kept = (per_sample == 2.0).all(1)  # scaled by 1 / keep
    assert bool((dropped | kept).all())
    assert 10 < int(dropped.sum()) < 54
    assert torch.equal(drop_path(x, 0.5, training=False), x)
    assert torch.equal(drop_path(x, 0.0), x)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_inherited_network_matches_supernet_on_cuda(case):
    space, arch, supernet, network = build_pair(case, device="cuda")
    x = images().cuda()
    assert torch.allclose(network(x), supernet(x, arch), atol=1e-4)
    supernet.drop_path_prob = 0.3
    supernet(x, arch).sum().backward()
