"""What the panes ask of the app. Panes post these; the app handles them (attributes go down, messages up)."""

from __future__ import annotations

from textual.message import Message


class OpenRun(Message):
    """Open ``run`` in the tab for its kind (a key of ``rnnchat.runs.kinds.KINDS``)."""

    def __init__(self, run: str, kind: str) -> None:
        super().__init__()
        self.run = run
        self.kind = kind


class ResumeRun(Message):
    """Continue training ``run`` in the Train tab."""

    def __init__(self, run: str) -> None:
        super().__init__()
        self.run = run


class CorpusChosen(Message):
    """The corpus to train on is now ``spec`` (a built-in's name or a path)."""

    def __init__(self, spec: str) -> None:
        super().__init__()
        self.spec = spec


class TrainingChanged(Message):
    """Training began (``active``) or ended; ``run`` is the run it trains, once known."""

    def __init__(self, active: bool, run: str | None = None) -> None:
        super().__init__()
        self.active = active
        self.run = run
