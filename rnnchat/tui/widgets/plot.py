"""Line plots drawn with braille dots: train and validation loss against steps (``LossPlot``), and the
gradient of the last position's loss against the steps back in time, on a log scale (``GradientPlot``)."""

from __future__ import annotations

import math
from typing import Sequence

from rich.text import Text
from textual.widget import Widget

# Braille dot bits for (column, row) inside one 2x4 cell.
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))


class LossPlot(Widget):
    """Series of (step, value) points plotted on shared axes; redraws only when data or size change."""

    COMPONENT_CLASSES = {"lossplot--axis"}

    SERIES_STYLES = {"train": "#5fafff", "val": "#ffaf00"}

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.series: dict[str, list[tuple[float, float]]] = {"train": [], "val": []}

    def add(self, name: str, x: float, y: float) -> None:
        if math.isfinite(y):
            self.series[name].append((x, y))
            self.refresh()

    def clear(self) -> None:
        for points in self.series.values():
            points.clear()
        self.refresh()

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        points = [p for s in self.series.values() for p in s]
        if width < 12 or height < 3 or not points:
            return Text("loss curves appear here once training starts", style="dim")
        label_w = 6
        plot_w, plot_h = width - label_w - 1, height - 2   # last rows: x labels and the legend
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
        if x1 == x0:
            x1 = x0 + 1
        pad = (y1 - y0) * 0.05 or 0.5
        y0, y1 = max(0.0, y0 - pad), y1 + pad
        cells: list[list[int]] = [[0] * plot_w for _ in range(plot_h)]
        owner: list[list[str]] = [[""] * plot_w for _ in range(plot_h)]
        px_w, px_h = plot_w * 2, plot_h * 4

        def to_px(x: float, y: float) -> tuple[int, int]:
            cx = round((x - x0) / (x1 - x0) * (px_w - 1))
            cy = round((y1 - y) / (y1 - y0) * (px_h - 1))
            return cx, min(px_h - 1, max(0, cy))

        for name in ("train", "val"):
            prev = None
            for x, y in self.series[name]:
                cur = to_px(x, y)
                for px, py in _line(prev or cur, cur):
                    cells[py // 4][px // 2] |= _DOTS[px % 2][py % 4]
                    owner[py // 4][px // 2] = name
                prev = cur
        text = Text()
        for row in range(plot_h):
            value = y1 - (y1 - y0) * row / max(1, plot_h - 1)
            label = f"{value:5.2f} " if row in (0, plot_h - 1, plot_h // 2) else " " * label_w
            text.append(label, style="dim")
            text.append("│", style="dim")
            for col in range(plot_w):
                bits = cells[row][col]
                text.append(chr(0x2800 + bits) if bits else " ",
                            style=self.SERIES_STYLES.get(owner[row][col], ""))
            text.append("\n")
        left, right = f"step {x0:,.0f}", f"{x1:,.0f}"
        text.append(" " * (label_w + 1) + left + " " * max(1, plot_w - len(left) - len(right)) + right + "\n",
                    style="dim")
        legend = Text(" " * (label_w + 1))
        for name, style in self.SERIES_STYLES.items():
            last = self.series[name][-1][1] if self.series[name] else None
            legend.append("━━ ", style=style)
            legend.append(f"{name} loss" + (f" {last:.3f}" if last is not None else "") + "   ")
        text.append_text(legend)
        return text


def _line(a: tuple[int, int], b: tuple[int, int]):
    """Pixels from a to b (Bresenham)."""
    (x0, y0), (x1, y1) = a, b
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
    err = dx + dy
    while True:
        yield x0, y0
        if (x0, y0) == (x1, y1):
            return
        e2 = 2 * err
        if e2 >= dy:
            err += dy
            x0 += sx
        if e2 <= dx:
            err += dx
            y0 += sy


class GradientPlot(Widget):
    """The norm of d loss(last position) / d hidden state t steps earlier against t, on a log scale; under
    it the lags at both ends and the share of the gradient left at a few lags."""

    LINE_STYLE = "#5fafff"
    LAGS = (1, 10, 50, 100)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.norms: list[float] = []
        """The norms shown, by lag (0 is the last position)."""
        self.message = ""

    def show(self, norms: Sequence[float]) -> None:
        self.norms = [float(g) if math.isfinite(g) else 0.0 for g in norms]
        self.refresh()

    def clear(self, message: str = "") -> None:
        self.norms, self.message = [], message
        self.refresh()

    def summary(self) -> str:
        """How much of the gradient at t = 0 is left at a few lags, as one line."""
        g = self.norms
        if not g or g[0] <= 0:
            return ""
        parts = [f"t={lag}: " + (f"{g[lag] / g[0]:.0e}" if g[lag] > 0 else "0") for lag in self.LAGS if lag < len(g)]
        zero = next((lag for lag, v in enumerate(g) if v <= 0), None)
        if zero is not None:              # float32 underflow: no point on a log scale
            parts.append(f"0 from t={zero}")
        return "of t=0 left at " + "  ".join(parts) if parts else ""

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        if len(self.norms) < 2 or width < 16 or height < 4 or not any(g > 0 for g in self.norms):
            return Text(self.message or "no gradients yet", style="dim")
        label_w = 6
        plot_w, plot_h = width - label_w - 1, height - 2     # last rows: the lags and the summary
        logs = [math.log10(g) if g > 0 else None for g in self.norms]
        shown = [y for y in logs if y is not None]
        y0, y1 = math.floor(min(shown)), math.ceil(max(shown))
        if y1 <= y0:
            y1 = y0 + 1
        n = len(logs)
        px_w, px_h = plot_w * 2, plot_h * 4
        cells: list[list[int]] = [[0] * plot_w for _ in range(plot_h)]
        prev = None
        for lag, y in enumerate(logs):
            if y is None:
                prev = None
                continue
            cur = (round(lag / (n - 1) * (px_w - 1)), min(px_h - 1, max(0, round((y1 - y) / (y1 - y0) * (px_h - 1)))))
            for px, py in _line(prev or cur, cur):
                cells[py // 4][px // 2] |= _DOTS[px % 2][py % 4]
            prev = cur
        text = Text(no_wrap=True, overflow="crop")
        for row in range(plot_h):
            value = y1 - (y1 - y0) * row / max(1, plot_h - 1)
            label = f"{10 ** value:.0e}".ljust(label_w) if row in (0, plot_h - 1, plot_h // 2) else " " * label_w
            text.append(label[:label_w], style="dim")
            text.append("\u2502", style="dim")
            text.append("".join(chr(0x2800 + bits) if bits else " " for bits in cells[row]), style=self.LINE_STYLE)
            text.append("\n")
        left, right = "t = 0", f"{n - 1} steps back"
        text.append(" " * (label_w + 1) + left + " " * max(1, plot_w - len(left) - len(right)) + right + "\n",
                    style="dim")
        text.append(" " * (label_w + 1) + self.summary(), style="dim")
        return text
