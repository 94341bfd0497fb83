"""The real ``rnnchat`` command in subprocesses: training, Ctrl+C, resume, generate, eval, bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FAST, json_events

RNNCHAT = str(Path(sys.executable).parent / "rnnchat")


def rnnchat(*args, input=None, check=True, timeout=120):
    proc = subprocess.run([RNNCHAT, *args], capture_output=True, text=True, input=input, timeout=timeout,
                          env={**os.environ, "COLUMNS": "100"})
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def trained(play_file):
    proc = rnnchat("train", str(play_file), *FAST, "--max-steps", "80", "--eval-every", "40", "--name", "cli",
                   "--json")
    events = json_events(proc.stdout)
    assert events[0]["event"] == "started" and events[-1]["event"] == "done"
    return events


def test_train_json_events(trained):
    kinds = {e["event"] for e in trained}
    assert {"started", "step", "eval", "sample", "checkpoint", "done"} <= kinds
    assert trained[-1]["reason"] == "max_steps" and trained[-1]["step"] == 80
    evals = [e for e in trained if e["event"] == "eval"]
    assert evals[-1]["bits_per_char"] < evals[0]["bits_per_char"]
    # The auto preset (the default) says which row it took: fp32, limited by steps, so the 10-minute row.
    assert trained[0]["preset"].startswith("auto preset: cpu-fp32, a step or epoch limit -> the 10-minute row")
    meta = json.loads((Path(trained[0]["run_dir"]) / "run.json").read_text())
    assert meta["preset"] == trained[0]["preset"]


def test_train_rich_view_prints_progress(play_file):
    proc = rnnchat("train", str(play_file), *FAST, "--max-steps", "20", "--eval-every", "10", "--name", "rich")
    out = proc.stdout
    assert "training rich" in out and "bits/char" in out and "sample at step 10" in out
    assert "max_steps: step 20" in out
    assert "auto preset: cpu-fp32, a step or epoch limit -> the 10-minute row" in out
    sized = rnnchat("train", str(play_file), *FAST, "--max-steps", "2", "--eval-every", "10", "--preset", "tiny",
                    "--name", "sized").stdout
    assert "training sized" in sized and "auto preset" not in sized


def test_generate_streams_reproducibly(trained):
    a = rnnchat("generate", "cli", "--length", "80", "--seed", "7").stdout
    b = rnnchat("generate", "cli", "--length", "80", "--seed", "7").stdout
    c = rnnchat("generate", "cli", "--length", "80", "--seed", "8").stdout
    assert a == b and a != c and len(a.rstrip("\n")) == 80
    greedy1 = rnnchat("generate", "cli", "--length", "50", "--temperature", "0", "--seed", "1").stdout
    greedy2 = rnnchat("generate", "cli", "--length", "50", "--temperature", "0", "--seed", "2").stdout
    assert greedy1 == greedy2
    stopped = rnnchat("generate", "cli", "--length", "400", "--seed", "3", "--stop", ":").stdout
    assert stopped.rstrip("\n").endswith(":") and len(stopped) < 400
    many = json_events(rnnchat("generate", "cli", "--length", "20", "--count", "3", "--json", "--seed", "1").stdout)
    assert [m["sample"] for m in many] == [0, 1, 2] and all(m["tokens"] == 20 for m in many)
    # a small model's weights fit the L2 caches, so it samples in float32 with or without --exact
    exact = json_events(rnnchat("generate", "cli", "--length", "80", "--seed", "7", "--json", "--exact").stdout)[0]
    assert many[0]["weights"] == exact["weights"] == "fp32" and exact["text"] == a.rstrip("\n")


def test_eval_reports_bits_per_char(trained, play_file, tmp_path):
    out = rnnchat("eval", "cli", "--text", str(play_file)).stdout
    assert "bits/char" in out and "perplexity" in out
    result = json.loads(rnnchat("eval", "cli", "--text", str(play_file), "--json").stdout)
    assert 0 < result["bits_per_char"] < 4 and result["chars"] > 1000 and result["unknown"] == 0
    other = tmp_path / "other.txt"
    other.write_text("ALDO: ünknöwn chàrs here\n")
    result = json.loads(rnnchat("eval", "cli", "--text", str(other), "--json").stdout)
    assert result["unknown"] >= 3


def test_ctrl_c_saves_and_resume_continues(play_file):
    proc = subprocess.Popen([RNNCHAT, "train", str(play_file), *FAST, "--max-steps", "100000", "--eval-every",
                             "100000", "--name", "sig", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lines = []
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if '"event": "step"' in line and '"step": 20,' in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    events = json_events("".join(lines) + out)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    done = events[-1]
    assert done["event"] == "done" and done["reason"] == "interrupted" and "--resume sig" in done["message"]
    assert any(e["event"] == "checkpoint" and e["which"] == "last" for e in events)
    stopped_at = done["step"]
    resumed = json_events(rnnchat("train", "--resume", "sig", "--max-steps", str(stopped_at + 10),
                                  "--json").stdout)
    assert resumed[0]["resumed"] and resumed[0]["step"] == stopped_at
    assert resumed[-1]["step"] == stopped_at + 10 and resumed[-1]["reason"] == "max_steps"


def test_corpus_list_and_show(play_file, isolated_paths):
    corpora = isolated_paths / "corpora"
    corpora.mkdir()
    (corpora / "poems.txt").write_text("roses\nare red [bold]\x1b[31m\n")
    listing = rnnchat("corpus", "list").stdout
    assert "shakespeare" in listing and "poems" in listing
    shown = rnnchat("corpus", "show", "poems").stdout
    assert "[bold]" in shown and "\x1b" not in shown and "\u241b" in shown
    stats = json.loads(rnnchat("corpus", "show", "poems", "--json").stdout)
    assert stats["chars"] == len("roses\nare red [bold]\x1b[31m\n")


def test_corpus_list_shows_file_names_literally(isolated_paths):
    corpora = isolated_paths / "corpora"
    corpora.mkdir()
    (corpora / "[bold]x.txt").write_text("a file name that looks like markup\n" * 20)
    listing = rnnchat("corpus", "list").stdout
    assert "[bold]x.txt" in listing


def assert_one_line_error(proc, *fragments):
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr
    assert len(err.splitlines()) == 1, err
    for f in fragments:
        assert f in err, err


def test_bad_corpus_inputs(tmp_path):
    assert_one_line_error(rnnchat("train", "no/such/file.txt", check=False), "not found")
    (tmp_path / "empty.txt").write_text("")
    assert_one_line_error(rnnchat("train", str(tmp_path / "empty.txt"), check=False), "empty")
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)) * 10)
    assert_one_line_error(rnnchat("train", str(tmp_path / "blob.bin"), check=False), "binary")
    (tmp_path / "short.txt").write_text("too short")
    assert_one_line_error(rnnchat("train", str(tmp_path / "short.txt"), check=False), "too short")


@pytest.mark.parametrize("option, fragment", [
    (["--layers", "0"], "--layers"), (["--hidden", "-5"], "--hidden"), (["--lr", "-1"], "--lr"),
    (["--dropout", "1.5"], "--dropout"), (["--seq-len", "1"], "--seq-len"), (["--cell", "tree"], "invalid choice"),
    (["--minutes", "nan"], "--minutes"), (["--batch-size", "abc"], "invalid int"),
])
def test_bad_train_options(play_file, option, fragment):
    assert_one_line_error(rnnchat("train", str(play_file), *option, check=False), fragment)


@pytest.mark.parametrize("option, fragment", [
    (["--temperature", "-1"], "--temperature"), (["--top-p", "0"], "--top-p"), (["--top-p", "1.5"], "--top-p"),
    (["--top-k", "-3"], "--top-k"), (["--length", "-10"], "--length"), (["--count", "0"], "--count"),
    (["--prompt", "\u2603\u2603\u2603"], "prompt"),
])
def test_bad_generate_options(trained, option, fragment):
    assert_one_line_error(rnnchat("generate", "cli", *option, check=False), fragment)


def test_missing_run_and_newer_format(trained, isolated_paths):
    assert_one_line_error(rnnchat("generate", "nope", check=False), "not found")
    run_json = isolated_paths / "checkpoints" / "cli" / "run.json"
    meta = json.loads(run_json.read_text())
    meta["format"] = 99
    run_json.write_text(json.dumps(meta))
    assert_one_line_error(rnnchat("generate", "cli", check=False), "newer")
    assert_one_line_error(rnnchat("eval", "cli", "--text", "missing.txt", check=False), "not found")


@pytest.mark.parametrize("options, fragment", [
    (["--task", "chat", "--cell", "gru"], "chat models use LSTM cells; drop --cell"),
    (["--attention", "dot"], "--attention is for chat models; add --task chat"),
    (["--preset", "huge"], "invalid choice"),
])
def test_train_options_that_do_not_fit_the_task(play_file, options, fragment):
    assert_one_line_error(rnnchat("train", str(play_file), *options, check=False), fragment)


def test_resume_refuses_model_and_data_options():
    proc = rnnchat("train", "--resume", "anything", "--hidden", "64", "--seq-len", "16", check=False)
    assert proc.returncode == 2
    assert_one_line_error(proc, "come from the run; drop --hidden, --seq-len")


def test_help_loads_no_heavy_modules():
    code = ("import sys; from rnnchat.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'numpy', 'rich', 'textual') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


class _FakeSession:
    """Enough of a ChatSession for the slash commands, which never reach the model."""

    class run:
        name = "fake"

    def reset(self):
        pass


@pytest.mark.parametrize("line, message", [
    ("/topp 0", "/topp must be in (0, 1], got 0.0"),
    ("/temperature -1", "/temperature must be a number from 0 to 100; got -1.0"),
    ("/beam 0", "/beam must be a whole number from 1 to 64; got 0"),
    ("/beam x", "/beam needs a whole number, e.g. /beam 4"),
])
def test_chat_commands_name_themselves_in_errors(line, message):
    import io

    from rnnchat.chat.config import DecodeConfig
    from rnnchat.cli.chat import TerminalChat

    err = io.StringIO()
    chat = TerminalChat(_FakeSession(), DecodeConfig(), stdin=io.StringIO(), stdout=io.StringIO(), stderr=err)
    assert chat.command(line) == ""
    assert err.getvalue() == message + "\n"
    assert chat.cfg == DecodeConfig()          # a refused value changes nothing


@pytest.mark.parametrize("option", [["--val-fraction", "0.3"], ["--seed", "7"], ["--eval-chars", "500"],
                                    ["--lr", "0.1"], ["--batch-size", "4"]])
def test_resume_refuses_settings_that_shape_data_split_or_model(option):
    """Before: --val-fraction and --seed re-split the corpus on resume, so trained-on text became validation."""
    proc = rnnchat("train", "--resume", "anything", *option, check=False)
    assert proc.returncode == 2
    assert_one_line_error(proc, f"come from the run; drop {option[0]}")


def test_resume_refuses_them_in_the_engine_too():
    from rnnchat.errors import ConfigError
    from rnnchat.train.loop import Trainer

    with pytest.raises(ConfigError) as caught:
        Trainer(resume="anything", overrides={"max_steps": 10, "val_fraction": 0.3})
    assert caught.value.field == "val_fraction" and "cannot change when resuming" in str(caught.value)
    Trainer(resume="anything", overrides={"max_steps": 10, "minutes": 1.0, "eval_every": 5, "device": "cpu"})


def test_closed_pipe_exits_quietly(trained):
    proc = subprocess.run(["bash", "-c", f"'{RNNCHAT}' generate cli --length 3000 | head -c 10 >/dev/null; "
                                         "echo ${PIPESTATUS[0]}"], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "0" and proc.stderr == ""


def test_nul_in_a_corpus_name_is_one_line():
    """Before: 'internal error: ValueError: embedded null byte'. (A command line cannot carry a NUL, so
    main() is called in a fresh interpreter with one, as a script or the app would.)"""
    code = "import sys; from rnnchat.cli import main; sys.exit(main(['corpus', 'show', 'x\\0y']))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert_one_line_error(proc, "NUL")


def test_inspect_prints_the_inside_view_and_json(trained):
    shown = rnnchat("inspect", "cli", "--prompt", "ALDO:\nI see the moon, and Brina keeps a crown.\n", "--gradients")
    assert "units that track the text" in shown.stdout and "h_t = (1 - z) * n + z * h_(t-1)" in shown.stdout
    assert "gate saturation" in shown.stdout and "t =  10" in shown.stdout
    out = json.loads(rnnchat("inspect", "cli", "--prompt", "ALDO:\nI see the moon.\n", "--show", "update",
                             "--unit", "3", "--json", "--gradients").stdout)
    assert out["cell"] == "gru" and len(out["values"]) == len(out["tokens"]) == len("ALDO:\nI see the moon.\n")
    assert all(0.0 <= v <= 1.0 for v in out["values"]) and len(out["gradients"]) == len(out["tokens"]) - 1
    assert {s["gate"] for s in out["saturation"]} == {"reset", "update"}


@pytest.mark.parametrize("option, fragment", [(["--show", "cell"], "--show must be one of hidden, reset"),
                                              (["--unit", "999"], "--unit must be from 0 to 47"),
                                              (["--layer", "3"], "--layer must be from 0 to 0"),
                                              (["--max-chars", "-15"], "--max-chars must be from 2 to"),
                                              (["--top", "-2"], "--top must be 0 (none) or more"),
                                              (["--show", "gate"], "--show must be one of hidden, reset")])
def test_inspect_bad_options_are_one_line(trained, option, fragment):
    proc = rnnchat("inspect", "cli", "--prompt", "ALDO:", *option, check=False)
    assert proc.returncode == 2
    assert_one_line_error(proc, fragment)


def test_generate_reports_what_is_copied_from_the_training_text(trained):
    out = json_events(rnnchat("generate", "cli", "--length", "200", "--seed", "3", "--json").stdout)[0]
    assert isinstance(out["longest_copy"], int) and 0 <= out["copied_share"] <= 1
    assert out["longest_copy"] <= len(out["text"])
    plain = rnnchat("generate", "cli", "--length", "200", "--seed", "3")
    assert f"longest span {out['longest_copy']} chars" in plain.stderr
    quiet = rnnchat("generate", "cli", "--length", "50", "--no-novelty")
    assert "copied" not in quiet.stderr
    samples = [e for e in trained if e["event"] == "sample"]
    assert samples and all(isinstance(e["longest_copy"], int) for e in samples)


def test_interactive_generation_takes_one_choice_per_line(trained):
    from rnnchat.lm.config import SampleConfig
    from rnnchat.lm.generate import Picker
    from rnnchat.runs.opened import open_language_model

    run = open_language_model("cli")
    picker = Picker(run.model, run.tokenizer, SampleConfig(seed=4), "ALDO:")
    want = []
    for choice in (1, 2, 1, 3):
        options = picker.options(5)
        assert options[0][2] >= options[1][2] >= options[2][2]            # most likely first
        want.append(picker.take(options[choice - 1][0]))
    picker.auto()
    proc = rnnchat("generate", "cli", "--prompt", "ALDO:", "--interactive", "--seed", "4", input="1\n2\n1\n3\n\n")
    assert proc.stdout == picker.text + "\n" and proc.stdout.startswith("".join(want))
    bad = rnnchat("generate", "cli", "--interactive", input="9\n", check=False)
    assert bad.returncode == 2 and "choose 1 to 5" in bad.stderr


def test_a_checkpoint_that_fails_its_check_is_said_not_silently_replaced(trained, tmp_path):
    weights = tmp_path / "checkpoints" / "cli" / "last" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])                 # truncated, as by a full disk or a bad copy
    text = tmp_path / "other.txt"
    text.write_text("ALDO:\nA line of some other play to score.\n" * 20, encoding="utf-8")
    for command in (["generate", "cli", "--length", "20", "--no-novelty"], ["eval", "cli", "--text", str(text)],
                    ["inspect", "cli", "--prompt", "ALDO:"]):
        proc = rnnchat(*command, "--checkpoint", "last")
        warnings = [line for line in proc.stderr.splitlines() if line.startswith("rnnchat: warning:")]
        assert any("truncated" in w and "loaded the previous copy" in w and "step 40" in w for w in warnings), \
            (command, proc.stderr)
