"""The one-row toolbars of the Generate and Chat panes: each setting a compact input after its label.
Input ids are ``<pane prefix>-<config field>`` (underscores as dashes), as ``RunPane._field`` reads them."""

from __future__ import annotations

from textual.containers import Horizontal
from textual.widgets import Input, Label, Select

from rnnchat.chat.config import DecodeConfig
from rnnchat.config import CANDIDATES, CHECKPOINTS
from rnnchat.lm.config import SampleConfig
from rnnchat.tui.widgets.status import NeutralHighlighter


def fmt_temperature(t: float) -> str:
    return f"{round(t, 2):g}"


def generate_toolbars(defaults: SampleConfig) -> list[Horizontal]:
    """Run, checkpoint, length, seed / prompt, temperature, top-k, top-p."""
    label = lambda text: Label(text, classes="gen-label")
    return [
        Horizontal(
            label("Run"),
            Select([], prompt="choose a run", id="gen-run", compact=True),
            Select([(c, c) for c in CHECKPOINTS], value=CHECKPOINTS[0], allow_blank=False, id="gen-which",
                   compact=True),
            label("Len"),
            Input(str(defaults.length), id="gen-length", compact=True, type="integer"),
            label("Seed"),
            Input("", placeholder="random", id="gen-seed", compact=True, type="integer", valid_empty=True),
            classes="gen-bar", id="gen-bar-run"),
        Horizontal(
            label("Prompt"),
            Input("", placeholder="type a prompt, enter to generate", id="gen-prompt", compact=True,
                  highlighter=NeutralHighlighter()),
            label("T"),
            Input(fmt_temperature(defaults.temperature), id="gen-temperature", compact=True, type="number"),
            label("top-k"),
            Input(str(defaults.top_k), id="gen-top-k", compact=True, type="integer"),
            label("top-p"),
            Input(fmt_temperature(defaults.top_p), id="gen-top-p", compact=True, type="number"),
            classes="gen-bar", id="gen-bar-prompt"),
    ]


def chat_toolbar(defaults: DecodeConfig) -> Horizontal:
    """Run, temperature, beam width, rerank, max length, where replies come from."""
    label = lambda text: Label(text, classes="chat-label")
    return Horizontal(
        label("Run"),
        Select([], prompt="choose a chat run", id="chat-run", compact=True),
        label("T"),
        Input(f"{defaults.temperature:g}", id="chat-temperature", compact=True, type="number",
              tooltip="temperature: 0 is greedy; changes a streaming reply at once"),
        label("Beam"),
        Input(str(defaults.beam), id="chat-beam", compact=True, type="integer",
              tooltip="beam width: 1 samples, more searches (temperature is then unused)"),
        label("Rerank"),
        Input(f"{defaults.rerank:g}", id="chat-rerank", compact=True, type="number",
              tooltip="beam search: penalise generic replies (0 off, up to 5)"),
        label("Len"),
        Input(str(defaults.max_length), id="chat-max-length", compact=True, type="integer",
              tooltip="the longest reply, in tokens"),
        label("From"),
        Select([(c, c) for c in CANDIDATES], value=defaults.candidates, allow_blank=False, id="chat-candidates",
               compact=True, tooltip="model: its own reply; retrieval: replies of similar training prompts "
                                     "and the model's beams, the nearest prompts first, then by the model's score"),
        classes="chat-bar", id="chat-bar")
