"""Pick the next token in the Generate pane (``PickMode``, mixed into ``GeneratePane``).

ctrl+n starts from the prompt and the settings in the toolbars: generation pauses at every token and the
``PickPanel`` offers the most likely next tokens with the model's probabilities. Enter takes the highlighted
one and the state carries on from it; tab lets the model sample it with the toolbar's temperature, top-k,
top-p and seed; escape leaves, keeping the text. The model is ``rnnchat.lm.generate.Picker``, as in
``rnnchat generate --interactive``: created and stepped only on the torch thread, one step per key, the
result coming back as one ``TokenPicked`` message (keys that come while a step runs are ignored).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Callable

from textual.message import Message

from rnnchat.errors import RnnchatError
from rnnchat.events import Token
from rnnchat.lm.generate import Picker
from rnnchat.sampling import LiveControls
from rnnchat.tui import torch_thread
from rnnchat.tui.panes.sampling import Request
from rnnchat.tui.widgets.picker import PickPanel

CHOICES = 8                    # tokens offered at each step
ALTERNATIVES = 5               # of them kept with each token, for the colour view's alternatives panel


class TokenPicked(Message):
    """A step of a pick session: the token taken (None when the session has just begun), the options for
    the next one, and the picker (whose methods only the torch thread calls)."""

    def __init__(self, tag: str, picker: Picker, token: Token | None, options: list) -> None:
        super().__init__()
        self.tag = tag
        self.picker = picker
        self.token = token
        self.options = options


class PickFailed(Message):
    def __init__(self, tag: str) -> None:
        super().__init__()
        self.tag = tag


def _open_picker(pane, req: Request) -> tuple[Picker, None, list]:
    """On the torch thread: the run's picker, primed with the prompt, and its first options."""
    opened = pane._open(req.run, req.which)
    if req.prompt:
        unknown = opened.tokenizer.count_unknown(opened.tokenizer.encode(req.prompt))
        if unknown:
            pane.post_message(pane.Notice(f"{unknown} character(s) of the prompt are unknown to the model "
                                          "and were read as <unk>", "warning"))
    picker = Picker(opened.model, opened.tokenizer, req.cfg, req.prompt)
    return picker, None, picker.options(CHOICES)


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
    """The pane's part of picking (see the module docstring); the pane is in this mode while ``picking``."""

    picking = False
    _picker: Picker | None = None

    @property
    def pick_panel(self) -> PickPanel:
        return self.query_one(PickPanel)

    def action_pick(self) -> None:
        if self.picking:
            self.pick_panel.focus()
            return
        run = self._selected_run()
        if run is None:
            self._notify("No trained runs yet \u2014 train one in the Train tab" if not self._option_values
                         else "choose a run first", "error")
            return
        try:
            cfg, seed_fixed = self._read_settings()
        except RnnchatError as exc:
            self._notify(self._phrase(exc), "error")
            return
        if self.training:
            self._notify("Training is using the CPU: the tokens are offered when training stops.", "warning")
        req = Request(run, self._selected_which(), self.query_one("#gen-prompt").value, cfg, seed_fixed,
                      (cfg.temperature,))
        self.stop_all()
        self._gen += 1
        self._tag = f"{self._tag_prefix}{self._gen}"
        self._request, self._controls = req, [LiveControls.of(cfg)]
        self._done, self._copied, self._chars, self._error = [None], {}, [0], ""
        self.batches_received = self.tokens_received = 0
        self.state, self.picking, self._picker = "picking", True, None
        self.columns.start(req.prompt, 1)
        self._set_titles()
        self.add_class("-picking")
        self.pick_panel.focus()
        self._pick_step(partial(_open_picker, self, req))
        self._update_status()
        self.refresh_bindings()

    def leave_pick(self, state: str = "picked") -> None:
        """Leave the mode (the text stays); a step still running is ignored when it ends."""
        if not self.picking:
            return
        self.picking, self._picker, self.state = False, None, state
        self._tag = ""
        self.remove_class("-picking")
        self.outputs[0].focus()
        self._update_status()
        self.refresh_bindings()

    def pick_parts(self) -> list[str]:
        """The status line while picking, or after."""
        req = self._request
        head = "\u25c6 picking" if self.picking else "\u25a0 picked (ctrl+n picks again)"
        return [head, f"{self.tokens_received:,} tokens, {self._chars[0]:,} chars", f"T {req.cfg.temperature:.2f}",
                f"seed {req.cfg.seed}", Path(req.run).name]

    # ------------------------------------------------------------------------------------- steps

    def _pick_step(self, job: Callable[[], tuple]) -> None:
        self.pick_panel.wait()
        self.run_worker(partial(self._pick_worker, self._tag, job), thread=True, group="pick", exit_on_error=False)

    def _pick_worker(self, tag: str, job: Callable[[], tuple]) -> None:
        """In a thread worker: one step on the torch thread; a failure is a notice and ends the mode."""
        try:
            picker, token, options = torch_thread.run(job)
        except Exception as exc:  # noqa: BLE001 - a broken run or a bug must not take the app down
            self.post_message(self.Notice(self._phrase(exc) if isinstance(exc, RnnchatError) else
                                          f"cannot pick tokens: {type(exc).__name__}: {exc}", "error"))
            self.post_message(PickFailed(tag))
            return
        self.post_message(TokenPicked(tag, picker, token, options))

    def on_token_picked(self, message: TokenPicked) -> None:
        if not self._claim(message.tag, message) or not self.picking:
            return
        self._picker = message.picker
        if message.token is not None:
            self.columns.append([[message.token]])
            self.tokens_received += 1
            self._chars[0] += len(message.token.text)
        self.pick_panel.show_options(message.options)
        self._update_status()

    def on_pick_failed(self, message: PickFailed) -> None:
        if self._claim(message.tag, message):
            self.leave_pick("failed")

    def on_pick_panel_take(self, message: PickPanel.Take) -> None:
        message.stop()
        if self.picking and self._picker is not None:
            self._pick_step(partial(_step, self._picker, message.token_id, self.pick_panel.options))

    def on_pick_panel_auto(self, message: PickPanel.Auto) -> None:
        message.stop()
        if self.picking and self._picker is not None:
            self._pick_step(partial(_step, self._picker, None, self.pick_panel.options))

    def on_pick_panel_leave(self, message: PickPanel.Leave) -> None:
        message.stop()
        self.leave_pick()
