"""Pick the next token in the Generate pane: ``PickMode``, the helper the pane owns for it.

ctrl+n starts from the prompt and the settings in the toolbars: generation pauses at every token and the
``PickPanel`` offers the most likely next tokens with the model's probabilities. Enter takes the highlighted
one and the state carries on from it; tab lets the model sample it with the toolbar's temperature, top-k,
top-p and seed; escape leaves, keeping the text. The model is ``rnnchat.lm.generate.Picker``, as in
``rnnchat generate --interactive``: created and stepped only on the torch thread, one step per key, the
result coming back as one ``TokenPicked`` message (keys that come while a step runs are ignored).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Callable

from textual.widget import Widget

from rnnchat.events import Token
from rnnchat.tui.bridge import Tagged
from rnnchat.tui.panes.base import torch_job, unknown_notice
from rnnchat.tui.panes.generate.generation import Request
from rnnchat.tui.widgets.picker import PickPanel

if TYPE_CHECKING:
    from rnnchat.lm.generate import Picker
    from rnnchat.runs.opened import OpenedRun

CHOICES = 8                    # tokens offered at each step
ALTERNATIVES = 5               # of them kept with each token, for the colour view's alternatives panel


class TokenPicked(Tagged):
    """A step of a pick session: the token taken (None when the session has just begun), the options for
    the next one, and the picker (whose methods only the torch thread calls)."""

    def __init__(self, tag: str, picker: Picker, token: Token | None, options: list) -> None:
        super().__init__(tag)
        self.picker = picker
        self.token = token
        self.options = options


class PickFailed(Tagged):
    """A step failed (a notice says why): the mode ends."""


def _step(picker: Picker, token_id: int | None, offered: list) -> tuple[Picker, Token, list]:
    """On the torch thread: take ``token_id`` (None: the model samples one) and offer the next tokens."""
    probs = {i: p for i, _, p in offered}
    if token_id is None:
        every = {i: p for i, _, p in picker.options(picker.tokenizer.vocab_size)}
        before = len(picker.pieces)
        token_id = picker.auto()
        text, prob = picker.pieces[before], every.get(token_id, 0.0)
    else:
        text, prob = picker.take(token_id), probs.get(token_id, 0.0)
    alternatives = tuple((t, p) for _, t, p in offered[:ALTERNATIVES])
    return picker, Token(text, token_id, prob, alternatives), picker.options(CHOICES)


class PickMode:
    """Pick mode for ``pane`` (see the module docstring): on while ``active`` (the pane has the ``-picking``
    class), with the picker being stepped and the pane's ``PickPanel`` offering its tokens. Steps run in
    ``pane``'s workers and come back to it as ``TokenPicked`` or ``PickFailed`` messages tagged as the pane
    says; ``open_run(run, which)`` opens a run on the torch thread and ``phrase`` words an error."""

    def __init__(self, pane: Widget, open_run: Callable[[str, str], OpenedRun],
                 phrase: Callable[[BaseException], str]) -> None:
        self._pane = pane
        self._open_run = open_run
        self._phrase = phrase
        self._picker: Picker | None = None
        self.active = False

    @property
    def panel(self) -> PickPanel:
        return self._pane.query_one(PickPanel)

    def start(self, tag: str, req: Request) -> None:
        """Begin picking from the request's prompt and settings: the panel shows, waiting for the first
        options."""
        self.active, self._picker = True, None
        self._pane.add_class("-picking")
        self.panel.focus()
        self._step(tag, partial(self._open_picker, req))

    def leave(self) -> bool:
        """Leave the mode; whether it was on. A step still running is dropped by its tag when it ends."""
        was, self.active, self._picker = self.active, False, None
        self._pane.remove_class("-picking")
        return was

    def take(self, tag: str, token_id: int | None) -> None:
        """Take ``token_id`` (None: let the model sample one), unless a step is still running."""
        if self.active and self._picker is not None:
            self._step(tag, partial(_step, self._picker, token_id, self.panel.options))

    def picked(self, message: TokenPicked) -> Token | None:
        """A step of this session ended: its options are offered; the token it took."""
        self._picker = message.picker
        self.panel.show_options(message.options)
        return message.token

    def _open_picker(self, req: Request) -> tuple[Picker, None, list]:
        """On the torch thread: the run's picker, primed with the prompt, and its first options."""
        from rnnchat.lm.generate import Picker

        opened = self._open_run(req.run, req.which)
        if req.prompt:
            unknown = opened.tokenizer.count_unknown(opened.tokenizer.encode(req.prompt))
            if unknown:
                self._pane.post_message(unknown_notice(unknown, "the prompt"))
        picker = Picker(opened.model, opened.tokenizer, req.cfg, req.prompt)
        return picker, None, picker.options(CHOICES)

    def _step(self, tag: str, job: Callable[[], tuple]) -> None:
        self.panel.wait()
        self._pane.run_worker(partial(self._worker, tag, job), thread=True, group="pick", exit_on_error=False)

    def _worker(self, tag: str, job: Callable[[], tuple]) -> None:
        """In a thread worker: one step on the torch thread; a failure is a notice and ends the mode."""
        step = torch_job(self._pane.post_message, self._phrase, job, "pick tokens")
        self._pane.post_message(TokenPicked(tag, *step) if step is not None else PickFailed(tag))
