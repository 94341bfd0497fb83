"""Output for the command line: the Rich console, error and warning lines on stderr, JSON lines of an event
stream, and opening a run for a command (``cli/trainview.py`` is the Rich view of training).

Text from runs, corpora, file names and models goes through ``neutralise`` and into ``rich.text.Text``
objects, never into a markup string. Commands import this module inside their functions, and it imports
rich only when a console is asked for: ``rnnchat --help`` needs none, and generate, classify and eval
(which write plain lines) start ~40 ms sooner without it.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Iterable

from rnnchat import events as ev
from rnnchat.safetext import neutralise

if TYPE_CHECKING:
    from rich.console import Console


def console(stream=None) -> Console:
    """A console for plain output: no highlighting of numbers or paths, no re-wrapping of long lines."""
    from rich.console import Console

    return Console(file=stream or sys.stdout, highlight=False, soft_wrap=False)


def _other_rank() -> bool:
    """A torchrun process other than rank 0: its errors repeat rank 0's, so it keeps quiet."""
    return os.environ.get("RANK", "0") != "0" and os.environ.get("WORLD_SIZE", "1") != "1"


def err(message: str) -> None:
    """One "rnnchat: error: ..." line on stderr."""
    if not _other_rank():
        sys.stderr.write(f"rnnchat: error: {neutralise(message)}\n")


def warn(message: str) -> None:
    """One "rnnchat: warning: ..." line on stderr."""
    if not _other_rank():
        sys.stderr.write(f"rnnchat: warning: {neutralise(message)}\n")


def open_run(run: str, which: str, kind: str):
    """A run's model opened for a command; a checkpoint that failed its check and was replaced by its
    previous copy is said in one warning line, never silently."""
    from rnnchat.runs.opened import open_run as open_opened

    opened = open_opened(run, which, kind)
    if opened.note:
        warn(opened.note)
    return opened


def print_json_events(events: Iterable[ev.Event], out=None) -> ev.Done | None:
    """One JSON object per line on stdout, flushed as each event happens."""
    out = out or sys.stdout
    last = None
    for event in events:
        out.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
        out.flush()
        if isinstance(event, ev.Done):
            last = event
    return last
