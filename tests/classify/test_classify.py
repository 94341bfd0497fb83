"""A tiny classifier trained on texts told apart by one character: accuracy, classify, eval, resume, the
prediction API and the command line's refusals."""

from __future__ import annotations

import json
import random

import pytest
from conftest import json_events

from rnnchat.cli import main

TINY = ["--task", "classify", "--layers", "1", "--hidden", "32", "--embed", "16", "--batch-size", "16",
        "--precision", "fp32", "--lr", "1e-2", "--warmup-steps", "5", "--eval-every", "40", "--sample-length", "1"]
WORDS = "the a of and to in is it that was he for on are as with his they at be this from".split()


def two_labels(path, n=240, seed=0):
    """Texts of common words, each with one 'x' (label ex) or one 'z' (label zed) somewhere."""
    rng = random.Random(seed)
    rows = ["text\tlabel"]
    for _ in range(n):
        label = rng.choice(["ex", "zed"])
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 10))]
        words.insert(rng.randrange(len(words) + 1), label[0].replace("e", "x"))
        rows.append(f"{' '.join(words)}\t{label}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One run shared by the module's tests (trained once, in its own checkpoints folder)."""
    base = tmp_path_factory.mktemp("classify")
    mp = pytest.MonkeyPatch()
    mp.setenv("RNNCHAT_CHECKPOINTS", str(base / "checkpoints"))
    mp.setenv("RNNCHAT_CACHE", str(base / "cache"))
    data = two_labels(base / "two.tsv")
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["train", str(data), *TINY, "--max-steps", "120", "--name", "tiny", "--json"])
    mp.undo()
    assert code == 0
    return base, data, json_events(out.getvalue())


@pytest.fixture
def run_env(trained, monkeypatch):
    base, data, events = trained
    monkeypatch.setenv("RNNCHAT_CHECKPOINTS", str(base / "checkpoints"))
    monkeypatch.setenv("RNNCHAT_CACHE", str(base / "cache"))
    return data, events


def test_training_learns_the_character_and_reports_figures(run_env):
    _, events = run_env
    evals = [e for e in events if e["event"] == "eval"]
    last = evals[-1]["figures"]
    assert last["accuracy"] >= 0.9 and last["macro_f1"] >= 0.9
    assert set(last["precision"]) == {"ex", "zed"} and len(last["confusion"]) == 2
    assert sum(map(sum, last["confusion"])) > 10
    assert last["majority_accuracy"] < 0.7 and 0.0 <= last["ngram_macro_f1"] <= 1.0
    started = next(e for e in events if e["event"] == "started")
    assert started["train_tokens"] > 0


def test_classify_gives_every_label_a_probability(run_env, capsys):
    assert main(["classify", "tiny", "--prompt", "the x of it", "--prompt", "he is z at", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in rows] == ["ex", "zed"]
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-4 for r in rows)


def test_classify_reads_files_and_lines(run_env, tmp_path, capsys):
    f = tmp_path / "many.txt"
    f.write_text("the x is\n\nhe z was\n")
    assert main(["classify", "tiny", "--text", str(f), "--lines"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and ": ex" in out[0] and ": zed" in out[1]


def test_eval_prints_the_figures_and_refuses_unknown_labels(run_env, tmp_path, capsys):
    data, _ = run_env
    assert main(["eval", "tiny", "--text", str(data), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] >= 0.9 and result["labels"] == ["ex", "zed"]
    other = tmp_path / "other.tsv"
    other.write_text("text\tlabel\nthe x\tex\nthe q\tqueue\n")
    assert main(["eval", "tiny", "--text", str(other)]) == 2
    err = capsys.readouterr().err
    assert "queue" in err and "not trained on" in err and len(err.strip().splitlines()) == 1


def test_reading_api_moves_on_the_telling_character(run_env):
    from rnnchat.classify.predict import probabilities, reading
    from rnnchat.runs.opened import open_run

    run = open_run("tiny", "best", "classify")
    text = "the a of z and to"          # before the z, nothing says zed: the z itself must turn the decision
    steps = reading(run.model, run.tokenizer, text)
    assert len(steps) == len(text)
    biggest = max(range(len(steps)), key=lambda i: steps[i].moved)
    assert steps[biggest].token == "z" and steps[biggest].moved > 0.5
    whole = probabilities(run.model, run.tokenizer, [text])[0]
    assert whole.label == "zed"
    assert abs(steps[-1].probabilities[1] - whole.probabilities["zed"]) < 1e-4   # read() ends where forward does


def test_resume_continues_the_run(run_env, capsys):
    assert main(["train", "--resume", "tiny", "--max-steps", "130", "--json"]) == 0
    events = json_events(capsys.readouterr().out)
    assert events[0]["event"] == "started" and events[0]["step"] == 120
    assert events[-1]["event"] == "done"


@pytest.mark.parametrize("args, says", [
    (["classify", "tiny"], "give --text FILE or --prompt TEXT"),
    (["classify", "tiny", "--prompt", " "], "is empty"),
    (["classify", "nope", "--prompt", "x"], "nope"),
])
def test_classify_refusals(run_env, capsys, args, says):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_training_refusals_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nhello,a\nthere,a\nlone,b\n")
    assert main(["train", str(bad), *TINY, "--max-steps", "5"]) == 2
    err = capsys.readouterr().err
    assert "fewer than 2 texts" in err and len(err.strip().splitlines()) == 1


def test_corpus_show_labels(tmp_path, capsys):
    data = two_labels(tmp_path / "two.tsv", n=40)
    assert main(["corpus", "show", str(data), "--labels", "--json"]) == 0
    labels = json.loads(capsys.readouterr().out)["labels"]
    assert set(labels) == {"ex", "zed"} and sum(r["texts"] for r in labels.values()) == 40


def test_eval_ranks_language_model_runs_by_bits_per_char(tmp_path, capsys):
    from conftest import FAST

    like = tmp_path / "like.txt"
    like.write_text("the a of and to in is it " * 200)
    unlike = tmp_path / "unlike.txt"
    unlike.write_text("zqxj vwkb yfgp mhlc " * 200)
    for name, path in (("like", like), ("unlike", unlike)):
        assert main(["train", str(path), *FAST, "--max-steps", "30", "--name", name]) == 0
    capsys.readouterr()
    probe = tmp_path / "probe.txt"
    probe.write_text("it is the a of and to in " * 20)
    assert main(["eval", "unlike", "like", "--text", str(probe), "--json"]) == 0
    ranking = json.loads(capsys.readouterr().out)["ranking"]
    assert [r["run"] for r in ranking] == ["like", "unlike"]
    assert main(["eval", "like", "tiny-missing", "--text", str(probe)]) == 2
    assert "tiny-missing" in capsys.readouterr().err
