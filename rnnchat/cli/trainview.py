"""``rnnchat train``'s live view: a Rich progress bar with the latest figures, eval lines and samples above it.

Text from runs, corpora and models goes through ``neutralise`` into ``rich.text.Text`` objects, never into a
markup string. Only ``cli/train.py`` imports this module, inside its function: rich is for training's view.
"""

from __future__ import annotations

from typing import Iterable

from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.text import Text

from rnnchat import events as ev
from rnnchat.formatting import clock
from rnnchat.safetext import neutralise


class TrainView:
    """Live progress for ``rnnchat train``: a bar with the latest figures, eval lines and samples above it."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(highlight=False)
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(bar_width=24), TaskProgressColumn(),
            TextColumn("{task.fields[figures]}"), console=self.console, transient=False,
            refresh_per_second=4)
        self.task = None
        self.val = "val -"

    def run(self, events: Iterable[ev.Event]) -> ev.Done | None:
        done = None
        with self.progress:
            for event in events:
                if isinstance(event, ev.Done):
                    done = event
                    if self.task is not None and done.reason in ("max_steps", "epochs", "time"):
                        self.progress.update(self.task, completed=self.progress.tasks[0].total)
                    break
                handler = getattr(self, f"on_{event.kind}", None)
                if handler:
                    handler(event)
        if done is not None:  # after the live bar has stopped, so it is not drawn twice
            self.on_done(done)
        return done

    def print(self, renderable) -> None:
        self.console.print(renderable)

    def on_started(self, e: ev.Started) -> None:
        limits = []
        if e.max_steps:
            limits.append(f"{e.max_steps:,} steps")
        if e.minutes:
            limits.append(f"{e.minutes:g} min")
        head = Text.assemble(
            ("resuming " if e.resumed else "training ", "bold"), (neutralise(e.run), "bold cyan"),
            f"  on {neutralise(e.corpus)} ({e.level}, vocab {e.vocab_size:,}; {e.train_tokens:,} train / "
            f"{e.val_tokens:,} val tokens)\n",
            f"{e.parameters:,} parameters · {e.device}" + (f" × {e.processes} processes" if e.processes > 1 else "")
            + f" · {e.precision} · limit {' or '.join(limits)}"
            + (f" · from step {e.step:,}" if e.step else "")
            + (f"\nstarted from language model {neutralise(e.started_from)}" if e.started_from else "")
            + (f"\n{neutralise(e.preset)}" if e.preset else ""))
        self.print(head)
        total = e.max_steps if e.max_steps else 1000
        self.task = self.progress.add_task("step 0", total=total, figures="starting…")
        self.by_time = not e.max_steps

    def on_step(self, e: ev.Step) -> None:
        figures = (f"loss {e.loss:.3f} · {self.val} · {e.chars_per_s:,.0f} chars/s · "
                   f"grad {e.grad_norm:.2f} · lr {e.lr:.2e} · ETA {clock(e.eta)}")
        completed = e.progress * 1000 if self.by_time else e.step
        self.progress.update(self.task, completed=completed, description=f"step {e.step:,}", figures=figures)

    def on_eval(self, e: ev.Eval) -> None:
        self.val = f"val {e.val_loss:.3f} ({e.bits_per_char:.3f} bpc)"
        mark = " *best*" if e.best else ""
        distinct = f"  distinct-1/2 {e.distinct1:.2f}/{e.distinct2:.2f}" if e.distinct1 is not None else ""
        self.print(Text(f"step {e.step:>7,}  train {e.train_loss:.4f}  val {e.val_loss:.4f} nats/token  "
                        f"{e.bits_per_char:.4f} bits/char  ppl {e.perplexity:.2f}{distinct}{mark}"))
        figures = dict(e.figures)
        if "accuracy" in figures:           # a classifier: the figures a reader judges it by, beside its baselines
            base = "".join(f", {name} {figures[f'{name}_macro_f1']:.3f}" for name in ("ngram", "majority")
                           if f"{name}_macro_f1" in figures)
            self.print(Text(f"{'':13}accuracy {figures['accuracy']:.1%}  macro-F1 {figures['macro_f1']:.3f}"
                            f"{f'  (baselines: macro-F1{base[1:]})' if base else ''}"))

    def on_sample(self, e: ev.Sample) -> None:
        title = f"sample at step {e.step:,}"
        if e.longest_copy is not None:
            title += f" · longest copy {e.longest_copy} chars, {100 * e.copied_share:.0f}% of 20-char windows copied"
        self.print(Panel(Text(neutralise(e.text)), title=title, title_align="left", border_style="dim"))

    def on_warning(self, e: ev.Warning) -> None:
        self.print(Text("warning: " + neutralise(e.message), style="yellow"))

    def on_checkpoint(self, e: ev.Checkpoint) -> None:
        pass  # saving is routine; the final line says where the run is

    def on_done(self, e: ev.Done) -> None:
        best = f"best val {e.best_val_loss:.4f} nats/token ({e.best_bits_per_char:.4f} bits/char)" \
            if e.best_val_loss is not None else "no evaluation yet"
        style = "red" if e.reason == "failed" else "green"
        reason = "stopped early" if e.reason == "stalled" else e.reason
        self.print(Text(f"{reason}: step {e.step:,} after {clock(e.elapsed)}; {best}; "
                        f"saved in {neutralise(e.run_dir)}", style=style))
        if e.message:
            self.print(Text(neutralise(e.message), style=style))
