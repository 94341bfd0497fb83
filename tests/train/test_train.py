"""Real training runs of tiny models on small generated text."""

import json
import math

import pytest
import torch

from rnnchat import events as ev
from rnnchat.config import TrainConfig
from rnnchat.errors import ConfigError, CorpusError, SaveError
from rnnchat.lm.config import ModelConfig
from rnnchat.runs.checkpoints import load_checkpoint
from rnnchat.runs.opened import open_language_model
from rnnchat.train.loop import Trainer

TINY = ModelConfig(layers=1, hidden=48, embed=16, dropout=0.0)


def quick(**kw) -> TrainConfig:
    base = dict(seq_len=32, batch_size=16, lr=1e-2, warmup_steps=5, eval_every=30, eval_chars=2000,
                sample_length=40, log_every=5, precision="fp32", device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def collect(trainer):
    return list(trainer.run())


def of(events, cls):
    return [e for e in events if isinstance(e, cls)]


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_loss_falls_and_run_is_saved(play_file, cell):
    trainer = Trainer(str(play_file), ModelConfig(cell=cell, layers=2, hidden=48, embed=16, dropout=0.0),
                      quick(max_steps=90), name=f"t-{cell}")
    events = collect(trainer)
    started, done = of(events, ev.Started)[0], events[-1]
    assert isinstance(started, ev.Started) and started.parameters > 0 and started.max_steps == 90
    assert isinstance(done, ev.Done) and done.reason == "max_steps" and done.step == 90
    steps, evals = of(events, ev.Step), of(events, ev.Eval)
    assert steps[-1].loss < steps[0].loss - 0.8, (steps[0].loss, steps[-1].loss)
    assert evals[-1].val_loss < evals[0].val_loss
    assert all(math.isfinite(s.grad_norm) and s.chars_per_s > 0 for s in steps)
    assert evals[-1].bits_per_char == pytest.approx(evals[-1].val_loss / math.log(2), rel=0.05)
    assert len(of(events, ev.Sample)) == len(evals) and all(of(events, ev.Sample))
    run_dir = trainer.run_dir
    assert (run_dir / "last" / "model.safetensors").is_file() and (run_dir / "best" / "manifest.json").is_file()
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["summary"]["step"] == 90 and meta["model"]["cell"] == cell
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len(evals) and json.loads(lines[-1])["step"] == 90
    opened = open_language_model(str(run_dir))
    assert opened.which == "best" and opened.model.cfg.cell == cell


def run_losses(events):
    return {e.step: e.loss for e in events if isinstance(e, ev.Step)}


@pytest.mark.parametrize("carry", [False, True])
def test_stopped_and_resumed_run_follows_the_same_curve(play_file, carry):
    cfg = quick(max_steps=60, eval_every=1000, carry_state=carry, sample_length=0)
    model = ModelConfig(layers=2, hidden=32, embed=16, dropout=0.2)  # dropout: the RNG must be restored too
    straight = Trainer(str(play_file), model, cfg, name="straight")
    full = run_losses(collect(straight))

    stopped = Trainer(str(play_file), model, cfg, name="stopped")
    first = []
    for event in stopped.run():
        first.append(event)
        if isinstance(event, ev.Step) and event.step == 25:
            stopped.stop()
    assert first[-1].reason == "interrupted" and first[-1].step == 25
    resumed = collect(Trainer(resume="stopped"))
    assert of(resumed, ev.Started)[0].resumed and of(resumed, ev.Started)[0].step == 25
    second = run_losses(resumed)
    for step in (30, 45, 60):
        assert second[step] == pytest.approx(full[step], abs=1e-5), step
    a = load_checkpoint(straight.run_dir, "last").model
    b = load_checkpoint(stopped.run_dir, "last").model
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=0)


def test_epoch_and_time_limits(play_file):
    done = collect(Trainer(str(play_file), TINY, quick(epochs=0.5), name="ep"))[-1]
    assert done.reason == "epochs" and done.step > 0
    done = collect(Trainer(str(play_file), TINY, quick(minutes=0.02), name="tm"))[-1]
    assert done.reason == "time" and done.elapsed >= 1.2


def test_no_limit_defaults_to_a_time_budget_with_a_warning(play_file):
    trainer = Trainer(str(play_file), TINY, quick(), name="nolimit")
    events = trainer.run()
    warnings = []
    for e in events:
        if isinstance(e, ev.Warning):
            warnings.append(e.message)
        if isinstance(e, ev.Started):
            assert e.minutes == 10.0
            trainer.stop()
    assert any("10 minutes" in w for w in warnings)


@pytest.mark.parametrize("deferred", [False, True], ids=["checked-each-step", "checked-per-interval"])
def test_nan_is_recovered_and_never_saved(play_file, monkeypatch, deferred):
    if deferred:  # the GPU way: figures stay on the device and are checked every log interval
        monkeypatch.setattr(Trainer, "_check_interval", lambda self: self.cfg.log_every)
    trainer = Trainer(str(play_file), TINY, quick(max_steps=40, eval_every=20), name="nan")
    events = []
    poisoned = False
    for e in trainer.run():
        events.append(e)
        if isinstance(e, ev.Step) and e.step == 10 and not poisoned:
            poisoned = True
            with torch.no_grad():
                trainer.model.head.bias.fill_(float("nan"))
    warnings = [e.message for e in of(events, ev.Warning)]
    assert any("non-finite" in w for w in warnings), warnings
    assert events[-1].reason == "max_steps"
    for which in ("last", "best"):
        for t in load_checkpoint(trainer.run_dir, which).model.values():
            assert torch.isfinite(t).all()


def test_repeated_divergence_stops_with_a_clear_message(play_file):
    trainer = Trainer(str(play_file), TINY, quick(max_steps=200), name="diverge")
    events = []
    for e in trainer.run():
        events.append(e)
        if isinstance(e, (ev.Step, ev.Warning)):
            with torch.no_grad():
                trainer.model.head.bias.fill_(float("inf"))
    done = events[-1]
    assert done.reason == "failed" and "diverged" in done.message


def test_corpus_too_short_for_a_window(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("just a few words\n")
    with pytest.raises(CorpusError, match="too short"):
        collect(Trainer(str(path), TINY, quick(max_steps=5)))


def test_existing_run_name_is_refused(play_file):
    collect(Trainer(str(play_file), TINY, quick(max_steps=5), name="same"))
    with pytest.raises(ConfigError, match="already exists"):
        collect(Trainer(str(play_file), TINY, quick(max_steps=5), name="same"))


def test_resume_of_finished_run_needs_a_larger_limit(play_file):
    collect(Trainer(str(play_file), TINY, quick(max_steps=10), name="fin"))
    with pytest.raises(ConfigError, match="already reached"):
        collect(Trainer(resume="fin"))
    done = collect(Trainer(resume="fin", overrides={"max_steps": 20}))[-1]
    assert done.step == 20 and done.reason == "max_steps"


def test_the_reached_limit_is_named_with_the_flag_that_lifts_it(play_file):
    collect(Trainer(str(play_file), TINY, quick(max_steps=10), name="steps"))
    with pytest.raises(ConfigError, match=r"already reached its step limit \(step 10,.*larger --max-steps"):
        collect(Trainer(resume="steps"))
    collect(Trainer(str(play_file), TINY, quick(minutes=0.001), name="timed"))
    with pytest.raises(ConfigError, match=r"already reached its time budget.*larger --minutes to train"):
        collect(Trainer(resume="timed"))


def test_the_run_is_released_when_done_and_closing_saves_nothing_twice(play_file, tmp_path):
    trainer = Trainer(str(play_file), TINY, quick(max_steps=10, eval_every=5), name="closed")
    events = trainer.run()
    for event in events:
        if isinstance(event, ev.Done):
            break
    run_dir = tmp_path / "checkpoints" / "closed"
    assert not (run_dir / ".lock").exists()          # released before Done was handed out, not at collection
    saved = (run_dir / "last" / "manifest.json").stat().st_mtime_ns
    old_step = json.loads((run_dir / ".last.old" / "trainer.json").read_text())["step"]
    events.close()                                   # what a consumer that stops reading does
    assert (run_dir / "last" / "manifest.json").stat().st_mtime_ns == saved
    assert old_step == 5                             # the copy before the last is the step-5 save, not a twin


def test_closing_mid_run_keeps_the_steps_not_yet_saved(play_file, tmp_path):
    events = Trainer(str(play_file), TINY, quick(max_steps=50, eval_every=40), name="cut").run()
    for event in events:
        if isinstance(event, ev.Step) and event.step == 10:
            break
    events.close()
    trainer = json.loads((tmp_path / "checkpoints" / "cut" / "last" / "trainer.json").read_text())
    assert trainer["step"] == 10


def test_subword_run_reports_bits_per_char(play_file):
    events = collect(Trainer(str(play_file), TINY, quick(max_steps=30, level="bpe", vocab_size=400), name="bpe"))
    evals = of(events, ev.Eval)
    started = of(events, ev.Started)[0]
    assert started.level == "bpe" and started.vocab_size > 256
    # subword tokens carry several characters, so bits per char is well below bits per token
    assert evals[-1].bits_per_char < 0.7 * evals[-1].val_loss / math.log(2)


def test_second_run_on_same_corpus_uses_the_token_cache(play_file):
    from rnnchat.lm.data import prepare
    from rnnchat.text.load import load_corpus

    corpus = load_corpus(str(play_file))
    first = prepare(corpus, "char")
    second = prepare(corpus, "char")
    assert not first.cached and second.cached and first.path == second.path
    assert (second.train == first.train).all()


def test_every_level_scores_the_same_validation_characters(play_file):
    """Before: a bpe run scored ~3x more (and other) text than a char run, converted with the whole split's
    chars/token, so bits per character did not compare across levels."""
    from rnnchat.lm.model import RNNLM
    from rnnchat.lm.task import LMTask
    from rnnchat.text.load import load_corpus
    from rnnchat.vocab import EOD

    corpus = load_corpus(str(play_file))
    spans = {}
    for level in ("char", "bpe", "unigram"):
        task = LMTask(corpus, quick(level=level, vocab_size=300, eval_chars=1500), ModelConfig())
        ids = [int(i) for i in task.eval_ids if int(i) != EOD]
        spans[level] = task.tokenizer.decode(ids)
        assert task.eval_chars == 1500
        model = RNNLM(ModelConfig(layers=1, hidden=16, embed=8, vocab_size=task.tokenizer.vocab_size))
        figures = task.evaluate(model, torch.device("cpu"), "fp32")
        scored = len(task.eval_ids) - 1
        assert figures["bits_per_char"] == pytest.approx(figures["val_loss"] * scored / 1500 / math.log(2))
    assert len(spans["char"]) == 1500 and spans["char"] == spans["bpe"] == spans["unigram"]


def test_chat_eval_scores_pairs_in_source_order_not_the_shortest(tmp_path):
    from rnnchat.chat.config import Seq2SeqConfig
    from rnnchat.chat.task import ChatTask
    from rnnchat.text.load import load_corpus

    lines = "".join(f"{'word ' * (1 + (i * 7) % 9)}{i}\treply {'x' * ((i * 5) % 13)} {i}\n" for i in range(400))
    (tmp_path / "pairs.tsv").write_text(lines, encoding="utf-8")
    task = ChatTask(load_corpus(str(tmp_path / "pairs.tsv")),
                    TrainConfig(task="chat", level="char", eval_chars=400), Seq2SeqConfig(context_turns=0))
    chosen = len(task._eval)
    assert 0 < chosen < len(task.data.val_pairs)
    want = task.data.val_pairs[:chosen]
    assert task._eval_chars == sum(len(p.reply) + 1 for p in want) >= 400


def test_deferred_checks_still_stop_and_evaluate_at_the_exact_step(play_file, monkeypatch):
    """Before: with figures checked every log interval (the GPU way), --max-steps 25 trained to 30 and
    --eval-every 7 evaluated only at multiples of the interval."""
    monkeypatch.setattr(Trainer, "_check_interval", lambda self: 10)
    events = collect(Trainer(str(play_file), TINY, quick(max_steps=25, eval_every=7, log_every=10), name="exact"))
    assert [e.step for e in of(events, ev.Eval)] == [7, 14, 21, 25]
    assert events[-1].reason == "max_steps" and events[-1].step == 25
    assert [e.step for e in of(events, ev.Step)] == [10, 20]


def test_patience_stops_when_held_out_loss_stops_improving_and_keeps_best(tmp_path):
    # Random letters: nothing to learn beyond their frequencies, so held-out loss soon stops improving.
    import random
    rng = random.Random(0)
    corpus = tmp_path / "noise.txt"
    corpus.write_text("".join(rng.choice("abcdefgh \n") for _ in range(6000)), encoding="utf-8")
    model = ModelConfig(layers=1, hidden=96, embed=16, dropout=0.0)
    events = collect(Trainer(str(corpus), model, quick(max_steps=2000, eval_every=10, patience=2, lr=2e-2,
                                                       sample_length=0), name="noise"))
    done, evals = events[-1], of(events, ev.Eval)
    assert done.reason == "stalled" and done.step < 2000
    best = min(evals, key=lambda e: e.val_loss)
    assert [e.step for e in evals if e.step > best.step] == [best.step + 10, best.step + 20]
    assert f"step {best.step:,}" in done.message
    assert load_checkpoint(tmp_path / "checkpoints" / "noise", "best").trainer["step"] == best.step
    # A resumed run remembers when its best was; patience may be changed on resume.
    again = collect(Trainer(resume="noise", overrides={"patience": 3, "max_steps": 2000}))
    overall = min(evals + of(again, ev.Eval), key=lambda e: e.val_loss)
    assert again[-1].reason == "stalled" and again[-1].step == overall.step + 30


def test_the_cache_of_copied_text_is_private(play_file, tmp_path):
    import stat

    collect(Trainer(str(play_file), TINY, quick(max_steps=3), name="private"))
    cache = tmp_path / "cache"
    folders = [cache, *(p for p in cache.rglob("*") if p.is_dir())]
    assert len(folders) > 1
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o700 for p in folders), [oct(p.stat().st_mode) for p in folders]


def test_a_run_that_fails_before_its_run_json_leaves_no_folder_behind(tmp_path, play_file, monkeypatch):
    """A new run's folder is made before its description is written; a failure between the two (here a full
    disk) removes it again, so the same --name works on the next try."""
    import rnnchat.train.setup as setup
    from rnnchat.train.loop import Trainer

    real = setup.write_meta

    def full_disk(run_dir, meta):
        raise SaveError("cannot write run.json: no space left on device")

    tiny = ModelConfig(layers=1, hidden=16, embed=8)
    cfg = TrainConfig(max_steps=2, eval_every=2, seq_len=16, batch_size=4, eval_chars=300, sample_length=0,
                      precision="fp32")
    monkeypatch.setattr(setup, "write_meta", full_disk)
    with pytest.raises(SaveError):
        list(Trainer(str(play_file), tiny, cfg, name="again").run())
    assert not (tmp_path / "checkpoints" / "again").exists()
    monkeypatch.setattr(setup, "write_meta", real)
    list(Trainer(str(play_file), tiny, cfg, name="again").run())
    assert (tmp_path / "checkpoints" / "again" / "run.json").is_file()
