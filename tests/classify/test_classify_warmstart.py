"""--init-from for a classifier: the language model's embedding and recurrent layers, any cell; one clear
error when the shapes cannot match."""

from __future__ import annotations

import pytest
import torch
from conftest import FAST, json_events
from test_classify import TINY, two_labels

from rnnchat.cli import main
from rnnchat.runs.opened import open_run


def lm_run(tmp_path, capsys, cell: str) -> str:
    text = tmp_path / "words.txt"
    text.write_text(" ".join(line.split("\t")[0] for line in two_labels(tmp_path / "d.tsv").read_text()
                             .splitlines()[1:]) * 3)
    assert main(["train", str(text), *FAST, "--cell", cell, "--max-steps", "5", "--name", f"lm-{cell}"]) == 0
    capsys.readouterr()
    return f"lm-{cell}"


def without_shape(args):
    """TINY without the shape options, which --init-from takes from the language model."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("--layers", "--hidden", "--embed"):
            skip = True
            continue
        out.append(a)
    return out


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_classifier_starts_from_a_language_models_layers(tmp_path, capsys, cell):
    lm = lm_run(tmp_path, capsys, cell)
    data = two_labels(tmp_path / "two.tsv")
    assert main(["train", str(data), *without_shape(TINY), "--init-from", lm, "--max-steps", "1",
                 "--eval-every", "1", "--name", "warm", "--json"]) == 0
    started = next(e for e in json_events(capsys.readouterr().out) if e["event"] == "started")
    assert started["started_from"].startswith(lm)
    source, classifier = open_run(lm, "last", "lm"), open_run("warm", "last", "classify")
    assert classifier.model.cfg.cell == cell and classifier.model.cfg.hidden == source.model.cfg.hidden
    # One step of training moved the weights a little from the language model's, not far.
    for name in ("embed.weight", "rnn.weight_hh_l0"):
        a, b = dict(source.model.named_parameters())[name], dict(classifier.model.named_parameters())[name]
        assert a.shape == b.shape and torch.allclose(a, b, atol=0.05)


def test_shapes_that_cannot_match_are_one_line(tmp_path, capsys):
    lm = lm_run(tmp_path, capsys, "gru")
    two = tmp_path / "two-layer"
    two.write_text((tmp_path / "words.txt").read_text())
    assert main(["train", str(two), *FAST, "--layers", "2", "--max-steps", "2", "--name", "lm2"]) == 0
    capsys.readouterr()
    data = two_labels(tmp_path / "two.tsv")
    assert main(["train", str(data), *without_shape(TINY), "--init-from", "lm2", "--bidirectional",
                 "--max-steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "rnn.weight_ih_l1" in err and "bidirectional" in err and len(err.strip().splitlines()) == 1
    assert lm
