"""Retrieval by meaning as well as spelling: normalised words blended with character n-grams, and a chat
run's retriever answering from every pair of its corpus while a judge of held-out pairs can exclude them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rnnchat.chat.config import Seq2SeqConfig
from rnnchat.chat.data import split_of
from rnnchat.chat.match import words
from rnnchat.chat.pairs import Pair
from rnnchat.chat.retrieve import Retriever
from rnnchat.config import TrainConfig
from rnnchat.runs.meta import read_meta
from rnnchat.runs.opened import training_corpus
from rnnchat.runs.retrieval import open_retriever
from rnnchat.train.loop import Trainer

ROWS = [("What is your number?", "Forty-two."), ("What is your age?", "Younger than you."),
        ("Where do you live?", "In a server room."), ("Tell me a joke.", "Two bytes walk into a bar."),
        ("Do you like music?", "I like jazz."), ("What is your location?", "Everywhere."),
        ("What is your favorite book?", "I can't read."), ("What is your hobby?", "Counting.")]


def pairs_of(rows) -> list[Pair]:
    return [Pair((), p, r, i) for i, (p, r) in enumerate(rows)]


# Each question below is spelled most like a prompt that means something else, and means what another says.
NEIGHBOURS = [("What is your favorite color?", "Blue."), ("What's your favourite flower?", "Roses."),
              ("Do you not like it?", "I do like it."), ("Don't you like me?", "I like everyone."),
              ("I am travelling to the theatre tonight", "Enjoy the show."),
              ("I am traveling to the station tonight", "Safe trip."), *ROWS]


@pytest.mark.parametrize("question, answer", [("What's your favourite colour?", "Blue."),
                                              ("Don't you like it?", "I do like it.")])
def test_the_words_a_prompt_means_beat_a_spelling_neighbour(question, answer):
    # Character n-grams alone pick the prompt spelled most like the question ...
    assert Retriever(pairs_of(NEIGHBOURS), word_share=0.0).candidates(question, 1) != [answer]
    # ... the default also compares normalised words: contractions opened, British spellings as American.
    assert Retriever(pairs_of(NEIGHBOURS)).candidates(question, 1) == [answer]


def test_typos_still_find_their_prompt():
    retriever = Retriever(pairs_of(ROWS))
    for typed, reply in [("wat is yur numbr", "Forty-two."), ("tel me a jok", "Two bytes walk into a bar."),
                         ("do u like musik", "I like jazz."), ("WHERE DO YOU LIVE", "In a server room.")]:
        assert retriever.candidates(typed, 1) == [reply], typed


def test_similarities_stay_between_zero_and_one():
    retriever = Retriever(pairs_of(ROWS))
    for prompt, _ in ROWS:
        sims = retriever.similarities(prompt)
        assert sims.max() == pytest.approx(1.0) and sims.min() >= 0.0
    assert not Retriever(pairs_of(ROWS)).similarities("12345").any()   # nothing shared: nothing found


def test_words_are_normalised_before_they_are_compared():
    same = [("What's your favourite colour?", "what is your favorite color"),
            ("I don\u2019t know", "i do not know"), ("You're right, I'll go", "you are right i will go"),
            ("Do you have any hobbies?", "do you have any hobby"), ("Robots!", "robot"),
            ("Can't stop", "can not stop"), ("We've organised the theatre", "we have organized the theater")]
    for a, b in same:
        assert words(a) == words(b), (a, b)
    assert words("Jordan's capital") == words("jordan capital")       # a possessive is its owner
    assert words("  ...  ") == [] and words("naïve café 42") == ["naïve", "café", "42"]
    assert words("Hello_world") == ["hello", "world"]
    assert words("this is glass, was it yours? yes") == ["this", "is", "glass", "was", "it", "your", "yes"]


def test_british_and_american_spellings_retrieve_each_other():
    retriever = Retriever(pairs_of([("What is your favorite color?", "Blue."), ("What is your favourite food?",
                                                                                 "Pizza."), *ROWS]))
    assert retriever.candidates("what's your favourite colour", 1) == ["Blue."]
    assert retriever.candidates("What is your favorite food", 1) == ["Pizza."]
    assert retriever.similarities("What is your favourite colour?").max() == pytest.approx(
        retriever.similarities("What is your favorite color?").max(), abs=0.15)


# ---- a chat run's own pairs: held-out ones answer in chat, and stay out where a benchmark asks ----------

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(the run directory, its corpus file, {prompt: reply}) of a chat run trained two steps on pairs whose
    replies no model could guess: only retrieval answers them."""
    root = tmp_path_factory.mktemp("heldout")
    facts = {f"what do you know about topic {i:03d}": f"fact number {i * 7 % 1000:03d} is all I know"
             for i in range(200)}
    corpus = root / "facts.tsv"
    corpus.write_text("prompt\treply\n" + "".join(f"{a}\t{b}\n" for a, b in facts.items()), encoding="utf-8")
    mp = pytest.MonkeyPatch()
    mp.setenv("RNNCHAT_CHECKPOINTS", str(root / "checkpoints"))
    mp.setenv("RNNCHAT_CACHE", str(root / "cache"))
    try:
        list(Trainer(str(corpus), Seq2SeqConfig(layers=1, hidden=16, embed=8, dropout=0.0, context_turns=0),
                     TrainConfig(task="chat", max_steps=2, eval_every=2, batch_size=8, sample_length=0,
                                 precision="fp32"), name="facts").run())
    finally:
        mp.undo()
    return root / "checkpoints" / "facts", corpus, facts


def test_chat_retrieves_held_out_pairs_and_a_judge_can_leave_them_out(run):
    run_dir, _, facts = run
    meta = read_meta(run_dir)
    report, train, held = split_of(training_corpus(meta), meta.model, meta.train)
    assert train and held
    everything = open_retriever(meta, "facts")
    judge = open_retriever(meta, "facts", held_out=False)
    assert everything.pairs == list(report.pairs) and judge.pairs == train
    assert not set(held) & set(judge.pairs)
    for pair in held[:5]:
        assert everything.candidates(pair.prompt, 1) == [pair.reply]
        assert judge.candidates(pair.prompt, 1) != [pair.reply]         # its own answer is not there to find


def test_the_chat_command_answers_a_held_out_prompt_from_the_corpus(run):
    run_dir, _, facts = run
    meta = read_meta(run_dir)
    held = split_of(training_corpus(meta), meta.model, meta.train)[2]
    res = subprocess.run([sys.executable, "-m", "rnnchat", "chat", str(run_dir), "--json"],
                         input=held[0].prompt + "\n", capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    record = json.loads(res.stdout)
    assert record["reply"] == facts[held[0].prompt] and record["source"] == "retrieved"
