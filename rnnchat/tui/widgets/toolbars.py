"""The one-row toolbars of the Generate and Chat panes: each setting a compact input after its label, and
the settings they say, read back. Input ids are ``<pane prefix>-<config field>`` (underscores as dashes),
as ``RunPane._field`` reads them."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Callable

from textual.containers import Horizontal
from textual.widgets import Input, Label, Select

from rnnchat.chat.config import DecodeConfig
from rnnchat.config import CANDIDATES, CHECKPOINTS
from rnnchat.errors import ConfigError
from rnnchat.lm.config import SampleConfig
from rnnchat.tui.widgets.status import NeutralHighlighter

Field = Callable[[str, type], object]    # a setting's input as a type: RunPane._field


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


def generate_settings(field: Field, seed_text: str) -> tuple[SampleConfig, bool]:
    """What the Generate toolbars say, validated: (config, whether a seed was given in ``seed_text``, the
    seed input's value; else one is drawn). Raises ConfigError naming the field."""
    temperature = field("temperature", float)
    top_k = field("top_k", int)
    top_p = field("top_p", float)
    length = field("length", int)
    seed_given = bool(seed_text.strip())
    if seed_given:
        seed = field("seed", int)
        if not 0 <= seed < 2**63:
            raise ConfigError(f"must be a whole number from 0 to {2**63 - 1}; got {seed}", "seed")
    else:
        seed = random.randrange(2**31)
    cfg = SampleConfig(length=length, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
    cfg.validate()
    return cfg, seed_given


def chat_settings(field: Field, defaults: DecodeConfig, candidates: str) -> DecodeConfig:
    """What the Chat toolbar says (``candidates``: its Select's value), validated. Raises ConfigError
    naming the field."""
    cfg = replace(defaults, temperature=field("temperature", float), beam=field("beam", int),
                  rerank=field("rerank", float), max_length=field("max_length", int), candidates=candidates)
    cfg.validate()
    return cfg


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
               compact=True, tooltip="model: its own reply; retrieval (the default): replies of similar training "
                                     "prompts and the model's beams, the nearest prompts first, then by the model's "
                                     "score. Each reply's lower edge says which won: retrieved or model"),
        classes="chat-bar", id="chat-bar")
