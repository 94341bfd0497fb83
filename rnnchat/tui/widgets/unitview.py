"""The Inspect pane's views: the text coloured by one unit's value with a cursor on one position
(``UnitView``), and the lines of the panels beside it (``WrappedPanel``s): the cell's equations with the
chosen unit's live values at the cursor, the units that track the text, and gate saturation. Every piece
of text shown here passes through ``neutralise`` and is a ``Text``, never markup."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Static

from rnnchat.lm.inspect import Trace, UnitMatch, equations
from rnnchat.safetext import NEWLINE_MARK, neutralise
from rnnchat.tui.widgets.alternatives import visible_token
from rnnchat.tui.widgets.panel import NBSP, PanelLine


def colour_of(value: float) -> str:
    """The background for a unit's value: blue negative, red positive, darker nearer zero (as the CLI)."""
    v = max(-1.0, min(1.0, float(value)))
    level = int(55 + 200 * abs(v))
    return f"rgb({level},40,40)" if v >= 0 else f"rgb(40,40,{level})"


def coloured(pieces: list[str], values: np.ndarray, cursor: int | None = None) -> Text:
    """The pieces (one per position), each on its value's colour; the cursor's piece underlined and bold."""
    out = Text(no_wrap=False)
    for t, (piece, v) in enumerate(zip(pieces, values)):
        style = f"on {colour_of(v)}" + (" bold underline reverse" if t == cursor else "")
        shown = neutralise(piece) or " "
        lines = shown.split("\n")
        for part in lines[:-1]:                      # a newline is a coloured mark, then a break
            out.append(part + NEWLINE_MARK, style=style)
            out.append("\n")
        out.append(lines[-1], style=style)
    return out


SHORT = {"forward": "fwd", "backward": "bwd"}     # a direction in the narrow lists of units and gates
READS = {"forward": "reads left to right: h_(t-1) is the state before", "backward":
         "reads right to left: h_(t+1) is the state before"}


def _before(direction: str) -> str:
    """How the equations name the step before: t-1, or t+1 for a direction that reads right to left."""
    return "(t+1)" if direction == "backward" else "(t-1)"


def live_values(tr: Trace, layer: int, unit: int, t: int, direction: str = "forward") -> list[tuple[str, float]]:
    """The chosen unit's values at position ``t``: gates, states and the previous states (the position
    after ``t`` for the backward direction), named as in ``EQUATIONS``."""
    lt = tr.layer(layer, direction)
    before, name = (t + 1, "(t+1)") if direction == "backward" else (t - 1, "(t-1)")
    first = not 0 <= before < len(lt.hidden)          # the direction's first step starts from zero
    out: list[tuple[str, float]] = []
    short = {"input": "i", "forget": "f", "candidate": "g", "output": "o", "reset": "r", "update": "z", "new": "n"}
    for gate, values in lt.gates.items():
        out.append((short.get(gate, gate), float(values[t, unit])))
    if lt.cell is not None:
        out.append((f"c_{name}", 0.0 if first else float(lt.cell[before, unit])))
        out.append(("c_t", float(lt.cell[t, unit])))
    out.append((f"h_{name}", 0.0 if first else float(lt.hidden[before, unit])))
    out.append(("h_t", float(lt.hidden[t, unit])))
    return out


_LABELS = {"n": "candidate state", "c_t": "cell state", "h_t": "hidden state"}   # where EQUATIONS names none
_SUBSTITUTED = {   # the element-wise equations, with the unit's own numbers in place of the names
    ("lstm", "c_t"): "{f} * {c_(t-1)} + {i} * {g}",
    ("lstm", "h_t"): "{o} * tanh({c_t bare})",
    ("gru", "h_t"): "(1 - {z}) * {n} + {z} * {h_(t-1)}",
}


def _number(value: float) -> str:
    return f"{value:.4f}" if value >= 0 else f"({value:.4f})"


def equation_lines(tr: Trace, layer: int, unit: int, t: int, piece: str,
                   direction: str = "forward") -> list[PanelLine]:
    """The cell's equations, each with its label and the value of ``unit`` at position ``t`` under it (the
    element-wise ones also with the numbers put in), after the previous states they start from. A
    bidirectional model's say which direction they are, and the backward one's step before is t+1."""
    values = dict(live_values(tr, layer, unit, t, direction))
    before = _before(direction)
    both = len(tr.directions) > 1
    where = f"layer{NBSP}{layer}" + (f" {direction}" if both else "")
    out = [PanelLine(f"the {tr.cell} cell \u00b7 {where} unit{NBSP}{unit}", "bold")]
    if both:
        out.append(PanelLine(READS[direction], "dim", 2))
    out.append(PanelLine(f"at position{NBSP}{t}: {visible_token(piece)}", "bold", hang=4))
    for name in (f"h_{before}", f"c_{before}"):
        if name in values:
            out.append(PanelLine(f"{name} = {values[name]:+.4f}", "", 2))
    for line in equations(tr.cell, direction):
        equation, _, label = (part.strip() for part in line.partition("  "))
        name = equation.split(" = ", 1)[0]
        out.append(PanelLine(label or _LABELS.get(name, ""), "dim"))
        out.append(PanelLine(equation, "", 2, 2 + len(name) + 3))
        pattern = _SUBSTITUTED.get((tr.cell, name))
        if pattern is not None:
            numbers = {k: _number(v) for k, v in values.items()} | {f"{k} bare": f"{v:.4f}" for k, v in values.items()}
            out.append(PanelLine("= " + pattern.replace("(t-1)", before).format_map(numbers), "",
                                 2 + len(name) + 1, 2 + len(name) + 3))
        if name in values:
            out.append(PanelLine(f"= {values[name]:+.4f}", "bold", 2 + len(name) + 1))
    return out


def _where(layer: int, direction: str | None) -> str:
    """"layer 1", or "layer 1 bwd" where a model reads both ways."""
    return f"layer {layer}" + (f" {SHORT[direction]}" if direction else "")


def unit_lines(units: list[UnitMatch], both: bool = False) -> list[PanelLine]:
    """The units that track the text; ``both``: the model reads both ways, so each says its direction."""
    out = [PanelLine(f"units that track the text (Pearson{NBSP}r)", "bold")]
    if both:
        out.append(PanelLine("fwd reads left to right, bwd right to left", "dim", 2))
    if not units:
        out.append(PanelLine("none (the text is too short or too plain)", "dim", 2))
    for m in units:
        out.append(PanelLine(f"{_where(m.layer, m.direction if both else None)} {m.what:<6} unit {m.unit:>4}  "
                             f"r{NBSP}={NBSP}{m.correlation:+.2f}  {m.property.replace(' ', NBSP)}", "", 2, 6))
    return out


def saturation_lines(saturation: list[dict]) -> list[PanelLine]:
    """Gate saturation per layer (and direction, where the entries name one) and gate."""
    out = [PanelLine(f"gate saturation ({NBSP.join('< 0.1 / > 0.9'.split())})", "bold")]
    if not saturation:
        out.append(PanelLine("this cell has no gates", "dim", 2))
    for s in saturation:
        shares = f"{100 * s['below']:5.1f}% / {100 * s['above']:5.1f}%".strip().replace(" ", NBSP)
        out.append(PanelLine(f"{_where(s['layer'], s.get('direction'))} {s['gate']:<7} "
                             f"{' ' * (5 - len(shares.split('%')[0]))}{shares}", "", 2, 6))
    return out


class UnitView(Static, can_focus=True):
    """The traced text coloured by one unit's values, with a cursor: left/right move it, up/down ask
    for the next or previous unit (a ``UnitStep`` message; the pane decides)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "move(-1)", "Prev char", show=False),
        Binding("right", "move(1)", "Next char", show=False),
        Binding("home", "move_to(0)", "Start", show=False),
        Binding("end", "move_to(-1)", "End", show=False),
        Binding("up", "unit(1)", "Unit +", show=False),
        Binding("down", "unit(-1)", "Unit -", show=False),
    ]

    class CursorMoved(Message):
        def __init__(self, position: int) -> None:
            super().__init__()
            self.position = position

    class UnitStep(Message):
        def __init__(self, step: int) -> None:
            super().__init__()
            self.step = step

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(Text(""), id=id, markup=False)
        self.pieces: list[str] = []
        self.values: np.ndarray = np.zeros(0, np.float32)
        """The values shown, one per position (the chosen unit's series)."""
        self.cursor = 0

    def show_values(self, pieces: list[str], values: np.ndarray, keep_cursor: bool = True) -> None:
        self.pieces, self.values = list(pieces), np.asarray(values)
        if not keep_cursor or self.cursor >= len(self.pieces):
            self.cursor = 0
        self._draw()

    def _draw(self) -> None:
        self.update(coloured(self.pieces, self.values, self.cursor if self.pieces else None))

    def action_move(self, step: int) -> None:
        self.action_move_to(self.cursor + step, clamp=True)

    def action_move_to(self, position: int, clamp: bool = False) -> None:
        if not self.pieces:
            return
        n = len(self.pieces)
        self.cursor = max(0, min(n - 1, position)) if clamp or position >= 0 else n - 1
        self._draw()
        self.post_message(self.CursorMoved(self.cursor))

    def action_unit(self, step: int) -> None:
        self.post_message(self.UnitStep(step))
