"""Small charts drawn with Pillow (no matplotlib): scatter panels and a strip plot.

    image = scatter_panels([Panel(x, y, "one-shot score", "trained acc", "one-shot vs trained")], title)
    image = strip_plot(rows, "test acc", title)        # labelled rows of dots on one value axis
    save_image(image, "rank_check.png");  array = np.asarray(image)   # (H, W, 3) for TensorBoard

Each panel has a frame, five ticks per axis with values, axis labels and a title; points are
small circles. Non-finite values are not drawn.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from enas.draw import _font, _text_size

PANEL = (420, 340)                  # width, height of one panel in pixels
MARGIN = dict(left=64, right=16, top=34, bottom=48)
COLORS = ["#1f4e9c", "#c0392b", "#1e8449", "#8e44ad", "#d35400", "#117a8b"]
GREY = "#8a8a8a"


@dataclass
class Panel:
    """One scatter panel: paired values and labels (optionally a note under the title)."""

    x: Sequence[float]
    y: Sequence[float]
    xlabel: str
    ylabel: str
    title: str = ""
    note: str = ""
    diagonal: bool = False           # draw y = x (two measurements of the same quantity)
    colors: list = field(default_factory=list)   # one colour per point (default: the first colour)


def _finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round tick values covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _range(values: list[float]) -> tuple[float, float]:
    """A padded data range (5% each side; a unit window around a single value)."""
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    pad = (high - low) * 0.05 if high > low else max(abs(low) * 0.05, 1e-3)
    return low - pad, high + pad


def _format_tick(value: float, step: float) -> str:
    """`value` with as many decimals as the tick step needs (0.025 -> 3)."""
    if step <= 0:
        return f"{value:.2f}"
    exponent = math.floor(math.log10(step))
    digits = max(0, -exponent + (1 if math.isclose(step / 10 ** exponent, 2.5) else 0))
    return f"{value:.{min(digits, 6)}f}"


class _Axes:
    """Maps data to pixels inside one panel and draws its frame, ticks and labels."""

    def __init__(self, draw: ImageDraw.ImageDraw, origin: tuple[int, int], xr, yr):
        ox, oy = origin
        self.draw = draw
        self.left, self.top = ox + MARGIN["left"], oy + MARGIN["top"]
        self.right, self.bottom = ox + PANEL[0] - MARGIN["right"], oy + PANEL[1] - MARGIN["bottom"]
        self.xr, self.yr = xr, yr
        self.font = _font(12)

    def px(self, x: float, y: float) -> tuple[float, float]:
        (x0, x1), (y0, y1) = self.xr, self.yr
        return (self.left + (x - x0) / (x1 - x0) * (self.right - self.left),
                self.bottom - (y - y0) / (y1 - y0) * (self.bottom - self.top))

    def frame(self, xlabel: str, ylabel: str, title: str, note: str = "", yticks: bool = True) -> None:
        d, f = self.draw, self.font
        d.rectangle([self.left, self.top, self.right, self.bottom], outline="#444444")
        xt = nice_ticks(*self.xr)
        for t in xt:
            x, _ = self.px(t, self.yr[0])
            d.line([x, self.bottom, x, self.bottom + 4], fill="#444444")
            label = _format_tick(t, xt[1] - xt[0] if len(xt) > 1 else 0.1)
            d.text((x - _text_size(f, label)[0] / 2, self.bottom + 6), label, fill="#222222", font=f)
        if yticks:
            yt = nice_ticks(*self.yr)
            for t in yt:
                _, y = self.px(self.xr[0], t)
                d.line([self.left - 4, y, self.left, y], fill="#444444")
                label = _format_tick(t, yt[1] - yt[0] if len(yt) > 1 else 0.1)
                w, h = _text_size(f, label)
                d.text((self.left - 6 - w, y - h / 2), label, fill="#222222", font=f)
        w, _ = _text_size(f, xlabel)
        d.text(((self.left + self.right - w) / 2, self.bottom + 24), xlabel, fill="#111111", font=f)
        d.text((self.left - MARGIN["left"] + 4, self.top - 16), ylabel, fill="#111111", font=f)
        head = _font(14)
        w, _ = _text_size(head, title)
        d.text(((self.left + self.right - w) / 2, self.top - 32), title, fill="#111111", font=head)
        if note:
            w, _ = _text_size(f, note)
            d.text((self.right - w - 4, self.top + 4), note, fill="#333333", font=f)

    def point(self, x: float, y: float, color: str, radius: int = 4) -> None:
        cx, cy = self.px(x, y)
        self.draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=color, outline="#222222")


def _canvas(columns: int, rows: int, title: str) -> tuple[Image.Image, ImageDraw.ImageDraw, int]:
    head = 30 if title else 0
    image = Image.new("RGB", (PANEL[0] * columns, PANEL[1] * rows + head), "white")
    draw = ImageDraw.Draw(image)
    if title:
        font = _font(16)
        w, _ = _text_size(font, title)
        draw.text(((image.width - w) / 2, 6), title, fill="#111111", font=font)
    return image, draw, head


def scatter_panels(panels: Sequence[Panel], title: str = "") -> Image.Image:
    """Scatter panels side by side, as an RGB image."""
    image, draw, head = _canvas(max(1, len(panels)), 1, title)
    for k, panel in enumerate(panels):
        pairs = [(float(x), float(y)) for x, y in zip(panel.x, panel.y)
                 if x is not None and y is not None and math.isfinite(float(x)) and math.isfinite(float(y))]
        xr, yr = _range([p[0] for p in pairs]), _range([p[1] for p in pairs])
        if panel.diagonal:              # the same scale on both axes, so y = x is the diagonal
            xr = yr = (min(xr[0], yr[0]), max(xr[1], yr[1]))
        axes = _Axes(draw, (k * PANEL[0], head), xr, yr)
        axes.frame(panel.xlabel, panel.ylabel, panel.title, panel.note)
        if panel.diagonal:
            draw.line([axes.px(xr[0], xr[0]), axes.px(xr[1], xr[1])], fill="#bbbbbb", width=1)
        colors = panel.colors or [COLORS[0]] * len(panel.x)
        for (x, y), color in zip(pairs, colors):
            axes.point(x, y, color)
    return image


def strip_plot(rows: Sequence[tuple], xlabel: str, title: str = "",
               marks: Sequence[tuple[float, str]] = ()) -> Image.Image:
    """Labelled rows of dots along one value axis, top to bottom.

    A row is (label, values, colour) or (label, values, colour, point texts): a text above each
    dot (e.g. the seed). `marks` are vertical reference lines (value, label), e.g. the random
    pool's 80th percentile.
    """
    height = max(PANEL[1], MARGIN["top"] + MARGIN["bottom"] + 26 * len(rows) + 20)
    values = _finite(v for row in rows for v in row[1]) + _finite(m for m, _ in marks)
    xr = _range(values)
    label_width = max([_text_size(_font(12), row[0])[0] for row in rows] + [40]) + 16
    image = Image.new("RGB", (PANEL[0] + 260 + label_width, height + (30 if title else 0)), "white")
    draw = ImageDraw.Draw(image)
    head = 0
    if title:
        font = _font(16)
        w, _ = _text_size(font, title)
        draw.text(((image.width - w) / 2, 6), title, fill="#111111", font=font)
        head = 30
    axes = _Axes(draw, (label_width - MARGIN["left"], head), xr, (0.0, float(len(rows) + 1)))
    axes.right = image.width - MARGIN["right"]
    axes.bottom = head + height - MARGIN["bottom"]
    axes.frame(xlabel, "", "", yticks=False)
    font = _font(12)
    for value, label in marks:
        if math.isfinite(value):
            x, _ = axes.px(value, 0)
            draw.line([x, axes.top, x, axes.bottom], fill="#d0a000", width=1)
            draw.text((x + 3, axes.top + 2), label, fill="#806000", font=font)
    for k, row in enumerate(rows):
        label, vals, color = row[:3]
        texts = row[3] if len(row) > 3 else [""] * len(vals)
        level = len(rows) - k                 # the first row on top
        _, y = axes.px(xr[0], level)
        w, h = _text_size(font, label)
        draw.text((axes.left - 8 - w, y - h / 2), label, fill="#111111", font=font)
        for v, text in zip(vals, texts):
            if v is None or not math.isfinite(float(v)):
                continue
            axes.point(float(v), level, color)
            if text:
                x, _ = axes.px(float(v), level)
                draw.text((x - _text_size(font, text)[0] / 2, y - 20), text, fill=color, font=font)
    return image


def save_image(image: Image.Image, path: str | os.PathLike) -> str:
    """Write `image` as PNG atomically and durably (enas.fileio); creates missing folders; returns the path."""
    from enas.fileio import atomic_write
    path = os.fspath(path)
    atomic_write(path, lambda f: image.save(f, format="PNG"), make_parents=True)
    return path


def to_array(image: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8, for TensorBoard's `add_image(..., dataformats="HWC")`."""
    return np.asarray(image.convert("RGB"), dtype=np.uint8)
