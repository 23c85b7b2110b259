"""Draw an architecture `Graph` to an image with Pillow (no graphviz binary needed).

Two layouts, chosen per panel automatically:
- layered (left to right): layer = longest path from a source; edges that skip layers are
  routed through invisible "dummy" slots in the layers they cross, so they do not run through
  boxes; nodes in a layer are ordered by the barycentre of their neighbours (a few sweeps).
- chain: when every layer holds exactly one node (a chain such as the macro CNN, possibly with
  many skip connections) the nodes sit in one row, chain edges run along the row and skip edges
  are drawn as arcs above it, higher for longer skips.

Clusters become separate panels side by side, each with its name as a heading. Everything is
drawn at `_SUPERSAMPLE` times the final size and scaled down, which antialiases lines and text.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from enas.spaces.base import Graph

MAX_SIDE = 4000  # the final image is scaled down so that neither side exceeds this (pixels)
_SUPERSAMPLE = 2  # draw at this multiple of the final size, then downscale (antialiasing)

# Edge colours, cycled by source node: dark enough on white, distinct from one another.
_PALETTE = ["#1f4e9c", "#c0392b", "#1e8449", "#8e44ad", "#d35400", "#117a8b",
            "#7d6608", "#a93279", "#34495e", "#6b8e23"]
_BOX_FILL = "#dde8f5"
_SOURCE_FILL = "#dff2df"  # nodes without inputs (cell inputs)
_SINK_FILL = "#fdf1cf"  # nodes without outputs (cell outputs)
_BOX_LINE = "#2b4c7e"
_TEXT = "#111111"
_PANEL_LINE = "#b0b0b0"

Point = tuple[float, float]


@dataclass
class _Style:
    """Sizes in pixels at the drawing scale `s` (final size times the supersampling factor)."""

    s: int

    def __post_init__(self):
        s = self.s
        self.node_font = _font(13 * s)
        self.edge_font = _font(12 * s)
        self.head_font = _font(15 * s)
        self.title_font = _font(19 * s)
        self.pad_x, self.pad_y = 10 * s, 6 * s  # text padding inside a node box
        self.radius = 7 * s  # rounded corners
        self.line = 1 * s  # edge width
        self.box_line = 2 * s
        self.arrow_len, self.arrow_half = 9 * s, 4 * s
        self.row_gap = 22 * s  # vertical gap between nodes of one layer
        self.dummy_h = 8 * s  # slot height of an edge passing through a layer
        self.col_gap = 64 * s  # minimum horizontal gap between layers
        self.margin = 16 * s  # inside a panel, around the drawing
        self.panel_gap = 20 * s
        self.label_pad = 2 * s  # white background around edge labels


def _font(size: int) -> ImageFont.ImageFont:
    """Pillow's built-in font at `size` px (without FreeType: its small fixed-size bitmap font)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def _text_size(font, text: str) -> tuple[int, int]:
    """Width and height of `text` drawn with `font`, including the ascent above the ink."""
    if not text:
        return 0, 0
    left, top, right, bottom = font.getbbox(text)
    return right - min(left, 0), bottom


# ---------------------------------------------------------------------------------------------
# Graph checks and layering


def _check(graph: Graph) -> dict[str, str]:
    """Return {id: label}; raise ValueError for duplicate or unknown node ids."""
    labels: dict[str, str] = {}
    for node_id, label in graph.nodes:
        if node_id in labels:
            raise ValueError(f"graph: duplicate node id {node_id!r}")
        labels[node_id] = label
    for src, dst, _ in graph.edges:
        for end in (src, dst):
            if end not in labels:
                raise ValueError(f"graph: edge {src!r} -> {dst!r} names unknown node {end!r}")
    owner: dict[str, str] = {}
    for name, members in graph.clusters.items():
        for m in members:
            if m not in labels:
                raise ValueError(f"graph: cluster {name!r} names unknown node {m!r}")
            if m in owner:
                raise ValueError(f"graph: node {m!r} is in clusters {owner[m]!r} and {name!r}")
            owner[m] = name
    return labels


def _check_acyclic(ids: list[str], edges: list[tuple[str, str, str]]) -> None:
    """Raise ValueError naming the nodes of a cycle, if there is one (iterative DFS)."""
    succ: dict[str, list[str]] = {i: [] for i in ids}
    for src, dst, _ in edges:
        succ[src].append(dst)
    state = {i: 0 for i in ids}  # 0 unseen, 1 on the DFS stack, 2 done
    for root in ids:
        if state[root]:
            continue
        stack = [(root, iter(succ[root]))]
        path = [root]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state[child] == 1:  # back edge: child .. node .. child is a cycle
                cycle = path[path.index(child):] + [child]
                shown = " -> ".join(map(repr, cycle))
                raise ValueError(f"graph has a cycle through node {child!r}: {shown}")
            elif state[child] == 0:
                state[child] = 1
                stack.append((child, iter(succ[child])))
                path.append(child)


def _layers(ids: list[str], edges: list[tuple[str, str, str]]) -> dict[str, int]:
    """Layer of every node: the length of the longest path reaching it from a source."""
    _check_acyclic(ids, edges)
    indeg = {i: 0 for i in ids}
    succ: dict[str, list[str]] = {i: [] for i in ids}
    for src, dst, _ in edges:
        indeg[dst] += 1
        succ[src].append(dst)
    layer = {i: 0 for i in ids}
    ready = [i for i in ids if indeg[i] == 0]
    while ready:  # Kahn's algorithm in node order
        node = ready.pop(0)
        for nxt in succ[node]:
            layer[nxt] = max(layer[nxt], layer[node] + 1)
            indeg[nxt] -= 1
            if indeg[nxt] == 0:
                ready.append(nxt)
    return layer


# ---------------------------------------------------------------------------------------------
# Panel layouts: boxes and edge paths in panel coordinates


@dataclass
class _Box:
    """A node box, by its centre and size."""

    label: str
    cx: float
    cy: float
    w: float
    h: float
    fill: str = _BOX_FILL

    def rect(self, dx: float = 0, dy: float = 0) -> tuple[float, float, float, float]:
        return (self.cx - self.w / 2 + dx, self.cy - self.h / 2 + dy,
                self.cx + self.w / 2 + dx, self.cy + self.h / 2 + dy)


@dataclass
class _Path:
    """An edge: a sampled polyline ending in an arrowhead, with its label and colour."""

    points: list[Point]
    label: str
    color: str
    label_fracs: tuple[float, ...] = (0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8)


@dataclass
class _Panel:
    """One laid-out cluster: content size, boxes by node id, and edge paths."""

    heading: str
    width: float
    height: float
    boxes: dict[str, _Box] = field(default_factory=dict)
    paths: list[_Path] = field(default_factory=list)


def _bezier(a: Point, b: Point, n: int) -> list[Point]:
    """Cubic curve from a to b leaving and arriving horizontally (n+1 points)."""
    dx = (b[0] - a[0]) / 2
    c1, c2 = (a[0] + dx, a[1]), (b[0] - dx, b[1])
    out = []
    for k in range(n + 1):
        t = k / n
        u = 1 - t
        x = u ** 3 * a[0] + 3 * u * u * t * c1[0] + 3 * u * t * t * c2[0] + t ** 3 * b[0]
        y = u ** 3 * a[1] + 3 * u * u * t * c1[1] + 3 * u * t * t * c2[1] + t ** 3 * b[1]
        out.append((x, y))
    return out


def _make_boxes(ids: list[str], labels: dict[str, str], st: _Style) -> dict[str, _Box]:
    """Boxes sized to their labels (placed later)."""
    boxes = {}
    for i in ids:
        w, h = _text_size(st.node_font, labels[i])
        boxes[i] = _Box(labels[i], 0, 0, max(w + 2 * st.pad_x, 3 * st.pad_x), h + 2 * st.pad_y)
    return boxes


def _fills(graph: Graph) -> dict[str, str]:
    """Box colour by role in the whole graph: inputs (no in-edges), outputs (no out-edges), inner."""
    has_in = {d for _, d, _ in graph.edges}
    has_out = {s for s, _, _ in graph.edges}
    fills = {}
    for i, _ in graph.nodes:
        fills[i] = _BOX_FILL
        if i not in has_in and i in has_out:
            fills[i] = _SOURCE_FILL
        elif i in has_in and i not in has_out:
            fills[i] = _SINK_FILL
    return fills


def _spread(center: float, n: int, half_extent: float, max_step: float) -> list[float]:
    """n port positions spread around `center`, at most `max_step` apart, within +-half_extent."""
    if n <= 1:
        return [center]
    step = min(2 * half_extent / (n - 1), max_step)
    return [center + (k - (n - 1) / 2) * step for k in range(n)]


def _layout_layered(heading, ids, labels, edges, layer, colors, st: _Style) -> _Panel:
    """Left-to-right layered layout with dummy slots for edges that skip layers."""
    boxes = _make_boxes(ids, labels, st)
    n_layers = max(layer.values()) + 1
    # Items per layer: node ids, or dummy keys (edge index, layer) for edges crossing a layer.
    items: list[list] = [[] for _ in range(n_layers)]
    for i in ids:
        items[layer[i]].append(i)
    preds: dict = {}
    succs: dict = {}
    hops: list[list] = []  # per edge: the chain of items it passes, source to destination
    for e, (src, dst, _) in enumerate(edges):
        chain = [src] + [(e, l) for l in range(layer[src] + 1, layer[dst])] + [dst]
        for l in range(layer[src] + 1, layer[dst]):
            items[l].append((e, l))
        for a, b in zip(chain, chain[1:]):
            succs.setdefault(a, []).append(b)
            preds.setdefault(b, []).append(a)
        hops.append(chain)

    _order_layers(items, preds, succs)

    def height(item) -> float:
        return boxes[item].h if isinstance(item, str) else st.dummy_h

    # Vertical: stack each layer, centred on the tallest layer.
    col_h = [sum(height(it) for it in col) + st.row_gap * max(len(col) - 1, 0) for col in items]
    content_h = max(col_h)
    ys: dict = {}
    for col, h in zip(items, col_h):
        y = st.margin + (content_h - h) / 2
        for it in col:
            ys[it] = y + height(it) / 2
            y += height(it) + st.row_gap
    # Horizontal: column width = widest node; the gap after a column fits the widest edge label
    # of the edges that leave it.
    col_w = [max((boxes[it].w for it in col if isinstance(it, str)), default=0) for col in items]
    gap = [st.col_gap] * n_layers
    for (src, _, lab) in edges:
        gap[layer[src]] = max(gap[layer[src]], _text_size(st.edge_font, lab)[0] + 6 * st.arrow_len)
    col_x, x = [], st.margin
    for l in range(n_layers):
        col_x.append(x)
        x += col_w[l] + gap[l]
    width = x - gap[-1] + st.margin
    for i in ids:
        b = boxes[i]
        b.cx, b.cy = col_x[layer[i]] + col_w[layer[i]] / 2, ys[i]

    ports = _ports(hops, ys, boxes, st)
    paths = []
    for e, chain in enumerate(hops):
        src, dst, lab = edges[e]
        pts: list[Point] = [ports[(e, "out")]]
        for it in chain[1:-1]:  # horizontal run through each crossed column
            l = it[1]
            pts += [(col_x[l], ys[it]), (col_x[l] + col_w[l], ys[it])]
        pts.append(ports[(e, "in")])
        line: list[Point] = [pts[0]]
        for a, b in zip(pts, pts[1:]):
            line += _bezier(a, b, 18)[1:]
        paths.append(_Path(line, lab, colors[src]))
    return _Panel(heading, width, content_h + 2 * st.margin, boxes, paths)


def _order_layers(items: list[list], preds: dict, succs: dict, sweeps: int = 3) -> None:
    """Reorder items inside each layer by the barycentre of their neighbours' positions.

    Alternates left-to-right (by predecessors) and right-to-left (by successors) sweeps;
    positions are normalised to [0, 1] so layers of different sizes compare.
    """
    def pos(col: list) -> dict:
        n = max(len(col) - 1, 1)
        return {it: k / n for k, it in enumerate(col)} if len(col) > 1 else {col[0]: 0.5}

    for sweep in range(sweeps):
        forward = sweep % 2 == 0
        order = range(1, len(items)) if forward else range(len(items) - 2, -1, -1)
        for l in order:
            ref = pos(items[l - 1] if forward else items[l + 1])
            neigh = preds if forward else succs
            current = pos(items[l])

            def key(it, ref=ref, neigh=neigh, current=current):
                near = [ref[n] for n in neigh.get(it, []) if n in ref]
                return sum(near) / len(near) if near else current[it]

            items[l].sort(key=key)  # stable: ties keep their order


def _ports(hops: list[list], ys: dict, boxes: dict[str, _Box], st: _Style) -> dict:
    """Where each edge leaves its source (right side) and enters its target (left side).

    Edges at one node are spread along its side, ordered by the y of the other end, so that
    parallel edges stay apart and do not cross right at the box.
    """
    out: dict[str, list] = {}
    inn: dict[str, list] = {}
    for e, chain in enumerate(hops):
        out.setdefault(chain[0], []).append((ys[chain[1]], e))
        inn.setdefault(chain[-1], []).append((ys[chain[-2]], e))
    ports = {}
    for node, lst in out.items():
        b = boxes[node]
        for y, (_, e) in zip(_spread(b.cy, len(lst), b.h / 2 - st.radius / 2, 5 * st.s), sorted(lst)):
            ports[(e, "out")] = (b.cx + b.w / 2, y)
    for node, lst in inn.items():
        b = boxes[node]
        for y, (_, e) in zip(_spread(b.cy, len(lst), b.h / 2 - st.radius / 2, 5 * st.s), sorted(lst)):
            ports[(e, "in")] = (b.cx - b.w / 2, y)
    return ports


def _fan(first: float, last: float, n: int) -> list[float]:
    """n evenly spaced positions from `first` to `last` (their middle when n == 1)."""
    if n == 1:
        return [(first + last) / 2]
    return [first + (last - first) * k / (n - 1) for k in range(n)]


def _layout_chain(heading, order, labels, edges, colors, st: _Style) -> _Panel:
    """One row of nodes in chain order; chain edges along the row, skip edges as arcs above."""
    boxes = _make_boxes(order, labels, st)
    pos = {i: k for k, i in enumerate(order)}
    spans = [pos[d] - pos[s] for s, d, _ in edges]
    max_span = max([s for s in spans if s > 1], default=1)
    # Arc height grows with the span; capped so a 24-node chain stays a sensible height.
    arc_step = min(16 * st.s, 320 * st.s / max(max_span - 1, 1))
    arc_base = 22 * st.s

    def arc_h(span: int) -> float:
        return arc_base + arc_step * (span - 2)

    # Gaps between neighbours fit the label of the chain edge between them.
    gap = [st.col_gap // 2] * len(order)
    for (s, d, lab), span in zip(edges, spans):
        if span == 1:
            gap[pos[s]] = max(gap[pos[s]], _text_size(st.edge_font, lab)[0] + 2 * st.arrow_len)
    top = st.margin + (arc_h(max_span) if max_span > 1 else 0) + _text_size(st.edge_font, "Ag")[1]
    row_h = max(b.h for b in boxes.values())
    x = st.margin
    for k, i in enumerate(order):
        b = boxes[i]
        b.cx, b.cy = x + b.w / 2, top + row_h / 2
        x += b.w + gap[k]
    width = x - gap[-1] + st.margin
    height = top + row_h + _text_size(st.edge_font, "Ag")[1] + 2 * st.label_pad + st.margin

    # Ports: outgoing arcs leave from the right half of a box's top, incoming arrive on the
    # left half, spread by the other end so that arcs fan out instead of stacking.
    out_arcs: dict[str, list] = {}
    in_arcs: dict[str, list] = {}
    for e, ((s, d, _), span) in enumerate(zip(edges, spans)):
        if span > 1:
            out_arcs.setdefault(s, []).append((pos[d], e))
            in_arcs.setdefault(d, []).append((-pos[s], e))
    start: dict[int, float] = {}
    end: dict[int, float] = {}
    for node, lst in out_arcs.items():
        b = boxes[node]
        for xx, (_, e) in zip(_fan(b.cx + 3 * st.s, b.cx + b.w / 2 - st.radius, len(lst)), sorted(lst)):
            start[e] = xx
    for node, lst in in_arcs.items():
        b = boxes[node]
        for xx, (_, e) in zip(_fan(b.cx - 3 * st.s, b.cx - b.w / 2 + st.radius, len(lst)), sorted(lst)):
            end[e] = xx

    paths = []
    for e, ((s, d, lab), span) in enumerate(zip(edges, spans)):
        bs, bd = boxes[s], boxes[d]
        if span == 1:
            pts = [(bs.cx + bs.w / 2, bs.cy), (bd.cx - bd.w / 2, bd.cy)]
            # Chain-edge labels go below the row, away from the arcs.
            paths.append(_Path(pts, lab, colors[s], label_fracs=(-1.0,)))
            continue
        x0, x1 = start[e], end[e]
        y0 = bs.cy - bs.h / 2
        h = arc_h(span)
        pts = []
        for k in range(61):  # half ellipse over the row, from the source top to the target top
            a = math.pi * (1 - k / 60)
            pts.append(((x0 + x1) / 2 + (x1 - x0) / 2 * math.cos(a), y0 - h * math.sin(a)))
        paths.append(_Path(pts, lab, colors[s], label_fracs=(0.5, 0.42, 0.58, 0.34, 0.66, 0.26, 0.74)))
    return _Panel(heading, width, height, boxes, paths)


# ---------------------------------------------------------------------------------------------
# Rendering


def _arrowhead(draw: ImageDraw.ImageDraw, pts: list[Point], color: str, st: _Style) -> None:
    """A filled triangle at the end of `pts`, along the direction of its last stretch."""
    tip = pts[-1]
    back = None
    for p in reversed(pts[:-1]):  # a point far enough back to give a stable direction
        if math.dist(p, tip) >= st.arrow_len / 2:
            back = p
            break
    if back is None:
        back = pts[0]
    dx, dy = tip[0] - back[0], tip[1] - back[1]
    norm = math.hypot(dx, dy) or 1.0
    ux, uy = dx / norm, dy / norm
    bx, by = tip[0] - ux * st.arrow_len, tip[1] - uy * st.arrow_len
    draw.polygon([tip, (bx - uy * st.arrow_half, by + ux * st.arrow_half),
                  (bx + uy * st.arrow_half, by - ux * st.arrow_half)], fill=color)


def _point_at(pts: list[Point], frac: float) -> Point:
    """The point at fraction `frac` of the polyline's length."""
    seg = [math.dist(a, b) for a, b in zip(pts, pts[1:])]
    target = frac * sum(seg)
    for (a, b), d in zip(zip(pts, pts[1:]), seg):
        if target <= d and d > 0:
            t = target / d
            return a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t
        target -= d
    return pts[-1]


def _overlap(r1, r2) -> float:
    """Area of the intersection of two (x0, y0, x1, y1) rectangles."""
    w = min(r1[2], r2[2]) - max(r1[0], r2[0])
    h = min(r1[3], r2[3]) - max(r1[1], r2[1])
    return w * h if w > 0 and h > 0 else 0.0


def _label_candidates(path: _Path, dx: float, dy: float, w: float, h: float, st: _Style):
    """Rectangles where `path`'s label may go, best first: along the path near its middle,
    each spot also nudged up and down (so labels of parallel edges stack)."""
    p = st.label_pad
    for frac in path.label_fracs:
        if frac < 0:  # below a straight chain edge
            (ax, ay), (bx, _) = path.points[0], path.points[-1]
            cx, cy = (ax + bx) / 2 + dx, ay + dy + st.arrow_half + 2 * p + h / 2
        else:
            cx, cy = _point_at(path.points, frac)
            cx, cy = cx + dx, cy + dy
        for nudge in (0, -1, 1):
            y = cy + nudge * (h + 2 * p + st.s)
            yield (cx - w / 2 - p, y - h / 2 - p, cx + w / 2 + p, y + h / 2 + p)


def _place_label(path: _Path, dx: float, dy: float, taken: list, size: tuple[int, int], st: _Style):
    """The rectangle for `path`'s label: the first candidate that overlaps no box or label
    already placed and lies inside the image of `size`, else the one overlapping least."""
    w, h = _text_size(st.edge_font, path.label)
    inside = (0, 0, size[0], size[1])
    best, best_cost = None, None
    for rect in _label_candidates(path, dx, dy, w, h, st):
        area = (rect[2] - rect[0]) * (rect[3] - rect[1])
        cost = sum(_overlap(rect, t) for t in taken) + (area - _overlap(rect, inside))
        if best is None or cost < best_cost:
            best, best_cost = rect, cost
        if cost == 0:
            break
    return best


def _draw_panel(draw, panel: _Panel, ox: float, oy: float, taken: list, st: _Style) -> list:
    """Draw edges and boxes of `panel` offset by (ox, oy); return its labels to draw on top."""
    for path in panel.paths:
        pts = [(x + ox, y + oy) for x, y in path.points]
        draw.line(pts, fill=path.color, width=st.line, joint="curve")
        _arrowhead(draw, pts, path.color, st)
    for box in panel.boxes.values():
        r = box.rect(ox, oy)
        draw.rounded_rectangle(r, radius=st.radius, fill=box.fill, outline=_BOX_LINE, width=st.box_line)
        draw.text(((r[0] + r[2]) / 2, (r[1] + r[3]) / 2), box.label, fill=_TEXT,
                  font=st.node_font, anchor="mm")
        taken.append(r)
    labels = []
    for path in panel.paths:
        if path.label:
            labels.append((path, ox, oy))
    return labels


def _draw_label(draw, path: _Path, rect, st: _Style) -> None:
    """An edge label in the edge's colour on a white patch."""
    draw.rectangle(rect, fill="white")
    draw.text(((rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2), path.label, fill=path.color,
              font=st.edge_font, anchor="mm")


def _panels(graph: Graph) -> list[tuple[str, list[str]]]:
    """(heading, node ids) per panel: one per cluster, plus unclustered nodes if any."""
    if not graph.clusters:
        return [("", [i for i, _ in graph.nodes])] if graph.nodes else []
    clustered = {m for members in graph.clusters.values() for m in members}
    panels = [(name, list(members)) for name, members in graph.clusters.items() if members]
    rest = [i for i, _ in graph.nodes if i not in clustered]
    if rest:
        panels.append(("other", rest))
    return panels


def _layout_panel(heading, ids, labels, edges, colors, st: _Style) -> _Panel:
    """Lay out one panel, choosing the chain layout when every layer holds a single node."""
    layer = _layers(ids, edges)
    per_layer: dict[int, int] = {}
    for l in layer.values():
        per_layer[l] = per_layer.get(l, 0) + 1
    if len(ids) > 1 and all(c == 1 for c in per_layer.values()):
        order = sorted(ids, key=lambda i: layer[i])
        return _layout_chain(heading, order, labels, edges, colors, st)
    return _layout_layered(heading, ids, labels, edges, layer, colors, st)


def _render_big(graph: Graph, title: str, st: _Style) -> Image.Image:
    """Render at the drawing scale of `st` (before the final downscale)."""
    labels = _check(graph)
    _check_acyclic(list(labels), graph.edges)
    colors = {i: _PALETTE[k % len(_PALETTE)] for k, (i, _) in enumerate(graph.nodes)}
    panel_of = {}
    panels = []
    for heading, ids in _panels(graph):
        members = set(ids)
        for i in ids:
            panel_of[i] = len(panels)
        inner = [e for e in graph.edges if e[0] in members and e[1] in members]
        panels.append(_layout_panel(heading, ids, labels, inner, colors, st))
    fills = _fills(graph)
    for p in panels:
        for i, box in p.boxes.items():
            box.fill = fills[i]

    head_h = max((_text_size(st.head_font, p.heading)[1] for p in panels), default=0)
    head_h = head_h + st.margin // 2 if head_h else 0
    title_w, title_h = _text_size(st.title_font, title)
    top = st.margin + (title_h + st.margin if title else 0)
    panel_h = max(p.height for p in panels) + head_h if panels else 0
    panels_w = sum(p.width for p in panels) + st.panel_gap * max(len(panels) - 1, 0)
    width = max(panels_w + 2 * st.margin, title_w + 2 * st.margin, 40 * st.s)
    cross = [e for e in graph.edges if panel_of[e[0]] != panel_of[e[1]]]
    lane_step = _text_size(st.edge_font, "Ag")[1] + 2 * st.label_pad + 4 * st.s
    lanes_h = len(cross) * lane_step + st.margin if cross else 0
    height = max(top + panel_h + lanes_h + st.margin, 40 * st.s)

    img = Image.new("RGB", (int(math.ceil(width)), int(math.ceil(height))), "white")
    draw = ImageDraw.Draw(img)
    if title:
        draw.text((width / 2, st.margin), title, fill=_TEXT, font=st.title_font, anchor="mt")
    origin = []  # top-left corner of each panel's drawing
    x = st.margin
    for p in panels:
        if graph.clusters:  # a frame and a heading per cluster
            draw.rounded_rectangle((x, top, x + p.width, top + panel_h), radius=st.radius,
                                   outline=_PANEL_LINE, width=st.s)
            draw.text((x + p.width / 2, top + st.margin // 2), p.heading, fill=_TEXT,
                      font=st.head_font, anchor="mt")
        origin.append((x, top + head_h + (panel_h - head_h - p.height) / 2))
        x += p.width + st.panel_gap

    # Edges between panels: down from the source box to a lane of their own below the panels,
    # along it, and up into the target box, so that they cross no other panel's drawing.
    pending = []  # (path, dx, dy) of every labelled edge
    for k, (src, dst, lab) in enumerate(cross):
        ps, pd = panel_of[src], panel_of[dst]
        bs = panels[ps].boxes[src].rect(*origin[ps])
        bd = panels[pd].boxes[dst].rect(*origin[pd])
        lane = top + panel_h + st.margin + k * lane_step
        xs, xd = (bs[0] + bs[2]) / 2 + k * st.s, (bd[0] + bd[2]) / 2 - k * st.s
        path = _Path([(xs, bs[3]), (xs, lane), (xd, lane), (xd, bd[3])], lab, colors[src])
        draw.line(path.points, fill=path.color, width=st.line, joint="curve")
        _arrowhead(draw, path.points, path.color, st)
        if lab:
            pending.append((path, 0.0, 0.0))

    taken: list = []  # rectangles of boxes and placed labels, for label placement
    for p, (ox, oy) in zip(panels, origin):
        pending += _draw_panel(draw, p, ox, oy, taken, st)

    for path, ox, oy in pending:  # labels last, so that no edge is drawn over them
        rect = _place_label(path, ox, oy, taken, img.size, st)
        taken.append(rect)
        _draw_label(draw, path, rect, st)
    return img


def render_graph(graph: Graph, title: str = "") -> Image.Image:
    """Draw `graph` left to right as an RGB image on white (at most MAX_SIDE px a side).

    Raises ValueError naming a node on a cycle, or an unknown / duplicate node id.
    """
    st = _Style(_SUPERSAMPLE)
    big = _render_big(graph, title, st)
    scale = min(1.0 / _SUPERSAMPLE, MAX_SIDE / max(big.size))
    size = (max(1, round(big.width * scale)), max(1, round(big.height * scale)))
    return big.resize(size, Image.LANCZOS)


def to_array(graph: Graph, title: str = "") -> np.ndarray:
    """The drawing as a uint8 array (H, W, 3), e.g. for `add_image(..., dataformats="HWC")`."""
    return np.asarray(render_graph(graph, title).convert("RGB"), dtype=np.uint8)


def save_png(graph: Graph, path: str | os.PathLike, title: str = "") -> None:
    """Write the drawing to `path` as PNG, atomically and durably (enas.fileio.atomic_write)."""
    from enas.fileio import atomic_write
    img = render_graph(graph, title)
    atomic_write(path, lambda f: img.save(f, format="PNG"), make_parents=True)
