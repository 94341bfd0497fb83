"""``--preset auto``: the settings measured to learn most within a time budget on each class of device.

A row is keyed by the device class (``device.device_class``: a CPU with AMX, a CPU with bf16 but no
AMX, an fp32-only CPU, a CUDA GPU) and a budget in minutes. Each names the measurement behind it in
benchmarks/RESULTS.md, or says plainly that it was not measured and where it was carried from. A run
takes the row of the largest budget not above its own (the smallest row below five minutes); a run
limited by steps or epochs alone takes the row of the default ten minutes. Naming a cell picks that
cell's row of the class and budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from rnnchat.config import DEFAULT_MINUTES

BUDGETS = (5.0, 10.0, 30.0)


@dataclass(frozen=True)
class Row:
    device_class: str
    minutes: float
    settings: dict            # ModelConfig and TrainConfig fields; cell always among them
    source: str               # the measurement in benchmarks/RESULTS.md, or why there is none

    def summary(self) -> str:
        s = self.settings
        parts = [f"{s['cell'].upper()} {s['layers']}x{s['hidden']}", f"lr {s['lr']:g}",
                 f"batch {s['batch_size']}", f"window {s['seq_len']}"]
        if s.get("carry_state"):
            parts[-1] += " with state carried"
        if s.get("dropout"):
            parts.append(f"dropout {s['dropout']:g}")
        return ", ".join(parts)


def _row(device_class: str, minutes: float, source: str, *, cell: str, layers: int = 2, hidden: int = 256,
         embed: int = 64, dropout: float = 0.0, lr: float = 5e-3, batch_size: int = 64, seq_len: int = 128,
         carry_state: bool = False) -> Row:
    settings = dict(cell=cell, layers=layers, hidden=hidden, embed=embed, dropout=dropout, lr=lr,
                    batch_size=batch_size, seq_len=seq_len, carry_state=carry_state)
    return Row(device_class, minutes, settings, source)


_AMX = "measured: 5-minute sweep, Intel Xeon with AMX, 2026-12-02, afternoon"
_AMX_10 = "measured: 10-minute sweep, Intel Xeon with AMX, 2026-12-02, evening"
_AMX_GRU_10 = "not measured at this budget: the 5-minute GRU row at the 10-minute rate"
_AMX_30 = "not measured at this budget: the 10-minute row"
_BF16 = "measured: 5-minute sweeps, AMD EPYC with avx512_bf16, 2026-12-02 and 2026-12-03"
_BF16_LSTM = "measured: 5-minute sweep, AMD EPYC with avx512_bf16, 2026-12-03"
_BF16_LSTM_10 = "measured: one 10-minute run, AMD EPYC with avx512_bf16, 2026-12-03"
_BF16_10 = "measured: 10-minute runs, AMD EPYC with avx512_bf16, 2026-12-02 (morning) and 2026-12-03"
_BF16_30 = "not measured at this budget: the 10-minute row"
_LSTM_LATER = "not measured at this budget: the 10-minute row"
_FP32 = "measured: 5-minute race at one thread, AMD EPYC with AVX2 only, 2026-12-04"
_FP32_10 = "measured: 10-minute race at one thread, AMD EPYC with AVX2 only, 2026-12-04"
_FP32_30 = "not measured at this budget: the 10-minute row"
_LSTM_CARRIED = "not measured on this class: the cpu-bf16 2x256 LSTM row"
_CUDA = "not measured (no GPU lent yet): the medium shape with batch 128"

# The first row of a class and budget is the pick; a later row there is another cell's best.
_GRU_CARRY = dict(cell="gru", seq_len=64, carry_state=True)     # won at 5 minutes
_GRU_CARRY_SLOW = dict(_GRU_CARRY, lr=3.5e-3)                   # twice the updates want a lower rate: won at 10
_LSTM_FAST = dict(cell="lstm", lr=2e-2)
# With AMX the fused LSTM runs fast enough that width pays, most in one layer: 1x768 beat 2x256 to 2x640.
_LSTM_WIDE = dict(cell="lstm", layers=1, hidden=768, lr=7e-3)
# Over ten minutes it overfits the plays: dropout on its input and output (not inside the fused kernel) paid.
_LSTM_WIDE_DROP = dict(_LSTM_WIDE, dropout=0.1)
# Without AMX one layer of 512 is the LSTM's best (it ties the GRU row); 2x256 at lr 2e-2 ended 0.03 behind.
_LSTM_ONE = dict(cell="lstm", layers=1, hidden=512, lr=1e-2)
_LSTM_ONE_DROP = dict(_LSTM_ONE, dropout=0.1)
# Without bf16 a step costs its full fp32 FLOPs: 2x192 reads 1.5x the text of 2x256 and ended lower at 5 and 10.
_GRU_NARROW = dict(_GRU_CARRY, hidden=192, lr=6e-3)
_GRU_NARROW_SLOW = dict(_GRU_NARROW, lr=4.2e-3)
_GRU_WIDE = dict(_GRU_CARRY, hidden=384)
_GRU_WIDE_SLOW = dict(_GRU_WIDE, lr=3.5e-3)
_CUDA_LSTM = dict(cell="lstm", layers=3, hidden=512, embed=128, dropout=0.2, lr=3e-3, batch_size=128)
ROWS: tuple[Row, ...] = (
    _row("cpu-amx", 5, _AMX, **_LSTM_WIDE),
    _row("cpu-amx", 5, _AMX, **_GRU_WIDE),
    _row("cpu-amx", 10, _AMX_10, **_LSTM_WIDE_DROP),
    _row("cpu-amx", 10, _AMX_GRU_10, **_GRU_WIDE_SLOW),
    _row("cpu-amx", 30, _AMX_30, **_LSTM_WIDE_DROP),
    _row("cpu-amx", 30, _AMX_30, **_GRU_WIDE_SLOW),
    _row("cpu-bf16", 5, _BF16, **_GRU_CARRY),
    _row("cpu-bf16", 5, _BF16_LSTM, **_LSTM_ONE),
    _row("cpu-bf16", 10, _BF16_10, **_GRU_CARRY_SLOW),
    _row("cpu-bf16", 10, _BF16_LSTM_10, **_LSTM_ONE_DROP),
    _row("cpu-bf16", 30, _BF16_30, **_GRU_CARRY_SLOW),
    _row("cpu-bf16", 30, _LSTM_LATER, **_LSTM_ONE_DROP),
    _row("cpu-fp32", 5, _FP32, **_GRU_NARROW),
    _row("cpu-fp32", 5, _LSTM_CARRIED, **_LSTM_FAST),
    _row("cpu-fp32", 10, _FP32_10, **_GRU_NARROW_SLOW),
    _row("cpu-fp32", 10, _LSTM_CARRIED, **_LSTM_FAST),
    _row("cpu-fp32", 30, _FP32_30, **_GRU_NARROW_SLOW),
    _row("cpu-fp32", 30, _LSTM_CARRIED, **_LSTM_FAST),
    _row("cuda", 5, _CUDA, **_CUDA_LSTM),
    _row("cuda", 10, _CUDA, **_CUDA_LSTM),
    _row("cuda", 30, _CUDA, **_CUDA_LSTM),
)


@dataclass(frozen=True)
class Choice:
    row: Row
    budget: float | None      # the run's time budget in minutes; None when limited by steps or epochs only
    cell_given: bool = False  # the cell was named, so the row is that cell's

    @property
    def settings(self) -> dict:
        return dict(self.row.settings)

    def short(self) -> str:
        """A few words for a narrow form: the class, the row and whether it was measured."""
        measured = "measured" if self.row.source.startswith("measured") else "not measured"
        return f"auto: {self.row.device_class}, {self.row.minutes:g}-min row ({measured})"

    def describe(self) -> str:
        """One line: which row, for which machine and budget, and what stands behind it."""
        budget = f"{self.budget:g}-minute budget" if self.budget is not None else "a step or epoch limit"
        return (f"auto preset: {self.row.device_class}, {budget} -> the {self.row.minutes:g}-minute row: "
                f"{self.row.summary()} ({self.row.source})")


def budget_of(minutes: float, max_steps: int, epochs: float) -> float | None:
    """A run's time budget: its minutes, the default when it has no limit at all, None for steps/epochs."""
    if minutes:
        return minutes
    return None if (max_steps or epochs) else DEFAULT_MINUTES


def choose(device_class: str, budget: float | None, cell: str | None = None) -> Choice:
    rows = [r for r in ROWS if r.device_class == device_class]
    if not rows:
        raise ValueError(f"no auto rows for device class {device_class!r}")
    wanted = DEFAULT_MINUTES if budget is None else budget
    fits = [m for m in BUDGETS if m <= wanted]
    minutes = fits[-1] if fits else BUDGETS[0]
    at_budget = [r for r in rows if r.minutes == minutes]
    if cell is not None:
        same = [r for r in at_budget if r.settings["cell"] == cell]
        if same:
            return Choice(same[0], budget, cell_given=True)
        first = at_budget[0]
        return Choice(Row(first.device_class, first.minutes, {**first.settings, "cell": cell},
                          f"{first.source}; {cell} not measured here, the {first.settings['cell']} row's settings"),
                      budget, cell_given=True)
    return Choice(at_budget[0], budget)
