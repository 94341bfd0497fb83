"""The parser in-process: the defaults its help names are the config dataclasses' own, and no module of
``rnnchat.cli`` imports the package itself (the exit codes live in ``cli/exits.py``)."""

import ast
import re
from pathlib import Path

import pytest

import rnnchat.cli
from rnnchat.chat.config import CHAT_TRAIN_DEFAULTS, DecodeConfig, Seq2SeqConfig
from rnnchat.cli import main
from rnnchat.config import TrainConfig
from rnnchat.lm.config import SampleConfig


def option_help(command: str, capsys, monkeypatch) -> dict[str, str]:
    """Each option of ``rnnchat COMMAND --help`` -> its help text on one line."""
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping: one option, one line
    with pytest.raises(SystemExit):
        main([command, "--help"])
    helps, option = {}, None
    for line in capsys.readouterr().out.splitlines():
        found = re.match(r"  (-\w, )?(--[\w-]+)(?: [A-Z_]+| \{[^}]*\})?(?:\s{2,}(.*))?$", line)
        if found:       # an option; its help follows on this line or (a long option) on the next
            option = found.group(2)
            helps[option] = found.group(3) or ""
        elif option and line.startswith("    "):
            helps[option] = (helps[option] + " " + line.strip()).strip()
        else:
            option = None
    return helps


def named_default(text: str) -> str:
    found = re.search(r"\(default:? ([^;)]+)[;)]", text)
    assert found, f"no default in {text!r}"
    return found.group(1)


@pytest.mark.parametrize("command, option, value", [
    ("train", "--val-fraction", TrainConfig().val_fraction),
    ("train", "--eval-chars", TrainConfig().eval_chars),
    ("train", "--attention", Seq2SeqConfig().attention),
    ("train", "--context-turns", Seq2SeqConfig().context_turns),
    ("train", "--max-turn-chars", Seq2SeqConfig().max_turn_chars),
    ("train", "--teacher-forcing", Seq2SeqConfig().teacher_forcing),
    ("generate", "--length", SampleConfig().length),
    ("generate", "--temperature", SampleConfig().temperature),
    ("chat", "--temperature", DecodeConfig().temperature),
    ("chat", "--top-p", DecodeConfig().top_p),
    ("chat", "--beam", DecodeConfig().beam),
    ("chat", "--length-penalty", DecodeConfig().length_penalty),
    ("chat", "--repetition-penalty", DecodeConfig().repetition_penalty),
    ("chat", "--max-length", DecodeConfig().max_length),
])
def test_help_names_the_dataclass_default(command, option, value, capsys, monkeypatch):
    shown = named_default(option_help(command, capsys, monkeypatch)[option])
    assert type(value)(shown) == value


def test_help_marks_the_default_choice_and_the_chat_patience(capsys, monkeypatch):
    train = option_help("train", capsys, monkeypatch)
    assert f"{TrainConfig().task}: a language model (default)" in train["--task"]
    assert train["--task"].count("(default)") == 1
    assert f"chat default {CHAT_TRAIN_DEFAULTS['patience']})" in train["--patience"]
    chat = option_help("chat", capsys, monkeypatch)
    nearest = "the replies to the nearest prompts of the run's dialogue corpus"
    assert f"{DecodeConfig().candidates}: {nearest}" in chat["--candidates"]
    assert "anti-LM score (default)" in chat["--candidates"]
    assert chat["--candidates"].count("(default)") == 1


def test_inspect_help_names_the_max_chars_it_uses(capsys, monkeypatch):
    from rnnchat.cli.inspect import MAX_CHARS

    inspect = option_help("inspect", capsys, monkeypatch)
    assert int(named_default(inspect["--max-chars"])) == MAX_CHARS


def test_no_cli_module_imports_the_cli_package():
    offenders = [path.name for path in sorted(Path(rnnchat.cli.__file__).parent.glob("*.py"))
                 for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                 if isinstance(node, ast.ImportFrom) and node.module == "rnnchat.cli"]
    assert offenders == [], "exit codes come from rnnchat.cli.exits, never from the package"
