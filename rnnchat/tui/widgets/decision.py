"""What the Classify tab draws of a classifier's decision: each label's probability as a bar (``LabelBars``),
each label's probability against the position in the text as the network reads it (``ReadingPlot``), and
the text with the tokens that moved the decision most highlighted (``MovedText``).

Every label and token is untrusted text: neutralised and drawn as Rich ``Text``, never markup.
"""

from __future__ import annotations

from typing import Sequence

from rich.style import Style
from rich.text import Text
from textual.color import Color
from textual.geometry import Size
from textual.widget import Widget
from textual.widgets import Static

from rnnchat.safetext import neutralise, visible_token

MAX_BARS = 8                   # more labels than this: the likeliest, and a line saying how many are left out
MAX_LINES = 4                  # labels plotted against the position: more lines would hide each other's shape
MAX_NAME = 20                  # columns for a label's name; longer ones end in an ellipsis
COLOURS = ("#5fafff", "#ffaf00", "#87d787", "#ff87af", "#af87ff", "#5fd7d7", "#d7d75f", "#d78787")
_LEVELS = "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"     # ▁..█: a probability in eight steps
_FULL, _EMPTY = "\u2588", "\u2591"


def ranked(labels: Sequence[str], probabilities: Sequence[float]) -> list[int]:
    """Label indices, likeliest first (ties keep the run's label order)."""
    return sorted(range(len(labels)), key=lambda i: -probabilities[i])


def _name(label: str, width: int) -> str:
    name = neutralise(label).replace("\n", " ").replace("\t", " ")
    return name if len(name) <= width else name[:width - 1] + "\u2026"


class LabelBars(Widget):
    """Each label's probability as a bar, likeliest first, the predicted one marked with ▶."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.labels: tuple[str, ...] = ()
        self.probabilities: tuple[float, ...] = ()
        self.message = "type a text above and press ctrl+g to classify it"

    def show(self, labels: Sequence[str], probabilities: Sequence[float]) -> None:
        self.labels, self.probabilities = tuple(labels), tuple(probabilities)
        self.refresh(layout=True)

    def clear(self, message: str) -> None:
        self.labels, self.probabilities, self.message = (), (), message
        self.refresh(layout=True)

    @property
    def order(self) -> list[str]:
        """The labels as the bars show them, top to bottom."""
        return [self.labels[i] for i in ranked(self.labels, self.probabilities)]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        n = len(self.labels)
        return 1 if n == 0 else min(n, MAX_BARS) + (n > MAX_BARS)

    def render(self) -> Text:
        if not self.labels:
            return Text(self.message, style="dim")
        order = ranked(self.labels, self.probabilities)
        name_w = min(MAX_NAME, max(len(_name(x, MAX_NAME)) for x in self.labels))
        bar_w = max(4, self.size.width - name_w - 11)      # "▶ " name " " bar " 100.0%"
        out = Text(no_wrap=True, overflow="ellipsis")
        for rank, i in enumerate(order[:MAX_BARS]):
            p = self.probabilities[i]
            fill = round(p * bar_w)
            first = rank == 0
            if rank:
                out.append("\n")
            out.append("\u25b6 " if first else "  ", style="bold" if first else "")
            out.append(_name(self.labels[i], name_w).ljust(name_w) + " ", style="bold" if first else "")
            out.append(_FULL * fill, style=COLOURS[rank % len(COLOURS)])
            out.append(_EMPTY * (bar_w - fill), style="dim")
            out.append(f" {100 * p:5.1f}%", style="bold" if first else "")
        if len(order) > MAX_BARS:
            rest = max(self.probabilities[i] for i in order[MAX_BARS:])
            out.append(f"\n  \u2026 {len(order) - MAX_BARS} more labels, each {100 * rest:.1f}% or less", style="dim")
        return out


class ReadingPlot(Widget):
    """The likeliest labels' probabilities after each position of the text, two rows of ▁..█ per label (16
    steps). When the text fits the width, each token has a column or a few and the text runs under the plot,
    aligned; otherwise a column is the decision after reading up to the end of its stretch of the text."""

    ROWS = 2
    MAX_STRETCH = 3            # columns per token at most, so a short text is not a few columns wide

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.labels: tuple[str, ...] = ()
        self.tokens: list[str] = []
        self.series: list[tuple[float, ...]] = []          # per token: every label's probability

    def show(self, labels: Sequence[str], tokens: Sequence[str], series: Sequence[Sequence[float]]) -> None:
        self.labels, self.tokens, self.series = tuple(labels), list(tokens), [tuple(p) for p in series]
        self.refresh(layout=True)

    def clear(self) -> None:
        self.show((), [], [])

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.ROWS * min(len(self.labels), MAX_LINES) + 1 if self.series else 1

    def columns(self, width: int) -> list[int]:
        """The token whose decision each column shows (the last of its stretch)."""
        T = len(self.series)
        if T <= width:
            stretch = max(1, min(self.MAX_STRETCH, width // T))
            return [t for t in range(T) for _ in range(stretch)]
        return [min(T - 1, (c + 1) * T // width - 1) for c in range(width)]

    def render(self) -> Text:
        if not self.series:
            return Text("")
        final = self.series[-1]
        shown = ranked(self.labels, final)[:MAX_LINES]
        name_w = min(MAX_NAME, max(len(_name(self.labels[i], MAX_NAME)) for i in shown))
        plot_w = max(8, self.size.width - name_w - 2)
        cols = self.columns(plot_w)
        steps = 8 * self.ROWS
        out = Text(no_wrap=True, overflow="ellipsis")
        for rank, i in enumerate(shown):
            eighths = [max(1, min(steps, round(self.series[t][i] * steps))) for t in cols]
            for row in reversed(range(self.ROWS)):           # the top row first
                name = _name(self.labels[i], name_w) if row == self.ROWS - 1 else ""
                out.append(name.ljust(name_w) + " ", style="bold" if rank == 0 else "")
                cells = (e - 8 * row for e in eighths)
                out.append("".join(_LEVELS[min(8, e) - 1] if e > 0 else " " for e in cells),
                           style=COLOURS[rank % len(COLOURS)])
                out.append("\n")
        out.append(" " * (name_w + 1))
        T = len(self.series)
        if len(cols) >= T:                                   # a column or more per token: the text itself
            stretch = len(cols) // T
            out.append("".join(visible_token(t)[:1].ljust(stretch) for t in self.tokens), style="dim")
        else:
            out.append("0" + f"{T:,} tokens".rjust(plot_w - 1), style="dim")
        return out


class MovedText(Static):
    """The text, each token's background as strong as how far it moved the decision (its ``moved``, against
    the largest one's); under it, the few tokens that moved it most."""

    COMPONENT_CLASSES = {"movedtext--moved"}
    TOP = 3

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(Text(""), id=id, markup=False)
        self.tokens: list[str] = []
        self.moved: list[float] = []
        self.strengths: list[float] = []
        """Per token, 0..1: how strongly it is highlighted."""
        self.top: list[int] = []
        """The tokens that moved the decision most, most first."""
        self.shown = Text("")
        """What the widget shows, as Rich Text."""
        self._labels: tuple[str, ...] = ()
        self._series: list[tuple[float, ...]] = []

    def show(self, tokens: Sequence[str], moved: Sequence[float], labels: Sequence[str],
             series: Sequence[Sequence[float]]) -> None:
        self.tokens, self.moved = list(tokens), list(moved)
        most = max(self.moved, default=0.0)
        self.strengths = [m / most if most > 0 else 0.0 for m in self.moved]
        self.top = sorted(range(len(self.moved)), key=lambda t: -self.moved[t])[:self.TOP]
        self._series, self._labels = [tuple(p) for p in series], tuple(labels)
        self._draw()

    def clear(self) -> None:
        self.tokens, self.moved, self.strengths, self.top = [], [], [], []
        self.shown = Text("")
        self.update(self.shown)

    def on_mount(self) -> None:
        self.watch(self.app, "theme", lambda _: self._draw(), init=False)   # the highlight blends into the theme

    def _draw(self) -> None:
        if not self.tokens:
            return
        base = self.background_colors[1]
        mark = self.get_component_styles("movedtext--moved").background
        if mark.a == 0:
            mark = Color.parse("#d7875f")
        out = Text()
        for token, s in zip(self.tokens, self.strengths):
            piece = neutralise(token)
            if s < 0.05:                                     # too small a move to see: left plain
                out.append(piece)
                continue
            bg = base.blend(mark.with_alpha(1.0), 0.15 + 0.85 * s)
            out.append(piece, style=Style(bgcolor=bg.rich_color, color=bg.get_contrast_text().rich_color,
                                          bold=s > 0.5))
        out.append("\n\nmoved it most: ", style="dim")
        for n, t in enumerate(self.top):
            before = self._series[t - 1] if t > 0 else None
            after = self._series[t]
            gained = max(range(len(after)), key=lambda i: after[i] - (before[i] if before else 1 / len(after)))
            out.append(", " if n else "", style="dim")
            out.append(visible_token(self.tokens[t]), style="bold")
            out.append(f" at {t} ({self.moved[t]:.2f} toward ", style="dim")
            out.append(_name(self._labels[gained], MAX_NAME))
            out.append(")", style="dim")
        self.shown = out
        self.update(out)
