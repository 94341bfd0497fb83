"""The Corpus tab: built-in corpora and those in corpora/, add one by path, see its statistics."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Container, Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from rnnchat.config import TrainConfig
from rnnchat.errors import RnnchatError
from rnnchat.formatting import human_size
from rnnchat.lm.config import SMALL_CORPUS_DROPOUT, SMALL_CORPUS_TOKENS_PER_PARAM
from rnnchat.runs.kinds import assemble
from rnnchat.safetext import neutralise
from rnnchat.text.corpus import corpus_stats
from rnnchat.text.load import list_corpora, load_corpus
from rnnchat.tui import torch_thread
from rnnchat.tui.messages import CorpusChosen


class CorpusPane(Container):
    """Choosing what to train on: a choice is posted as ``CorpusChosen``."""

    BINDINGS = [("ctrl+o", "focus_path", "Add by path"), ("f5", "refresh", "Refresh")]

    def __init__(self, spec: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.spec = spec             # the corpus chosen, shown on mount
        self.extra: list[str] = []   # paths added in this session
        self.request = 0             # the latest load; earlier ones are not shown

    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="corpus-side"):
                yield Static("corpora", classes="pane-title")
                yield OptionList(id="corpus-list")
                yield Input(placeholder="add a file or folder by path…", id="corpus-path", compact=True)
            with Vertical(id="corpus-main"):
                yield Static(Text("Select a corpus on the left.", style="dim"), id="corpus-stats")
                yield Static("", id="corpus-warnings")
                with VerticalScroll(id="corpus-preview-box"):
                    yield Static(Text(""), id="corpus-preview")

    def on_mount(self) -> None:
        self.query_one("#corpus-preview-box").border_title = "preview"
        self.action_refresh()
        if self.spec:   # once the first screen is drawn: parsing the plays holds the GIL for a second or more
            self.request = 1
            self.call_after_refresh(self._load, self.spec, self.request)

    def action_refresh(self) -> None:
        options = self.query_one("#corpus-list", OptionList)
        options.clear_options()
        entries = list_corpora()
        for e in entries:
            label = Text.assemble((neutralise(e.name), "bold"), f"  {e.kind}, {human_size(e.size)}")
            options.add_option(Option(label, id=e.path or e.name))
        for path in self.extra:
            if not any(e.path == path for e in entries):
                options.add_option(Option(Text.assemble((neutralise(Path(path).name), "bold"), "  added"), id=path))
        current = self.spec
        for index in range(options.option_count):
            if options.get_option_at_index(index).id in (current, str(Path(current or "").resolve())):
                options.highlighted = index
                break

    def action_focus_path(self) -> None:
        self.query_one("#corpus-path", Input).focus()

    @on(OptionList.OptionSelected, "#corpus-list")
    @on(OptionList.OptionHighlighted, "#corpus-list")
    def _picked(self, event) -> None:
        # Highlights made by code (after a refresh) are not choices; moving through the list is.
        if isinstance(event, OptionList.OptionHighlighted) and not event.option_list.has_focus:
            return
        if event.option.id:
            self.select(event.option.id)

    @on(Input.Submitted, "#corpus-path")
    def _add_path(self, event: Input.Submitted) -> None:
        raw = event.value.strip()
        if not raw:
            return
        path = Path(raw).expanduser()
        if not path.exists():
            self.notify(f"{neutralise(raw)}: no such file or folder", severity="error", markup=False)
            return
        spec = str(path.resolve())
        if spec not in self.extra:
            self.extra.append(spec)
        event.input.value = ""
        self.action_refresh()
        self.select(spec)

    def select(self, spec: str) -> None:
        self.query_one("#corpus-stats", Static).update(Text(f"reading {neutralise(spec)}…", style="dim"))
        self.request += 1
        self.spec = spec
        self.post_message(CorpusChosen(spec))
        self._load(spec, self.request)

    @work(thread=True, exclusive=True, group="corpus", exit_on_error=False)
    def _load(self, spec: str, request: int) -> None:
        try:
            corpus = load_corpus(spec)
            stats = corpus_stats(corpus)
        except RnnchatError as exc:
            self.app.call_from_thread(self._failed, spec, str(exc), request)
            return
        self.app.call_from_thread(self._show, spec, corpus, stats, None, request)
        # The default model's size is torch's to count: it waits for torch to load, the figures do not.
        params = torch_thread.run(default_parameters, stats.distinct_chars + 2)   # a char vocabulary: +2 reserved
        self.app.call_from_thread(self._show, spec, corpus, stats, params, request)

    def _failed(self, spec: str, message: str, request: int) -> None:
        if request != self.request:  # a later choice has been made meanwhile
            return
        self.notify(neutralise(message), severity="error", timeout=8, markup=False)
        self.query_one("#corpus-stats", Static).update(Text(neutralise(message), style="red"))
        self.query_one("#corpus-warnings", Static).update("")
        self.query_one("#corpus-preview", Static).update("")

    def _show(self, spec: str, corpus, stats, params: int | None, request: int) -> None:
        if request != self.request:  # a later choice has been made meanwhile
            return
        self.query_one("#corpus-stats", Static).update(Text.assemble(
            (neutralise(corpus.name), "bold"), f"  {neutralise(corpus.source)}\n",
            f"{stats.chars:,} characters · {stats.documents:,} documents · {stats.distinct_chars:,} distinct "
            f"characters\n{stats.lines:,} lines · {stats.words:,} words"))
        warnings = list(corpus.warnings())
        train_chars = int(stats.chars * (1 - TrainConfig().val_fraction))   # characters are the tokens here
        # The language model's small-corpus rule, once the default model's size is known.
        if params is not None and params * SMALL_CORPUS_TOKENS_PER_PARAM > train_chars:
            warnings.append(f"small for the default model ({stats.chars:,} characters for ~{round(params, -3):,} "
                            f"parameters): training takes dropout {SMALL_CORPUS_DROPOUT:g} and stops once held-out "
                            "loss stalls; starting from the built-in base (Train tab: start from) learns more "
                            "from a few pages")
        self.query_one("#corpus-warnings", Static).update(
            Text("\n".join("⚠ " + neutralise(w) for w in warnings), style="yellow"))
        self.query_one("#corpus-preview", Static).update(Text(neutralise(stats.preview)))


def default_parameters(vocab_size: int) -> int:
    """Parameters of the default language model for a vocabulary; built on the meta device, which
    allocates and computes nothing."""
    import torch

    from rnnchat.lm.model import RNNLM

    model_cfg, _ = assemble()
    with torch.device("meta"):
        return RNNLM(dataclasses.replace(model_cfg, vocab_size=vocab_size)).num_parameters()
