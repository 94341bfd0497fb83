"""The auto preset: one row per device class and budget, each valid, measured rows in RESULTS.md."""

from pathlib import Path

import pytest

from rnnchat.config import DEFAULT_MINUTES
from rnnchat.device import DEVICE_CLASSES, cpu_features, cpu_has_amx, cpu_has_native_bf16, device_class, pick_device
from rnnchat.errors import ConfigError
from rnnchat.runs import auto
from rnnchat.runs.kinds import assemble, plan

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "RESULTS.md"


def test_every_class_has_a_row_for_every_budget_and_each_row_builds():
    for cls in DEVICE_CLASSES:
        for minutes in auto.BUDGETS:
            rows = [r for r in auto.ROWS if r.device_class == cls and r.minutes == minutes]
            assert rows, (cls, minutes)
            assert len({r.settings["cell"] for r in rows}) == len(rows), "one row per cell"
    for row in auto.ROWS:
        model, train = assemble("lm", "small", {k: v for k, v in row.settings.items() if k in
                                                ("cell", "layers", "hidden", "embed", "dropout")},
                                {k: v for k, v in row.settings.items() if k in ("lr", "batch_size", "seq_len")})
        model.validate()
        train.validate()


def test_measured_rows_are_written_down_in_results():
    text = RESULTS.read_text(encoding="utf-8")
    table = text[text.index("### The auto preset's table"):]
    for row in auto.ROWS:
        assert row.source.startswith(("measured", "not measured")), row
        line = f"| {row.device_class} | {row.minutes:g} | {row.summary()} |"
        assert line in table, f"RESULTS.md's auto table lacks {line!r}"


@pytest.mark.parametrize("budget, row_minutes", [(1, 5), (5, 5), (7.5, 5), (10, 10), (29, 10), (30, 30), (600, 30),
                                                 (None, DEFAULT_MINUTES)])
def test_a_budget_takes_the_largest_row_not_above_it(budget, row_minutes):
    choice = auto.choose("cpu-fp32", budget)
    assert choice.row.minutes == row_minutes
    line = choice.describe()
    assert line.startswith("auto preset: cpu-fp32") and choice.row.summary() in line and "\n" not in line
    assert ("step or epoch limit" in line) == (budget is None)


def test_a_named_cell_takes_its_own_row_or_the_rows_settings_with_that_cell():
    for cls in DEVICE_CLASSES:
        for cell in ("lstm", "gru", "rnn"):
            choice = auto.choose(cls, 5, cell)
            assert choice.settings["cell"] == cell and choice.cell_given
            measured = [r for r in auto.ROWS if r.device_class == cls and r.minutes == 5 and r.settings["cell"] == cell]
            assert (choice.row in measured) == bool(measured)
            if not measured:
                assert f"{cell} not measured here" in choice.describe()


def test_device_class_of_this_machine():
    cpu = pick_device("cpu")
    assert device_class(cpu, "fp32") == "cpu-fp32"
    expected = ("cpu-amx" if cpu_has_amx() else "cpu-bf16") if cpu_has_native_bf16() else "cpu-fp32"
    assert device_class(cpu, "auto") == expected
    assert device_class(cpu, "bf16") == expected


def test_cpu_features_name_the_flags_that_decide_the_class(monkeypatch):
    features = {"amx": ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile"), "bf16": ("avx512f", "avx512_bf16"),
                "plain": ("sse2", "avx2")}
    for kind, flags in features.items():
        monkeypatch.setattr("rnnchat.device.cpu_flags", lambda flags=flags: frozenset(flags))
        assert cpu_has_amx() == (kind == "amx") and cpu_has_native_bf16() == (kind != "plain")
        assert cpu_features() == {"amx": "AVX-512 + avx512_bf16 + AMX", "bf16": "AVX-512 + avx512_bf16",
                                  "plain": "no AVX-512, bf16 or AMX"}[kind]
        cls = device_class(pick_device("cpu"), "auto")
        assert cls == {"amx": "cpu-amx", "bf16": "cpu-bf16", "plain": "cpu-fp32"}[kind]


def test_plan_applies_the_row_then_the_options_given():
    model, train, note = plan("lm", None, {"hidden": 96}, {"precision": "fp32", "minutes": 5, "lr": 0.02})
    row = auto.choose("cpu-fp32", 5).row
    assert model.cell == row.settings["cell"] and model.layers == row.settings["layers"]
    assert model.hidden == 96 and train.lr == 0.02                         # what the user said wins
    assert train.batch_size == row.settings["batch_size"] and train.seq_len == row.settings["seq_len"]
    # The note describes what trains: the row, and each of its settings the options replaced.
    assert note == auto.choose("cpu-fp32", 5).describe() + (
        f"; set by hand: hidden 96 (the row's {row.settings['hidden']}), lr 0.02 (the row's {row.settings['lr']:g})")
    assert plan("lm", None, {}, {"precision": "fp32", "minutes": 5})[2] == auto.choose("cpu-fp32", 5).describe()
    # A size preset says nothing and changes no training settings; a chat model takes the small shape.
    assert plan("lm", "tiny", {}, {"precision": "fp32"})[2] == ""
    chat_model, _, chat_note = plan("chat", "auto", {}, {})
    assert chat_model.hidden == 256 and "chat model takes the small shape" in chat_note


def test_plan_names_a_bad_device_or_preset():
    with pytest.raises(ConfigError) as info:
        plan("lm", None, {}, {"device": "tpu"})
    assert info.value.field == "device"
    with pytest.raises(ConfigError) as info:
        plan("lm", "huge")
    assert info.value.field == "preset"
