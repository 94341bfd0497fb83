"""Checkpoints: atomic saves, validated loads, hostile files refused."""

import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from rnnchat import CHECKPOINT_FORMAT
from rnnchat.config import TrainConfig
from rnnchat.errors import CheckpointError
from rnnchat.lm.config import ModelConfig
from rnnchat.runs.checkpoints import load_checkpoint, save_checkpoint
from rnnchat.runs.intact import checkpoint_dir
from rnnchat.runs.meta import read_meta
from rnnchat.runs.opened import open_language_model
from rnnchat.train.loop import Trainer


@pytest.fixture
def run_dir(play_file):
    trainer = Trainer(str(play_file), ModelConfig(layers=1, hidden=32, embed=8, dropout=0.0),
                      TrainConfig(seq_len=16, batch_size=8, max_steps=12, eval_every=6, eval_chars=500,
                                  sample_length=10, precision="fp32"), name="ck")
    list(trainer.run())
    return trainer.run_dir


def test_layout(run_dir):
    for name in ("run.json", "tokenizer.json", "metrics.jsonl"):
        assert (run_dir / name).is_file()
    for which in ("last", "best"):
        files = {p.name for p in (run_dir / which).iterdir()}
        assert files == {"model.safetensors", "optimizer.safetensors", "trainer.json", "manifest.json"}
        manifest = json.loads((run_dir / which / "manifest.json").read_text())
        assert set(manifest["run_files"]) == {"tokenizer.json"}
    # Only the previous copies stay (the fallback of a copy that fails its check): no temporaries, no lock.
    assert {p.name for p in run_dir.glob(".*")} <= {".last.old", ".best.old"}


def test_interrupted_save_leaves_previous_checkpoint_loadable(run_dir):
    before = load_checkpoint(run_dir, "last")
    # A save killed after renaming the old checkpoint aside but before the new one was renamed in:
    shutil.rmtree(run_dir / ".last.old")
    os.rename(run_dir / "last", run_dir / ".last.old")
    (run_dir / ".last.tmp-999").mkdir()
    (run_dir / ".last.tmp-999" / "model.safetensors").write_bytes(b"partial")
    again = load_checkpoint(run_dir, "last")
    assert again.trainer["step"] == before.trainer["step"]
    assert open_language_model(str(run_dir), "last").model is not None
    # ...and the next save cleans up and lands normally.
    save_checkpoint(run_dir, "last", before.model, {}, before.trainer)
    assert checkpoint_dir(run_dir, "last") == run_dir / "last"


def test_write_killed_mid_file_keeps_old_checkpoint(run_dir):
    """A real process killed while writing: the checkpoint on disk stays the previous one."""
    script = textwrap.dedent(f"""
        import os, torch
        from rnnchat.runs import checkpoints as c
        real = c.write_file
        def dying(path, data):
            real(path, data)
            if path.name == "optimizer.safetensors":
                os._exit(9)   # like SIGKILL: no cleanup, no finally blocks
        c.write_file = dying
        c.save_checkpoint(c.Path({str(run_dir)!r}), "last", {{"x": torch.zeros(3)}}, {{}}, {{"step": 999}})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == 9
    assert load_checkpoint(run_dir, "last").trainer["step"] == 12


def copies(run_dir, which):
    """A checkpoint and its previous copy: a test that damages one must damage both to see a refusal."""
    return [p for p in (run_dir / which, run_dir / f".{which}.old") if p.is_dir()]


def test_truncated_weights_are_refused(run_dir):
    for ckpt in copies(run_dir, "best"):
        path = ckpt / "model.safetensors"
        path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated"):
        open_language_model(str(run_dir), "best")


def test_tampered_weights_are_refused(run_dir):
    for ckpt in copies(run_dir, "best"):
        path = ckpt / "model.safetensors"
        data = bytearray(path.read_bytes())
        data[-5] ^= 0xFF
        path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum"):
        open_language_model(str(run_dir), "best")


def test_tampered_last_falls_back_to_its_previous_copy(run_dir):
    """Issue 11, item 8: a `last` that fails its checksum loads the copy it replaced, and says so."""
    previous = load_checkpoint(run_dir, "last").trainer["step"]
    save_checkpoint(run_dir, "last", load_checkpoint(run_dir, "last").model, {}, {"step": previous + 1})
    path = run_dir / "last" / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    loaded = load_checkpoint(run_dir, "last")
    assert loaded.path == run_dir / ".last.old" and loaded.trainer["step"] == previous
    assert "checksum" in loaded.note and "previous copy" in loaded.note


def test_tampered_tokenizer_is_refused(run_dir):
    """Issue 11, item 10: the tokenizer files are in every manifest and checked on load."""
    path = run_dir / "tokenizer.json"
    meta = json.loads(path.read_text())
    meta["chars"] = meta["chars"][::-1]
    path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="tokenizer.json does not match its checksum"):
        open_language_model(str(run_dir), "best")


class Boom:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_pickle_in_place_of_weights_never_runs(run_dir, tmp_path):
    import hashlib
    for ckpt in copies(run_dir, "best"):
        path = ckpt / "model.safetensors"
        path.write_bytes(pickle.dumps({"w": Boom()}))
        manifest = json.loads((ckpt / "manifest.json").read_text())
        manifest["files"]["model.safetensors"] = {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                                                  "size": path.stat().st_size}
        (ckpt / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError):
        open_language_model(str(run_dir), "best")
    assert not (tmp_path / "pwned").exists()


def test_weights_of_another_model_shape_are_refused(run_dir):
    meta = json.loads((run_dir / "run.json").read_text())
    meta["model"]["hidden"] = 64
    (run_dir / "run.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="loadable"):
        open_language_model(str(run_dir))


def test_other_kind_of_model_is_refused(run_dir):
    meta = json.loads((run_dir / "run.json").read_text())
    meta["kind"] = "seq2seq"
    (run_dir / "run.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="not a language model"):
        open_language_model(str(run_dir))


def test_newer_format_is_refused(run_dir):
    meta = json.loads((run_dir / "run.json").read_text())
    meta["format"] = CHECKPOINT_FORMAT + 1
    (run_dir / "run.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="newer"):
        read_meta(run_dir)


@pytest.mark.parametrize("where, value, field", [
    (("model", "hidden"), "wide", "model.hidden"),
    (("model", "cell"), "transformer", "model.cell"),
    (("train", "seq_len"), -3, "train.seq_len"),
    (("train", "lr"), float("inf"), "train.lr"),
    (("corpus", "hash"), ["not", "text"], "corpus.hash"),
    (("corpus",), "shakespeare", "corpus"),
    (("tokenizer",), "word", "tokenizer"),
    (("summary", "step"), -1, "summary.step"),
    (("summary", "best_bits_per_char"), "low", "summary.best_bits_per_char"),
    (("parameters",), True, "parameters"),
    (("init_from",), {"run": "x", "checkpoint": "middle", "step": 1}, "init_from.checkpoint"),
])
def test_every_run_json_field_is_checked_and_named(run_dir, where, value, field):
    meta = json.loads((run_dir / "run.json").read_text())
    holder = meta
    for key in where[:-1]:
        holder = holder[key]
    holder[where[-1]] = value
    (run_dir / "run.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=f"run '{run_dir.name}' has a bad run.json field {field}:"):
        read_meta(run_dir)


def test_an_unknown_run_json_key_is_refused_by_name(run_dir):
    meta = json.loads((run_dir / "run.json").read_text())
    meta["execute"] = "rm -rf ~"
    (run_dir / "run.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="run 'ck' has a run.json field this rnnchat does not know: 'execute'"):
        read_meta(run_dir)


def test_run_json_reads_into_a_typed_description(run_dir):
    meta = read_meta(run_dir)
    assert meta.kind.name == "lm" and meta.model.hidden > 0 and meta.train.seq_len > 0
    assert meta.corpus.hash and meta.summary.step > 0 and meta.tokenizer == "char"


def test_missing_run_is_a_clear_error():
    with pytest.raises(CheckpointError, match="not found"):
        open_language_model("no-such-run")


def test_loaded_weights_are_on_the_cpu(run_dir):
    run = open_language_model(str(run_dir))
    assert all(p.device.type == "cpu" for p in run.model.parameters())
    logits, _ = run.model(torch.zeros(1, 3, dtype=torch.long))
    assert torch.isfinite(logits).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_run_saved_on_gpu_loads_on_cpu(play_file):
    trainer = Trainer(str(play_file), ModelConfig(layers=1, hidden=32, embed=8, dropout=0.0),
                      TrainConfig(seq_len=16, batch_size=8, max_steps=6, eval_every=3, eval_chars=500,
                                  sample_length=10, device="cuda"), name="gpu")
    list(trainer.run())
    run = open_language_model("gpu")
    assert all(p.device.type == "cpu" for p in run.model.parameters())


def test_a_run_reads_its_corpus_only_when_it_is_the_text_it_trained_on(run_dir, play_file, tmp_path, monkeypatch):
    from rnnchat.errors import CorpusError
    from rnnchat.runs.opened import copy_index, training_corpus

    monkeypatch.setenv("RNNCHAT_CACHE", str(tmp_path / "fresh-cache"))     # no copy index cached yet
    meta = read_meta(run_dir)
    assert training_corpus(meta).content_hash() == meta.corpus.hash
    original = play_file.read_text(encoding="utf-8")
    play_file.write_text(original + "NEW:\nAdded later.\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"the run's corpus is not here .*; pass --corpus PATH"):
        training_corpus(meta)
    index, note = copy_index(meta)
    assert index is None and "the run's corpus is not here" in note
    with pytest.raises(CorpusError, match="the run's corpus is not here"):
        list(Trainer(resume=str(run_dir), overrides={"max_steps": 20}).run())
    # Where the user says the text is now: taken, as it is the run's own.
    (tmp_path / "elsewhere").mkdir()
    moved = tmp_path / "elsewhere" / play_file.name
    moved.write_text(original, encoding="utf-8")
    assert copy_index(meta, str(moved))[0] is not None
    # A run.json from elsewhere that names a private folder: nothing of it reaches the cache.
    secret = tmp_path / "private"
    secret.mkdir()
    (secret / "diary.txt").write_text("my secret thoughts\n", encoding="utf-8")
    raw = json.loads((run_dir / "run.json").read_text())
    raw["corpus"]["source"] = str(secret)
    (run_dir / "run.json").write_text(json.dumps(raw))
    monkeypatch.setenv("RNNCHAT_CACHE", str(tmp_path / "other-cache"))
    index, note = copy_index(read_meta(run_dir))
    assert index is None and "not the text it trained on" in note
    assert not (tmp_path / "other-cache").exists() or not any((tmp_path / "other-cache").rglob("*"))
