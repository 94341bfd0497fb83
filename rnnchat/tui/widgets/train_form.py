"""The Train tab's settings form: presets, one field per setting, and reading them into configs.

The auto preset's row follows the form's device, precision and limits; fields edited by hand stay as
they are when it moves. The line under the preset says which row it is (its tooltip, what stands behind
it) and, once the tab has been shown, the model's size and a speed measured here. A run chosen to start
from fills the fields it decides with its own values, so that line describes the model that will train.
"""

from __future__ import annotations

import dataclasses

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Input, Label, Select, Static

from rnnchat.config import (
    CELLS,
    DEFAULT_MINUTES,
    DEFAULT_PRESET,
    DEVICES,
    LEVELS,
    PRECISIONS,
    PRESET_NAMES,
    TASKS,
    TrainConfig,
)
from rnnchat.errors import ConfigError, RnnchatError
from rnnchat.paths import BUILTIN_BASE, builtin_base_dir
from rnnchat.runs.kinds import INHERITED, KINDS, TRAIN_FIELDS, assemble, plan, preset_settings
from rnnchat.runs.meta import read_meta
from rnnchat.runs.rundir import list_runs, resolve_run
from rnnchat.safetext import neutralise
from rnnchat.tui import torch_thread

# (field, label, kind) for every setting on the form; kind is "int", "float", "bool" or a tuple of choices.
FIELDS: list[tuple[str, str, object]] = [
    ("task", "task", TASKS),
    ("level", "level", LEVELS),
    ("vocab_size", "vocab", "int"),
    ("cell", "cell", CELLS),
    ("layers", "layers", "int"),
    ("hidden", "hidden", "int"),
    ("embed", "embed", "int"),
    ("dropout", "dropout", "float"),
    ("seq_len", "window", "int"),
    ("carry_state", "carry", "bool"),
    ("batch_size", "batch", "int"),
    ("lr", "lr", "float"),
    ("minutes", "minutes", "float"),
    ("max_steps", "max steps", "int"),
    ("device", "device", DEVICES),
    ("precision", "precision", PRECISIONS),
]
LABELS = {name: label for name, label, _ in FIELDS}
_TIPS = {"carry_state": "carry the hidden state from each window into the next one of its lane, so short "
                        "windows still see long context"}
LIMITS = ("minutes", "max_steps")          # blank: no such limit
BLANK_AUTO = ("dropout",)                  # blank: the default (a chat model's: by its corpus's size)
_NOT_READ = {"chat": {"seq_len", "carry_state"}}   # a chat model reads whole turns, not windows
# "start from" values: a slash cannot be in a run name, so these never meet a run's own.
SCRATCH, BASE = "/scratch", "/base"


def phrase(exc: RnnchatError) -> str:
    """An error as one sentence, a setting called by its label on the form."""
    if isinstance(exc, ConfigError) and exc.field:
        return exc.phrased(LABELS.get(exc.field, exc.field.replace("_", " ")))
    return str(exc)


def known_device(device: str) -> str:
    """The device a preset's row is looked up for: "auto" is a GPU only when torch says so, so until torch
    has loaded (after the first screen) the form shows the CPU's row, and the auto row once it knows."""
    return device if device != "auto" or torch_thread.loaded() else "cpu"


class TrainForm(VerticalScroll):
    """The settings of a new run; ``read_form`` turns them into configs, naming a bad field by its label."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._estimated = False                    # the speed probe runs once the tab has been shown
        self._applied: dict[str, object] = {}     # what the preset last put in each field
        self._preset_line = ""
        self._cell: str | None = None              # the cell the user chose (its auto row), None: the row's
        self._initial_limits: dict[str, str] = {}  # the limit fields as first shown: a resume keeps the run's
        self._initial: dict[str, object] = {}      # every field as first shown, to tell what was set by hand
        self._hidden_by_start: dict[str, object] = {}  # what the start's shape covers in the fields, for scratch
        self._shown_start: str | None = None       # the start whose shape the fields show (None: scratch)

    def compose(self) -> ComposeResult:
        # The core's time budget: the defaults were tuned for runs of that length.
        device = TrainConfig().device
        model, train = assemble("lm", DEFAULT_PRESET, train={"minutes": DEFAULT_MINUTES,
                                                            "device": known_device(device)})
        defaults = {**dataclasses.asdict(model), **dataclasses.asdict(train), "device": device}
        yield Static(id="train-corpus", classes="pane-title")
        with Horizontal(classes="form-row"):
            yield Label("preset", classes="form-label")
            yield Select([(p, p) for p in PRESET_NAMES], value=DEFAULT_PRESET, allow_blank=False,
                         compact=True, id="preset")
        yield Static("", id="preset-info", classes="muted")
        with Horizontal(classes="form-row"):
            yield Label("start", classes="form-label")
            yield Select(self._start_options(), value=SCRATCH, allow_blank=False, compact=True, id="start-from",
                         tooltip="where the weights start. scratch: a new model; the built-in base or one of your "
                                 "language-model runs: "
                                 "its shape and weights, fine-tuned on this corpus (--init-from)")
        for name, label, kind in FIELDS:
            self._initial[name] = defaults.get(name)
            with Horizontal(classes="form-row"):
                yield Label(label, classes="form-label")
                if isinstance(kind, tuple):
                    yield Select([(c, c) for c in kind], value=defaults[name], allow_blank=False,
                                 compact=True, id=f"f-{name}")
                elif kind == "bool":
                    yield Select([("on", True), ("off", False)], value=bool(defaults[name]), allow_blank=False,
                                 compact=True, id=f"f-{name}", tooltip=_TIPS.get(name))
                else:
                    value = defaults[name]
                    if name in LIMITS:
                        self._initial_limits[name] = str(value if value else "")
                    yield Input(str(value if value else ""), id=f"f-{name}", compact=True,
                                type="integer" if kind == "int" else "number",
                                placeholder="none" if name in LIMITS else "auto" if name in BLANK_AUTO else "",
                                valid_empty=name in LIMITS or name in BLANK_AUTO)
        with Horizontal(id="train-buttons"):
            yield Button("Start", id="start", variant="success", compact=True)
            yield Button("Stop", id="stop", variant="error", compact=True, disabled=True)
            yield Button("Resume", id="resume", compact=True)

    def on_mount(self) -> None:
        self._apply_preset(force=True)

    def torch_loaded(self) -> None:
        """The auto device is known now: the auto row for it, and the speed probe if the tab was shown."""
        self._apply_preset(force=False, estimate=False)
        if self._estimated:
            self._estimate_preset()

    def tab_shown(self) -> None:
        self.refresh_starts()
        # The speed probe holds the torch thread for seconds: only once someone looks at this tab.
        if not self._estimated:
            self._estimated = True
            self._estimate_preset()

    # ---- where the weights start -----------------------------------------------------------------

    @staticmethod
    def _start_options() -> list[tuple[str, str]]:
        options = [("scratch", SCRATCH)]
        if (builtin_base_dir() / "run.json").is_file():
            options.append(("built-in base", BASE))
        return options + [(f"run {neutralise(r.name)}", r.name) for r in list_runs() if r.kind == "lm"]

    def refresh_starts(self) -> None:
        """The runs a new run can start from, as they are now (the chosen one kept while it is there)."""
        select = self.query_one("#start-from", Select)
        chosen, options = select.value, self._start_options()
        select.set_options(options)
        select.value = chosen if any(v == chosen for _, v in options) else SCRATCH

    def start_from(self) -> str | None:
        """The run a new run starts from (``--init-from``): None for scratch, ``base`` for the built-in."""
        value = str(self.query_one("#start-from", Select).value)
        return None if value == SCRATCH else BUILTIN_BASE if value == BASE else value

    @on(Select.Changed, "#start-from")
    def _start_picked(self) -> None:
        """Another start: the fields it reads, its shape shown and measured. refresh_starts puts the same start
        back on every visit to the tab, which posts Changed twice; that re-measures nothing."""
        self._start_changed()
        if self.start_from() != self._shown_start:
            self._apply_preset(force=False)

    def _start_changed(self) -> None:
        """Enable the fields the run reads: its task's, less the tokenizer and shape a run started from another
        takes from it."""
        task = str(self.query_one("#f-task", Select).value)
        used = TRAIN_FIELDS | {f.name for f in dataclasses.fields(KINDS[task].model_config)}
        inherited = set(INHERITED) if self.start_from() is not None else set()
        for name in LABELS:
            self.query_one(f"#f-{name}").disabled = (name not in used or name in _NOT_READ.get(task, ())
                                                     or name in inherited)

    def _start_shape(self) -> dict:
        """The level and shape of the run chosen to start from ({} for scratch, or a run that cannot be read:
        Start then says why)."""
        start = self.start_from()
        if start is None:
            return {}
        try:
            meta = read_meta(resolve_run(start))
        except RnnchatError:
            return {}
        shape = {k: getattr(meta.model, k) for k in INHERITED if k in LABELS and hasattr(meta.model, k)}
        return {**shape, "level": meta.train.level}

    def _show_start_shape(self) -> None:
        """While a run to start from is chosen, the fields it decides show its values (they are disabled, and
        the speed line measures that model); back to scratch, they show what they held before."""
        self._shown_start = self.start_from()
        shape = self._start_shape()
        if not shape:
            self._restore_hidden()
        for name, value in shape.items():
            self._hidden_by_start.setdefault(name, self.query_one(f"#f-{name}").value)
            self._set_field(name, value)

    def _restore_hidden(self) -> None:
        """The values a start's shape covered, back in their fields."""
        for name, value in self._hidden_by_start.items():
            self._set_field(name, value)
        self._hidden_by_start = {}

    def _set_field(self, name: str, value) -> None:
        widget = self.query_one(f"#f-{name}")
        widget.value = value if isinstance(widget, Select) else str(value)

    # ---- presets -------------------------------------------------------------------------------

    @on(Select.Changed, "#f-task")
    def _task_changed(self, event: Select.Changed) -> None:
        """Each task starts from its own defaults (chat: subwords, a higher rate, smaller batches)."""
        task = str(event.value)
        kind, base = KINDS[task], TrainConfig()
        self._restore_hidden()           # the task's defaults go where scratch's values are; the start's shape after
        # Every key some task changes, so switching back restores the plain defaults; keys without a
        # field on the form are applied by read_form.
        for key in {k for other in KINDS.values() for k in other.train_defaults} & LABELS.keys():
            self._set_field(key, kind.train_defaults.get(key, getattr(base, key)))
        for key in {k for other in KINDS.values() for k in other.keeps} & LABELS.keys() & set(kind.keeps):
            value = getattr(kind.model_config(), key)
            self.query_one(f"#f-{key}", Input).value = "" if value is None else str(value)
        self._start_changed()
        self._apply_preset(force=True)

    @on(Select.Changed, "#preset")
    def _preset_changed(self) -> None:
        self._apply_preset(force=True)

    @on(Select.Changed, "#f-cell")
    def _cell_changed(self, event: Select.Changed) -> None:
        """A cell chosen by hand takes that cell's auto row (the preset putting its own cell in changes nothing)."""
        if (event.value == self._applied.get("cell") or self.query_one("#preset", Select).value != "auto"
                or self.start_from() is not None):      # a start's own cell, shown, chooses no row
            return
        self._cell = str(event.value)
        self._apply_preset(force=False)

    @on(Select.Changed, "#f-device")
    @on(Select.Changed, "#f-precision")
    @on(Input.Changed, "#f-minutes")
    @on(Input.Changed, "#f-max_steps")
    def _budget_changed(self) -> None:
        """The auto row follows the device and the time budget; fields edited by hand stay as they are."""
        if self.query_one("#preset", Select).value == "auto":
            self._apply_preset(force=False)

    def _preset_choice(self):
        """(settings, auto row or None) of the chosen preset for the form's task, device and limits;
        None while the form's device or limits cannot be read."""
        task = str(self.query_one("#f-task", Select).value)
        limits = {}
        for name in LIMITS:
            raw = self.query_one(f"#f-{name}", Input).value.strip()
            try:
                limits[name] = (int(raw) if name == "max_steps" else float(raw)) if raw else 0
            except ValueError:
                return None
        if not limits["minutes"] and not limits["max_steps"]:
            limits["minutes"] = DEFAULT_MINUTES          # what Start trains for
        try:
            device = known_device(str(self.query_one("#f-device", Select).value))
            train = dataclasses.replace(TrainConfig(), device=device,
                                        precision=str(self.query_one("#f-precision", Select).value), **limits)
            return preset_settings(KINDS[task], str(self.query_one("#preset", Select).value), self._cell, train)
        except RnnchatError:
            return None

    def _apply_preset(self, force: bool, estimate: bool = True) -> None:
        """Put the preset's settings in the form: all of them (force), or those still as it left them."""
        picked = self._preset_choice()
        if picked is None:
            return
        settings, choice = picked
        self._restore_hidden()                  # the preset fills what the fields hold for scratch
        keeps = KINDS[str(self.query_one("#f-task", Select).value)].keeps
        for key, value in settings.items():
            if key not in LABELS or key in keeps:
                continue
            if force or str(self.query_one(f"#f-{key}").value) == str(self._applied.get(key)):
                self._set_field(key, value)
                self._applied[key] = value
        self._show_start_shape()
        info = self.query_one("#preset-info", Static)
        self._preset_line = choice.short() if choice else ""
        info.tooltip = choice.describe() if choice else None
        if estimate and self._estimated:      # the speed probe waits until the tab is first shown
            self._estimate_preset()
        else:
            self._show_estimate("")

    def _estimate_preset(self) -> None:
        if not torch_thread.loaded():    # torch_loaded() measures it
            self._show_estimate("")
            return
        task = str(self.query_one("#f-task", Select).value)
        try:
            model_cfg, train_cfg = self.read_form() if task == "lm" else (None, None)
        except RnnchatError:
            model_cfg = None
        if model_cfg is None:       # the form is being edited, or a chat run: the preset's language model
            model_cfg, train_cfg = assemble("lm", str(self.query_one("#preset", Select).value),
                                            train={"minutes": DEFAULT_MINUTES})
        self._measure(dataclasses.replace(model_cfg, vocab_size=80), train_cfg)

    @work(thread=True, exclusive=True, group="estimate")
    def _measure(self, model_cfg, train_cfg) -> None:
        from rnnchat.train.speed import estimate_tokens_per_s

        def parameters() -> int:
            from rnnchat.lm.model import RNNLM

            return RNNLM(model_cfg).num_parameters()

        params = torch_thread.run(parameters)
        self.app.call_from_thread(self._show_estimate, f"{params / 1e6:.2f}M parameters · measuring speed…")
        try:
            tok_s = torch_thread.run(estimate_tokens_per_s, model_cfg, train_cfg)
            text = f"{params / 1e6:.2f}M parameters · ≈{tok_s:,.0f} chars/s here"
        except Exception as exc:  # noqa: BLE001 - an estimate is optional
            text = f"{params / 1e6:.2f}M parameters (speed unknown: {exc})"
        self.app.call_from_thread(self._show_estimate, text)

    def _show_estimate(self, text: str) -> None:
        lines = [line for line in (getattr(self, "_preset_line", ""), text) if line]
        for info in self.query("#preset-info").results(Static):   # none once the app is closing
            info.update(Text("\n".join(lines)))

    # ---- reading the form ----------------------------------------------------------------------

    def set_by_hand(self) -> set[str]:
        """The fields whose value is neither what the preset put there nor what the form first showed."""
        def shown(value) -> str:        # compared as the form means it: numbers by value, 0 and None as blank
            if value is None or isinstance(value, bool):
                return "" if value is None else str(value)
            try:
                number = float(value)
            except (TypeError, ValueError):
                return str(value).strip()
            return "" if number == 0 else repr(number)

        return {name for name, _, _ in FIELDS
                if shown(self.query_one(f"#f-{name}").value) not in
                (shown(self._applied.get(name, self._initial.get(name))), shown(self._initial.get(name)))}

    def edited_limits(self) -> dict:
        """The limits the user changed from those first shown (blank: no such limit), for a resume, which
        otherwise keeps the run's own limits as ``rnnchat train --resume`` does."""
        out = {}
        for name in LIMITS:
            raw = self.query_one(f"#f-{name}", Input).value.strip()
            if raw != self._initial_limits.get(name, ""):
                try:
                    out[name] = (int(raw) if name == "max_steps" else float(raw)) if raw else 0
                except ValueError:
                    raise RnnchatError(f"{LABELS[name]}: {raw!r} is not a number") from None
        return out

    def read_form(self) -> tuple:
        """(model config, TrainConfig) the form describes; RnnchatError naming the bad field (ConfigError
        names it by its config name: ``phrase`` gives the form's)."""
        model_cfg, train_cfg, _ = self.read_plan()
        return model_cfg, train_cfg

    def read_plan(self) -> tuple:
        """``read_form``'s configs and the line saying which auto row they came from (``runs.kinds.plan``)."""
        values: dict[str, object] = {}
        for name, label, kind in FIELDS:
            if isinstance(kind, tuple) or kind == "bool":
                values[name] = self.query_one(f"#f-{name}", Select).value
                continue
            raw = self.query_one(f"#f-{name}", Input).value.strip()
            if not raw:
                if name not in LIMITS and name not in BLANK_AUTO:
                    raise RnnchatError(f"{label}: a value is needed")
                values[name] = None           # unset: the default, no limit
                continue
            try:
                values[name] = int(raw) if kind == "int" else float(raw)
            except ValueError:
                raise RnnchatError(f"{label}: {raw!r} is not a {'whole ' if kind == 'int' else ''}number") from None
        task = str(values.pop("task"))
        model_fields = {f.name for f in dataclasses.fields(KINDS[task].model_config)}
        # vocab_size is the tokenizer's (a TrainConfig field); the model's is filled in from the tokenizer.
        train = {k: v for k, v in values.items() if k in TRAIN_FIELDS}
        model = {k: v for k, v in values.items() if k in model_fields and k not in TRAIN_FIELDS}
        model_cfg, train_cfg, note = plan(task, str(self.query_one("#preset", Select).value), model,
                                          {**train, "log_every": 5})
        model_cfg.validate()
        train_cfg.validate()
        return model_cfg, train_cfg, note
