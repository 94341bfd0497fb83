"""``rnnchat inspect`` on classifier runs, through the real command: the label, the units and gates (torch's
own numbers for the same weights), the gradients of the label's loss, a bidirectional run's --direction,
and every refusal in one line (one-way and language-model runs given --direction, --label without a
classifier or --gradients, gradients of a pooled classifier, a chat run)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FAST, make_play_text, write_x_or_z

from rnnchat.cli import main
from rnnchat.runs.opened import open_run

RNNCHAT = str(Path(sys.executable).parent / "rnnchat")
ZED = "the a of z and to it was he"          # only its z says zed
EX = "he was in x the of it"
CLASSIFY = ["--task", "classify", "--layers", "1", "--embed", "16", "--batch-size", "16", "--precision", "fp32",
            "--device", "cpu", "--lr", "1e-2", "--warmup-steps", "5", "--eval-every", "60", "--sample-length", "1",
            "--json"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """In one checkpoints folder: "one" (a GRU classifier, 120 steps), "bi" (a bidirectional LSTM one),
    "mean" (pooling the mean of its states), "lm" (a language model) and "chatty" (a chat model)."""
    root = tmp_path_factory.mktemp("inspect-classifier")
    data = write_x_or_z(root / "two.tsv", 240)
    play = root / "play.txt"
    play.write_text(make_play_text(), encoding="utf-8")
    chat = root / "chat.tsv"
    chat.write_text("prompt\treply\n" + "".join(f"hello {i}\tworld {i}\n" for i in range(60)), encoding="utf-8")
    mp = pytest.MonkeyPatch()
    mp.setenv("RNNCHAT_CHECKPOINTS", str(root / "checkpoints"))
    mp.setenv("RNNCHAT_CACHE", str(root / "cache"))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            for args in (
                    [str(data), *CLASSIFY, "--cell", "gru", "--hidden", "32", "--max-steps", "120", "--name", "one"],
                    [str(data), *CLASSIFY, "--cell", "lstm", "--hidden", "16", "--bidirectional", "--max-steps", "120",
                     "--name", "bi"],
                    [str(data), *CLASSIFY, "--hidden", "16", "--pooling", "mean", "--max-steps", "3", "--name", "mean"],
                    [str(play), *FAST, "--max-steps", "3", "--eval-every", "3", "--name", "lm", "--json"],
                    [str(chat), "--task", "chat", "--layers", "1", "--hidden", "16", "--embed", "8", "--batch-size",
                     "8", "--precision", "fp32", "--max-steps", "2", "--eval-every", "2", "--sample-length", "2",
                     "--name", "chatty", "--json"]):
                assert main(["train", *args]) == 0, args
    finally:
        mp.undo()
    return root


def inspect(runs: Path, *args: str, check: bool = True, real: bool = False) -> subprocess.CompletedProcess:
    """``rnnchat inspect ARGS`` on the module's runs: the real command in a process of its own (``real``), or
    its entry point in this one (the same code, without a second torch import)."""
    env = {"RNNCHAT_CHECKPOINTS": str(runs / "checkpoints"), "RNNCHAT_CACHE": str(runs / "cache"), "COLUMNS": "240"}
    if real:
        proc = subprocess.run([RNNCHAT, "inspect", *args], capture_output=True, text=True, env={**os.environ, **env},
                              timeout=120)
    else:
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            for name, value in env.items():
                mp.setenv(name, value)
            try:
                code = main(["inspect", *args])
            except SystemExit as exc:            # argparse's refusals
                code = exc.code
        proc = subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def inspected(runs: Path, *args: str) -> dict:
    return json.loads(inspect(runs, *args, "--json").stdout)


def opened(runs: Path, name: str):
    return open_run(runs / "checkpoints" / name, "best", "classify")


def torch_reading(run, text: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids, embedded inputs, the recurrent layer's outputs) as the model's own torch modules compute them."""
    ids = torch.as_tensor(np.asarray(run.tokenizer.encode(text), dtype=np.int64))
    with torch.no_grad():
        x = run.model.embed(ids[None])
        out, _ = run.model.rnn(x)
    return ids, x[0], out[0]


def loss_gradient(run, ids: torch.Tensor, label: str) -> np.ndarray:
    """d(cross-entropy of ``label``) / d(the head's input), worked from the classifier's own logits."""
    labels = run.model.cfg.labels
    with torch.no_grad():
        logits = run.model(ids[None], torch.tensor([len(ids)]))[0]
    g = torch.softmax(logits, 0) - torch.nn.functional.one_hot(torch.tensor(labels.index(label)), len(labels))
    return (run.model.head.weight.detach().T @ g).numpy()


def test_a_classifier_s_label_units_and_gates(runs):
    for text, want in ((ZED, "zed"), (EX, "ex")):
        shown = inspect(runs, "one", "--prompt", text, real=True).stdout
        assert f"label: {want}" in shown
        assert "classifier, gru 1x32, pooling last" in shown and "units that track the text" in shown
        assert "gate saturation" in shown and "h_t = (1 - z) * n + z * h_(t-1)" in shown
    run = opened(runs, "one")
    out = inspected(runs, "one", "--prompt", ZED, "--unit", "7")
    assert out["kind"] == "classify" and out["label"] == "zed" and out["directions"] == ["forward"]
    assert abs(sum(out["probabilities"].values()) - 1) < 1e-4 and max(out["probabilities"].values()) > 0.5
    ids, x, hidden = torch_reading(run, ZED)
    assert out["tokens"] == list(ZED)
    np.testing.assert_allclose(out["values"], hidden[:, 7].numpy(), atol=1e-4)
    # The update gate of unit 7, worked from the GRU's weights and torch's own hidden states.
    rnn, H = run.model.rnn, run.model.cfg.hidden
    h_before = torch.cat([torch.zeros(1, H), hidden[:-1]])
    with torch.no_grad():
        z = torch.sigmoid(x @ rnn.weight_ih_l0[H:2 * H].T + rnn.bias_ih_l0[H:2 * H]
                          + h_before @ rnn.weight_hh_l0[H:2 * H].T + rnn.bias_hh_l0[H:2 * H])
    gate = inspected(runs, "one", "--prompt", ZED, "--unit", "7", "--show", "update")
    np.testing.assert_allclose(gate["values"], z[:, 7].numpy(), atol=1e-4)
    assert {s["gate"] for s in out["saturation"]} == {"reset", "update"}
    update = next(s for s in out["saturation"] if s["gate"] == "update")
    assert update["below"] == pytest.approx(float((z < 0.1).float().mean()), abs=1e-6)
    assert 0 < len(out["interesting"]) <= 5 and all(m["unit"] < H for m in out["interesting"])


def test_gradients_follow_the_predicted_or_the_given_label(runs):
    run = opened(runs, "one")
    ids, _, _ = torch_reading(run, ZED)
    predicted = inspected(runs, "one", "--prompt", ZED, "--gradients")
    assert predicted["gradient_label"] == "zed" and len(predicted["gradients"]) == len(ids)
    chosen = inspected(runs, "one", "--prompt", ZED, "--gradients", "--label", "ex")
    assert chosen["gradient_label"] == "ex" and chosen["label"] == "zed"
    for out, label in ((predicted, "zed"), (chosen, "ex")):     # lag 0: the head's gradient on the last state
        assert out["gradients"][0] == pytest.approx(float(np.linalg.norm(loss_gradient(run, ids, label))), rel=1e-4)
        assert all(g >= 0 for g in out["gradients"])
    shown = inspect(runs, "one", "--prompt", ZED, "--gradients", "--label", "ex").stdout
    assert f"loss of the chosen label ex after {len(ids)} tokens" in shown and "t =  10" in shown
    assert "loss of the predicted label zed" in inspect(runs, "one", "--prompt", ZED, "--gradients").stdout


def test_a_bidirectional_classifier_shows_the_direction_asked(runs):
    run = opened(runs, "bi")
    H = run.model.cfg.hidden
    ids, _, out = torch_reading(run, EX)
    forward = inspected(runs, "bi", "--prompt", EX, "--unit", "3", "--gradients")
    backward = inspected(runs, "bi", "--prompt", EX, "--unit", "3", "--gradients", "--direction", "backward")
    assert forward["directions"] == backward["directions"] == ["forward", "backward"]
    assert forward["direction"] == "forward" and backward["direction"] == "backward"
    np.testing.assert_allclose(forward["values"], out[:, 3].numpy(), atol=1e-4)
    np.testing.assert_allclose(backward["values"], out[:, H + 3].numpy(), atol=1e-4)
    assert any("h_(t+1)" in line for line in backward["equations"])
    assert not any("h_(t+1)" in line for line in forward["equations"])
    label = forward["label"]
    grad = loss_gradient(run, ids, label)                   # each direction's half of the summary
    assert forward["gradients"][0] == pytest.approx(float(np.linalg.norm(grad[:H])), rel=1e-4)
    assert backward["gradients"][0] == pytest.approx(float(np.linalg.norm(grad[H:])), rel=1e-4)
    assert len(forward["gradients"]) == len(backward["gradients"]) == len(ids)
    assert {s.get("direction") for s in forward["saturation"]} == {"forward", "backward"}
    shown = inspect(runs, "bi", "--prompt", EX, "--direction", "backward", "--gradients").stdout
    assert "colour = layer 0 backward hidden unit 0" in shown and "bidirectional" in shown
    assert "the cell (backward direction, reads right to left" in shown
    assert "by the backward direction's hidden state" in shown and f"label: {label}" in shown


def test_a_pooled_classifier_is_inspected_without_gradients(runs):
    shown = inspect(runs, "mean", "--prompt", ZED).stdout
    assert "pooling mean" in shown and "label: " in shown and "gate saturation" in shown


@pytest.mark.parametrize("args, says", [
    (["one", "--direction", "backward"], "--direction is for a bidirectional classifier; run 'one' is a classifier"),
    (["one", "--direction", "forward"], "--direction is for a bidirectional classifier"),
    (["lm", "--direction", "forward"], "run 'lm' is a language model that reads left to right only"),
    (["bi", "--direction", "sideways"], "invalid choice: 'sideways'"),
    (["mean", "--gradients"], "this classifier pools the mean of its states; gradients through time follow"),
    (["one", "--label", "ex"], "--label names the label whose loss --gradients follows"),
    (["one", "--label", "nope", "--gradients"], "the run has no label 'nope'; its labels: ex, zed"),
    (["lm", "--label", "ex", "--gradients"], "--label is for a classifier; run 'lm' is a language model"),
    (["chatty"], "run 'chatty' is a chat model"),
    (["one", "--show", "cell"], "--show must be one of hidden, reset, update, new for a gru model"),
])
def test_refusals_are_one_line(runs, args, says):
    proc = inspect(runs, *args, "--prompt", ZED, check=False, real=args == ["mean", "--gradients"])
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnchat: error: ") and says in lines[0], proc.stderr
