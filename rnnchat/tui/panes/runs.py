"""The Runs tab: every run in checkpoints/, to open (language models in Generate, chat models in
Chat, classifiers in Classify), resume, or delete."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Container
from textual.reactive import reactive
from textual.widgets import DataTable, Static

from rnnchat.errors import RnnchatError
from rnnchat.runs.kinds import KINDS
from rnnchat.runs.rundir import RunSummary, delete_run, list_runs
from rnnchat.safetext import neutralise
from rnnchat.tui.messages import OpenRun, ResumeRun
from rnnchat.tui.widgets.confirm import ConfirmScreen


class RunsPane(Container):
    BINDINGS = [
        ("enter", "open", "Open"),
        ("r", "resume", "Resume training"),
        ("delete", "delete", "Delete"),
        ("f5", "refresh", "Refresh"),
    ]

    training_run: reactive[str | None] = reactive(None)
    """Bound to the app's: the run being trained, which cannot be deleted."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.runs: dict[str, RunSummary] = {}

    def compose(self) -> ComposeResult:
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static(Text("No runs yet: train one in the Train tab.", style="dim"), id="runs-empty",
                     classes="empty-state")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("run", "corpus", "model", "params", "steps", "best bits/char", "saved")
        self.action_refresh()

    def action_refresh(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        self.runs = {r.name: r for r in list_runs()}
        for r in self.runs.values():
            bpc = f"{r.best_bits_per_char:.3f}" if r.best_bits_per_char is not None else "–"
            model = KINDS[r.kind].label.format(level=r.level) if r.kind in KINDS else r.level
            table.add_row(Text(neutralise(r.name)), Text(neutralise(r.corpus)), model,
                          f"{r.parameters / 1e6:.2f}M", f"{r.step:,}", bpc,
                          datetime.fromtimestamp(r.modified).strftime("%Y-%m-%d %H:%M"), key=r.name)
        self.query_one("#runs-empty").display = not self.runs
        table.display = bool(self.runs)

    def _selected(self) -> str | None:
        table = self.query_one(DataTable)
        if not self.runs or table.cursor_row is None or table.row_count == 0:
            self.notify("No run selected.", severity="warning", markup=False)
            return None
        return table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        name = self._selected()
        if not name:
            return
        self.post_message(OpenRun(name, self.runs[name].kind))

    def action_resume(self) -> None:
        name = self._selected()
        if name:
            self.post_message(ResumeRun(name))

    def action_delete(self) -> None:
        name = self._selected()
        if not name:
            return
        if self.training_run == name:
            self.notify("That run is training now; stop it first.", severity="error", markup=False)
            return

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                delete_run(self.runs[name].path)
            except (RnnchatError, OSError) as exc:
                self.notify(neutralise(f"cannot delete {name}: {exc}"), severity="error", markup=False)
            else:
                self.notify(f"Deleted {neutralise(name)}.", markup=False)
            self.action_refresh()

        self.app.push_screen(ConfirmScreen(f"Delete run '{neutralise(name)}' and all its checkpoints?",
                                           yes="Delete", no="Keep"), confirmed)
