"""`rnnchat chat RUN` with no --candidates: retrieval by default, each reply saying where it came from,
and the model's own replies (with one warning) when the run's training dialogue is not here.

One tiny chat run per module, trained on "tell me about WORD" -> "OTHER is what I know" pairs that no
model learns in 60 steps, so a right reply can only have been retrieved.
"""

from __future__ import annotations

import json
import os
import pty
import random
import select
import subprocess
import sys
import time

import pytest

from rnnchat.chat.config import DecodeConfig, Seq2SeqConfig
from rnnchat.config import TrainConfig
from rnnchat.train.loop import Trainer

# Shares no character 2-, 3- or 4-gram with any training prompt: nothing to retrieve, so the model answers.
UNLIKE = "12345"


@pytest.fixture(scope="module")
def facts(tmp_path_factory):
    """(the run directory, its corpus file, {prompt: reply} of every pair written)."""
    root = tmp_path_factory.mktemp("facts")
    rng = random.Random(11)
    words = sorted({"".join(rng.choice("abcdefgh") for _ in range(6)) for _ in range(300)})
    pairs = {f"tell me about {a}": f"{b} is what I know" for a, b in zip(words, reversed(words))}
    corpus = root / "facts.tsv"
    corpus.write_text("prompt\treply\n" + "".join(f"{a}\t{b}\n" for a, b in pairs.items()), encoding="utf-8")
    mp = pytest.MonkeyPatch()
    mp.setenv("RNNCHAT_CHECKPOINTS", str(root / "checkpoints"))
    mp.setenv("RNNCHAT_CACHE", str(root / "cache"))
    try:
        list(Trainer(str(corpus), Seq2SeqConfig(layers=1, hidden=48, embed=16, dropout=0.0, context_turns=0),
                     TrainConfig(task="chat", max_steps=60, eval_every=60, batch_size=32, lr=1e-2,
                                 sample_length=0, precision="fp32"), name="facts").run())
    finally:
        mp.undo()
    return root / "checkpoints" / "facts", corpus, pairs


def chat(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnnchat", "chat", *args], input=stdin, capture_output=True,
                          text=True, timeout=120)


def training_prompts(run_dir, n: int) -> list[str]:
    from rnnchat.runs.meta import read_meta
    from rnnchat.runs.retrieval import open_retriever

    return [p.prompt for p in open_retriever(read_meta(run_dir), "facts").pairs[:n]]


def test_the_default_is_retrieval_and_each_reply_says_where_it_came_from(facts):
    run_dir, _, pairs = facts
    assert DecodeConfig().candidates == "retrieval"
    prompts = training_prompts(run_dir, 4)
    res = chat(str(run_dir), "--json", stdin="".join(p + "\n" for p in [*prompts, UNLIKE]))
    assert res.returncode == 0, res.stderr
    records = [json.loads(line) for line in res.stdout.splitlines()]
    assert [r["prompt"] for r in records] == [*prompts, UNLIKE]
    known = [r for r in records if r["prompt"] in pairs]
    assert sum(r["reply"] == pairs[r["prompt"]] for r in known) >= 3, records
    assert all(r["source"] == "retrieved" for r in known if r["reply"] == pairs[r["prompt"]])
    assert records[-1]["source"] == "model"                 # nothing like it in training: the model wrote it
    assert "warning" not in res.stderr
    # Piped plain output stays one reply line per input line: the mark is for people (terminal, --json).
    plain = chat(str(run_dir), stdin=prompts[0] + "\n")
    assert plain.returncode == 0 and plain.stdout == pairs[prompts[0]] + "\n", plain.stderr


def test_a_terminal_shows_the_source_as_one_dim_word_after_the_reply(facts):
    run_dir, _, pairs = facts
    prompt = training_prompts(run_dir, 1)[0]
    primary, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update(TERM="xterm-256color", COLUMNS="200")
    proc = subprocess.Popen([sys.executable, "-m", "rnnchat", "chat", str(run_dir)], stdin=secondary,
                            stdout=secondary, stderr=subprocess.PIPE, env=env)
    os.close(secondary)
    seen = b""
    try:
        os.write(primary, (prompt + "\n").encode())
        deadline = time.monotonic() + 90
        while b"retrieved" not in seen and time.monotonic() < deadline:
            if select.select([primary], [], [], 0.5)[0]:
                seen += os.read(primary, 65536)
        os.write(primary, b"\x04")                         # Ctrl+D leaves
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(primary)
    out = seen.decode("utf-8", "replace")
    reply_at = out.find(pairs[prompt], out.find("facts>"))
    assert reply_at > 0, out
    after = out[reply_at + len(pairs[prompt]):]
    assert after.startswith("\x1b[2m  retrieved\x1b[0m"), repr(after[:40])   # dim (SGR 2), then plain again


def test_without_its_corpus_the_default_falls_back_to_the_model_saying_so_once(facts):
    run_dir, corpus, pairs = facts
    prompts = training_prompts(run_dir, 2)
    hidden = corpus.parent / "moved" / corpus.name          # the same name: only where it is has changed
    hidden.parent.mkdir(exist_ok=True)
    corpus.rename(hidden)
    try:
        res = chat(str(run_dir), "--json", stdin="".join(p + "\n" for p in prompts))
        assert res.returncode == 0, res.stderr
        lines = res.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("rnnchat: warning: "), res.stderr
        assert "the run's corpus is not here" in lines[0] and "replying with the model's own replies" in lines[0]
        records = [json.loads(line) for line in res.stdout.splitlines()]
        assert len(records) == 2 and {r["source"] for r in records} == {"model"}
        # Asked for by name, retrieval that cannot work stays an error: one line, exit 2.
        res = chat(str(run_dir), "--candidates", "retrieval", stdin=prompts[0] + "\n")
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
        assert "retrieval needs the training dialogue of run 'facts'" in res.stderr
        # So is a --corpus that is not the run's dialogue: it asks for retrieval too.
        res = chat(str(run_dir), "--corpus", str(run_dir / "run.json"), stdin=prompts[0] + "\n")
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and "pass --corpus PATH" in res.stderr, res.stderr
        # --corpus says where it is now: retrieval again, by default.
        res = chat(str(run_dir), "--json", "--corpus", str(hidden), stdin=prompts[0] + "\n")
        assert res.returncode == 0 and not res.stderr, res.stderr
        assert json.loads(res.stdout)["source"] == "retrieved"
    finally:
        hidden.rename(corpus)
