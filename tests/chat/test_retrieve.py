"""Retrieval over training pairs (character n-gram TF-IDF) and the seq2seq reranking of candidate replies."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from rnnchat.chat.config import DecodeConfig, Seq2SeqConfig
from rnnchat.chat.data import encode_source
from rnnchat.chat.generate import reply_logprobs
from rnnchat.chat.pairs import Pair, extract_pairs, split_pairs
from rnnchat.chat.retrieve import Retriever, _top, normalise, retrieve_and_rerank, score_replies
from rnnchat.config import TrainConfig
from rnnchat.runs.opened import open_chat_model
from rnnchat.text.load import load_corpus
from rnnchat.train.loop import Trainer
from rnnchat.vocab import EOD

SMALL = [
    ("What is your favourite colour?", "Blue, like the sky."),
    ("Where do you live?", "In a server room."),
    ("Tell me a joke.", "Two bytes walk into a bar."),
    ("How old are you?", "Younger than the internet."),
    ("Do you like music?", "I like jazz."),
    ("What time is it?", "Time to train another model."),
    ("Привет, как дела?", "Хорошо, спасибо."),
    ("こんにちは、元気ですか", "元気です。"),
]


def pairs_of(rows) -> list[Pair]:
    return [Pair((), p, r, i) for i, (p, r) in enumerate(rows)]


@pytest.fixture(scope="module")
def dialogue_train() -> list[Pair]:
    report = extract_pairs(load_corpus("dialogues"), context_turns=1)
    return split_pairs(report.pairs, 0.1, 1337)[0]



def nearest(retriever: Retriever, prompt: str, k: int) -> list:
    """Up to k (similarity, pair), most similar first, by the ranking candidates() uses."""
    scores = retriever.similarities(prompt)
    return [(float(scores[r]), retriever.pairs[r]) for r in _top(scores, k)]


def test_exact_prompt_retrieves_its_own_reply(dialogue_train):
    retriever = Retriever(dialogue_train)
    by_prompt: dict[str, set[str]] = {}
    for p in dialogue_train:
        by_prompt.setdefault(normalise(p.prompt), set()).add(p.reply)     # "Yes" and "yes" are one prompt
    for pair in random.Random(0).sample(dialogue_train, 60):
        (sim, top), *_ = nearest(retriever, pair.prompt, 1)
        assert sim == pytest.approx(1.0) and normalise(top.prompt) == normalise(pair.prompt)
        # A prompt asked several times in the corpus brings every one of its replies first.
        assert pair.reply in retriever.candidates(pair.prompt, len(by_prompt[normalise(pair.prompt)]))


def test_paraphrases_with_typos_find_the_right_reply(dialogue_train):
    retriever = Retriever(pairs_of(SMALL))
    asked = {
        "whats yor favorite color": "Blue, like the sky.",
        "where d'you live now?": "In a server room.",
        "tell me a jokee": "Two bytes walk into a bar.",
        "HOW OLD R YOU": "Younger than the internet.",
        "do u like musik": "I like jazz.",
        "what's the time": "Time to train another model.",
        "привет как дела": "Хорошо, спасибо.",
        "元気ですか": "元気です。",
    }
    for prompt, reply in asked.items():
        assert retriever.candidates(prompt, 1) == [reply], prompt
    # Among two thousand real prompts as distractors, too.
    mixed = Retriever(dialogue_train + pairs_of(SMALL[:1]))
    assert nearest(mixed, "waht is your favourit colour", 1)[0][1].reply == "Blue, like the sky."


def test_results_are_ordered_distinct_and_bounded(dialogue_train):
    retriever = Retriever(dialogue_train)
    found = nearest(retriever, "How are you doing today?", 10)
    sims = [s for s, _ in found]
    assert len(found) == 10 and sims == sorted(sims, reverse=True) and all(0 < s <= 1 + 1e-9 for s in sims)
    replies = retriever.candidates("How are you doing today?", 10)
    assert len(replies) == 10 == len(set(replies))
    assert nearest(retriever, "How are you?", 0) == [] and retriever.candidates("How are you?", -3) == []


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t", "?", "a", "\x00", "\ud800", "🙂🙂🙂", "Ωμέγα",
                                    "x" * 100_000, "How are you? " * 5_000, "zzqqxxjj vvkkww"])
def test_odd_prompts_never_crash(dialogue_train, prompt):
    retriever = Retriever(dialogue_train)
    found = nearest(retriever, prompt, 5)
    assert len(found) <= 5 and all(s > 0 for s, _ in found)
    assert len(retriever.candidates(prompt, 5)) <= 5
    if not prompt.strip():
        assert found == []


def test_an_empty_or_odd_index_never_crashes():
    assert nearest(Retriever([]), "hello", 3) == [] and Retriever([]).candidates("hello") == []
    odd = Retriever(pairs_of([("?", "what?"), ("\ud800", "a surrogate"), ("a", "b")]))
    assert odd.candidates("?", 1) == ["what?"]
    assert nearest(odd, "", 3) == []


# ---- reranking with a real, tiny model ------------------------------------------------------------

ALPHABET = "abcdefgh"


@pytest.fixture(scope="module")
def copy_model(tmp_path_factory):
    """A tiny chat model trained for a few seconds on 'reply with the prompt', and its training words."""
    # One thread: a model this small gains nothing from two, and loses many times over on a busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("rerank")
    rng = random.Random(5)
    words = sorted({"".join(rng.choice(ALPHABET) for _ in range(rng.randint(3, 6))) for _ in range(500)})
    corpus = root / "copy.tsv"
    corpus.write_text("prompt\treply\n" + "".join(f"{w}\t{w}\n" for w in words), encoding="utf-8")
    model = Seq2SeqConfig(layers=1, hidden=64, embed=24, dropout=0.0, context_turns=0)
    cfg = TrainConfig(task="chat", max_steps=200, eval_every=200, batch_size=32, lr=1e-2,
                      warmup_steps=20, sample_length=0, eval_chars=500, precision="fp32", val_fraction=0.1)
    mp = pytest.MonkeyPatch()
    mp.setenv("RNNCHAT_CHECKPOINTS", str(root / "checkpoints"))
    mp.setenv("RNNCHAT_CACHE", str(root / "cache"))
    list(Trainer(str(corpus), model, cfg, name="copy").run())
    mp.undo()
    yield open_chat_model(root / "checkpoints" / "copy"), words
    torch.set_num_threads(threads)


def test_reranker_prefers_the_true_reply_over_a_random_one(copy_model):
    run, words = copy_model
    rng = random.Random(1)
    prompts = rng.sample(words, 40)
    wins = 0
    for prompt in prompts:
        other = rng.choice([w for w in words if w != prompt])
        source = encode_source(run.tokenizer, (), prompt)
        ranked = score_replies(run.model, run.tokenizer, source, [other, prompt], weight=0.5)
        wins += ranked[0].text == prompt
    assert wins >= 0.9 * len(prompts)


def test_scores_are_the_beam_searchs_length_normalised_anti_lm_scores(copy_model):
    run, words = copy_model
    source = encode_source(run.tokenizer, (), words[0])
    candidates = [words[0], words[1], words[2] + words[3]]
    ids = [list(run.tokenizer.encode(c)) for c in candidates]
    given = reply_logprobs(run.model, source, ids)
    prior = reply_logprobs(run.model, np.array([EOD]), ids)
    want = {c: (g - 0.5 * p) / (len(i) + 1) for c, i, g, p in zip(candidates, ids, given, prior)}
    ranked = score_replies(run.model, run.tokenizer, source, candidates, weight=0.5, length_penalty=1.0)
    assert [s.text for s in ranked] == sorted(want, key=want.get, reverse=True)
    assert all(s.score == pytest.approx(want[s.text], abs=1e-4) for s in ranked)
    raw = score_replies(run.model, run.tokenizer, source, candidates, weight=0.0, length_penalty=0.0)
    assert {s.text: s.score for s in raw} == pytest.approx(dict(zip(candidates, given)), abs=1e-4)
    # Empty and repeated candidates are dropped; nothing to score is an empty answer.
    assert [s.text for s in score_replies(run.model, run.tokenizer, source, ["", " ", words[1], words[1]])] \
        == [words[1]]
    assert score_replies(run.model, run.tokenizer, source, []) == []


def test_similarity_leads_and_the_model_settles_near_ties(copy_model):
    run, words = copy_model
    prompt, liked, other = words[7], words[7], words[3]
    source = encode_source(run.tokenizer, (), prompt)
    model_order = [s.text for s in score_replies(run.model, run.tokenizer, source, [other, liked], weight=0.5)]
    assert model_order[0] == liked                          # the copy model wants the prompt echoed
    # The exact prompt answered with `other`, a far-off prompt answered with what the model likes:
    # the nearest prompt's reply wins over the model's preference ...
    far = Retriever(pairs_of([(prompt, other), ("zzzz qqqq " + prompt[:2], liked)]))
    cfg = DecodeConfig(beam=1, rerank=0.5, max_length=12)
    assert retrieve_and_rerank(run.model, run.tokenizer, far, prompt, k=4, cfg=cfg)[0].text == other
    # ... and between two replies to the same prompt (equal similarity) the model's score decides.
    tie = Retriever(pairs_of([(prompt, other), (prompt, liked)]))
    assert retrieve_and_rerank(run.model, run.tokenizer, tie, prompt, k=4, cfg=cfg)[0].text == liked


def test_retrieve_and_rerank_offers_retrieved_and_beam_replies(copy_model):
    run, words = copy_model
    retriever = Retriever(pairs_of([(w, w) for w in words]))
    ranked = retrieve_and_rerank(run.model, run.tokenizer, retriever, words[7], k=4,
                                 cfg=DecodeConfig(beam=3, rerank=0.5, max_length=12))
    texts = [s.text for s in ranked]
    assert ranked[0].text == words[7] and len(texts) == len(set(texts)) >= 4
    assert [s.score for s in ranked] == sorted((s.score for s in ranked), reverse=True)
    assert retrieve_and_rerank(run.model, run.tokenizer, retriever, "", k=4,
                               cfg=DecodeConfig(beam=2, rerank=0.5, max_length=12)) is not None
