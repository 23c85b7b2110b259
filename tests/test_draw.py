"""Tests for enas.draw: Pillow drawings of architecture graphs."""

import numpy as np
import pytest
from PIL import Image

from enas.draw import MAX_SIDE, _layers, render_graph, save_png, to_array
from enas.spaces.base import Graph


def rnn_cell_graph() -> Graph:
    """Like an ENAS RNN cell: x_t and h_prev feed node 0; loose ends are averaged into h_t."""
    nodes = [("x", "x_t"), ("h", "h_prev"), ("0", "0: tanh"), ("1", "1: relu"),
             ("2", "2: relu"), ("3", "3: sigmoid"), ("out", "h_t")]
    edges = [("x", "0", ""), ("h", "0", ""), ("0", "1", "W1"), ("1", "2", "W2"), ("0", "3", "W3"),
             ("2", "out", "avg"), ("3", "out", "avg")]
    return Graph(nodes, edges)


def conv_cell(prefix: str) -> tuple[list, list]:
    """A micro CNN cell: two inputs, three nodes with two labelled inputs each, an output."""
    p = prefix
    nodes = [(p + "k2", "c_{k-2}"), (p + "k1", "c_{k-1}"), (p + "0", "node 0"), (p + "1", "node 1"),
             (p + "2", "node 2"), (p + "out", "c_k")]
    edges = [(p + "k2", p + "0", "sep 3x3"), (p + "k1", p + "0", "identity"),
             (p + "0", p + "1", "avg 3x3"), (p + "k2", p + "1", "max 3x3"),
             (p + "k1", p + "2", "sep 5x5"), (p + "k1", p + "2", "max 3x3"),
             (p + "1", p + "out", ""), (p + "2", p + "out", "")]
    return nodes, edges


def macro_chain(n: int = 24) -> Graph:
    """A macro CNN: n layers in a chain plus every possible skip edge (n-1)(n-2)/2."""
    nodes = [(str(i), f"{i}: sep 5x5") for i in range(n)]
    edges = [(str(i), str(i + 1), "") for i in range(n - 1)]
    edges += [(str(i), str(j), "") for j in range(n) for i in range(j - 1)]
    return Graph(nodes, edges)


def non_white(img: Image.Image) -> int:
    """Number of pixels that are not pure white."""
    arr = np.asarray(img.convert("RGB"))
    return int((arr < 250).any(axis=2).sum())


def test_rnn_cell_renders_legible_size():
    img = render_graph(rnn_cell_graph(), title="rnn cell")
    assert img.mode == "RGB"
    w, h = img.size
    assert 300 <= w <= MAX_SIDE and 80 <= h <= 1000
    assert w > h  # left to right
    assert non_white(img) > 2000
    assert img.getpixel((0, 0)) == (255, 255, 255)  # white background


def test_layers_are_longest_paths():
    g = rnn_cell_graph()
    layer = _layers([i for i, _ in g.nodes], g.edges)
    assert layer == {"x": 0, "h": 0, "0": 1, "1": 2, "2": 3, "3": 2, "out": 4}


def test_clusters_are_side_by_side_panels():
    n1, e1 = conv_cell("n")
    n2, e2 = conv_cell("r")
    g = Graph(n1 + n2, e1 + e2, {"normal": [i for i, _ in n1], "reduce": [i for i, _ in n2]})
    both = render_graph(g, title="cells")
    one = render_graph(Graph(n1, e1, {"normal": [i for i, _ in n1]}), title="cells")
    assert both.height == one.height
    assert both.width > 1.8 * one.width  # the second panel sits beside the first
    assert non_white(both) > 1.5 * non_white(one)


def test_cross_panel_edges_and_unclustered_nodes():
    n1, e1 = conv_cell("n")
    nodes = n1 + [("stem", "stem")]
    edges = e1 + [("stem", "nk2", "")]
    img = render_graph(Graph(nodes, edges, {"normal": [i for i, _ in n1]}))
    assert non_white(img) > 2000


def test_macro_chain_with_all_skips_is_capped():
    g = macro_chain(24)
    assert len(g.edges) == 23 + 253  # 276 edges, as many as a 24-layer macro CNN can have
    img = render_graph(g, title="macro")
    w, h = img.size
    assert 1000 <= w <= MAX_SIDE and 150 <= h <= 1200
    assert w > 2 * h  # one row with arcs, not a tall layered drawing
    assert non_white(img) > 10000


def test_chain_with_labels_and_long_chain_cap():
    nodes = [(str(i), f"layer {i}") for i in range(6)]
    edges = [(str(i), str(i + 1), "conv") for i in range(5)] + [("0", "3", "skip")]
    assert non_white(render_graph(Graph(nodes, edges))) > 1000
    long = render_graph(macro_chain(70))  # far wider than MAX_SIDE at full size
    assert max(long.size) <= MAX_SIDE


def test_to_array_shape_and_dtype():
    g = rnn_cell_graph()
    arr = to_array(g, title="x")
    img = render_graph(g, title="x")
    assert arr.dtype == np.uint8
    assert arr.shape == (img.height, img.width, 3)
    assert np.array_equal(arr, np.asarray(img))


def test_save_png_writes_valid_png(tmp_path):
    path = tmp_path / "sub" / "arch.png"
    save_png(rnn_cell_graph(), path, title="saved")
    with Image.open(path) as img:
        assert img.format == "PNG"
        img.load()
        assert img.size == render_graph(rnn_cell_graph(), title="saved").size
    assert [p.name for p in path.parent.iterdir()] == ["arch.png"]  # no temporary file left


def test_cycle_raises_naming_a_node():
    g = Graph([("a", "a"), ("b", "b"), ("c", "c")], [("a", "b", ""), ("b", "c", ""), ("c", "b", "")])
    with pytest.raises(ValueError, match=r"cycle.*'b'"):
        render_graph(g)
    with pytest.raises(ValueError, match="'a'"):
        render_graph(Graph([("a", "a")], [("a", "a", "")]))


def test_bad_graph_errors_name_the_node():
    with pytest.raises(ValueError, match="'zz'"):
        render_graph(Graph([("a", "a")], [("a", "zz", "")]))
    with pytest.raises(ValueError, match="'a'"):
        render_graph(Graph([("a", "a"), ("a", "b")], []))
    with pytest.raises(ValueError, match="'q'"):
        render_graph(Graph([("a", "a")], [], {"cell": ["q"]}))


def test_single_node_and_empty_graph():
    assert non_white(render_graph(Graph([("x", "only")], []))) > 50
    assert render_graph(Graph()).size[0] >= 1
