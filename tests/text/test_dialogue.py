"""Dialogue pairs from every source: TSV, JSONL, transcripts, the play layout and the built-ins."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from rnnchat.chat.pairs import Pair, extract_pairs, split_pairs
from rnnchat.errors import CorpusError
from rnnchat.text.chatterbot import dialogue_languages
from rnnchat.text.corpus import Corpus, Document
from rnnchat.text.dialogue import clean_turn
from rnnchat.text.load import load_corpus


def corpus_of(**files: str) -> Corpus:
    """A corpus of in-memory documents, named like files (the extension picks the reader)."""
    return Corpus("test", "/nowhere/test", tuple(Document(name.replace("_", "."), text)
                                                 for name, text in files.items()))


def turns(report) -> list[tuple[str, str]]:
    return [(p.prompt, p.reply) for p in report.pairs]


# ---------------------------------------------------------------------------------------------- TSV

def test_tsv_header_escapes_and_malformed_lines():
    text = ("prompt\treply\n"
            "Hello\tHi there\n"
            "a line with no tab\n"
            "\n"
            "Two\\nlines\tback\\\\slash and a\\ttab\n"
            "\treply without prompt\n"
            "prompt without reply\t  \n"
            "one\ttwo\tthree\n"
            "Bye\tSee you\n")
    r = extract_pairs(corpus_of(pairs_tsv=text))
    assert turns(r) == [("Hello", "Hi there"), ("Two\nlines", "back\\slash and a tab"), ("Bye", "See you")]
    assert (r.found, r.malformed, r.dropped_empty, r.dropped_long) == (3, 4, 0, 0)
    assert r.problems[0] == "pairs.tsv:3: no tab between prompt and reply"
    assert r.problems[1] == "pairs.tsv:6: empty prompt" and r.problems[2] == "pairs.tsv:7: empty reply"
    assert r.problems[3].startswith("pairs.tsv:8: 2 tabs")
    assert all(p.context == () for p in r.pairs)
    assert len({p.conversation for p in r.pairs}) == 3       # each line stands alone


def test_tsv_first_line_is_data_when_not_a_header():
    r = extract_pairs(corpus_of(a_tsv="Where is it?\tHere.\nThanks\tWelcome\n"))
    assert turns(r) == [("Where is it?", "Here."), ("Thanks", "Welcome")]


def test_empty_after_cleaning_and_too_long_are_dropped_and_counted():
    text = "ok\tfine\n\x01\x02\tcontrol characters only\nshort\t" + "x" * 40 + "\n"
    r = extract_pairs(corpus_of(d_tsv=text), max_turn_chars=30)
    assert turns(r) == [("ok", "fine")]
    assert (r.found, r.dropped_empty, r.dropped_long, r.malformed) == (3, 1, 1, 0)
    assert r.prompt_chars.count == 1 and r.reply_chars.max == 4
    assert any("1 too long" in line and "1 empty" in line for line in r.summary_lines())


def test_cleaning_keeps_newlines_and_case():
    assert clean_turn("  Hello\t\tTHERE \x00 you\r\n  next   line ") == "Hello THERE you\nnext line"


# -------------------------------------------------------------------------------------------- JSONL

def test_jsonl_shapes_and_bad_lines():
    lines = [
        json.dumps({"prompt": "Hi", "reply": "Hello"}),
        json.dumps({"input": "Question?", "output": "Answer."}),
        json.dumps({"context": ["First.", "Second."], "prompt": "Third?", "reply": "Fourth."}),
        json.dumps(["One", "Two", "Three"]),
        "",
        "{not json",
        "42",
        json.dumps({"question": "no known keys"}),
        json.dumps(["only one turn"]),
        json.dumps({"prompt": 7, "reply": True}),
    ]
    r = extract_pairs(corpus_of(chat_jsonl="\n".join(lines)), context_turns=2)
    assert turns(r) == [("Hi", "Hello"), ("Question?", "Answer."), ("Third?", "Fourth."),
                        ("One", "Two"), ("Two", "Three"), ("7", "true")]
    by_prompt = {p.prompt: p for p in r.pairs}
    assert by_prompt["Third?"].context == ("First.", "Second.")
    assert by_prompt["Two"].context == ("One",)
    assert by_prompt["One"].conversation == by_prompt["Two"].conversation
    assert r.malformed == 4
    assert r.problems[0].startswith("chat.jsonl:6: not valid JSON")
    assert r.problems[1] == "chat.jsonl:7: expected an object or an array of strings"
    assert r.found == 6                                        # context turns are not pairs themselves


# --------------------------------------------------------------------------------------- transcripts

def test_transcript_turns_continuations_merges_and_urls():
    text = ("Some intro text before anyone speaks.\n"
            "Alice: Hi Bob.\n"
            "Did you see the link?\n"
            "http://example.com/x\n"
            "Bob: Which one?\n"
            "Bob: The one at 12:30?\n"
            "Dr. O'Neil-Smith: Both of them.\n")
    r = extract_pairs(corpus_of(chat_txt=text))
    assert turns(r) == [("Hi Bob.\nDid you see the link?\nhttp://example.com/x", "Which one?\nThe one at 12:30?"),
                        ("Which one?\nThe one at 12:30?", "Both of them.")]
    assert r.malformed == 1 and r.problems == ("chat.txt:1: text before any speaker name ('Name: text')",)


def test_transcript_conversation_breaks():
    text = ("A: one\nB: two\n\n\n"           # two blank lines
            "A: three\nB: four\n# Heading\n"
            "A: five\nB: six\n---\n"
            "A: seven\nB: eight\nSCENE II. A room\n"
            "A: nine\nB: ten\n\nA: eleven\n")  # one blank line does not break
    r = extract_pairs(corpus_of(t_txt=text))
    assert turns(r) == [("one", "two"), ("three", "four"), ("five", "six"), ("seven", "eight"),
                        ("nine", "ten"), ("ten", "eleven")]
    assert [p.conversation for p in r.pairs] == [0, 1, 2, 3, 4, 4]


def test_play_layout_with_colons_in_the_verse():
    text = ("ALDO:\nI hold the moon: and thus I answer:\nBrina sees the sea.\n\n"
            "BRINA:\nWhat sees she:\nnothing.\n\n"
            "BRINA:\nAnd more.\n\n"
            "CORVIN:\nEnough.\n")
    r = extract_pairs(corpus_of(play_txt=text))
    aldo, brina = "I hold the moon: and thus I answer:\nBrina sees the sea.", "What sees she:\nnothing.\nAnd more."
    assert turns(r) == [(aldo, brina), (brina, "Enough.")]


def test_folder_mixes_formats_and_conversations_stay_distinct(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.tsv").write_text("Hi\tHello\n", encoding="utf-8")
    (folder / "b.jsonl").write_text(json.dumps(["x", "y"]) + "\n", encoding="utf-8")
    (folder / "c.txt").write_text("Ann: p\nBen: q\n", encoding="utf-8")
    r = extract_pairs(load_corpus(str(folder)))
    assert turns(r) == [("Hi", "Hello"), ("x", "y"), ("p", "q")]
    assert r.conversations == 3


def test_no_pairs_is_one_clear_error():
    with pytest.raises(CorpusError, match=r"no dialogue pairs.*\.tsv.*\.jsonl.*transcript"):
        extract_pairs(corpus_of(prose_txt="Just prose, no speakers at all.\n"))


# ------------------------------------------------------------------------------------------ context

def test_context_turns_and_char_bound():
    text = "A: one\nB: two two\nA: three three three\nB: four\n"
    c = corpus_of(t_txt=text)
    last = extract_pairs(c, context_turns=2).pairs[-1]
    assert (last.context, last.prompt, last.reply) == (("one", "two two"), "three three three", "four")
    assert extract_pairs(c, context_turns=0).pairs[-1].context == ()
    assert extract_pairs(c, context_turns=1).pairs[-1].context == ("two two",)
    # "one\ntwo two" is 11 characters: a bound of 10 keeps only the newest turn.
    assert extract_pairs(c, context_turns=5, max_context_chars=10).pairs[-1].context == ("two two",)
    assert extract_pairs(c, context_turns=5, max_context_chars=11).pairs[-1].context == ("one", "two two")


def test_a_long_context_turn_is_cut_to_its_end_on_a_word():
    long_turn = "alpha beta gamma delta epsilon zeta eta theta"
    r = extract_pairs(corpus_of(t_txt=f"A: {long_turn}\nB: short\nA: reply\n"), context_turns=3, max_context_chars=20)
    context = r.pairs[-1].context
    assert context == ("zeta eta theta",)     # the last 20 characters start mid-word: "silon zeta eta theta"


# ----------------------------------------------------------------------------------------- built-ins

def test_shakespeare_scenes():
    start = time.perf_counter()
    r = extract_pairs(load_corpus("shakespeare"))
    assert time.perf_counter() - start < 2.0
    assert len(r.pairs) > 10_000 and r.conversations > 500
    first = r.pairs[0]
    assert first.context == () and first.prompt and first.reply and "\n" in first.prompt   # verse keeps lines
    assert r.pairs[1].conversation == first.conversation
    with_context = extract_pairs(load_corpus("shakespeare"), context_turns=1)
    assert len(with_context.pairs) == len(r.pairs)
    assert with_context.pairs[0].context == ()                 # a scene's first pair has nothing before it
    assert sum(len(p.context) == 1 for p in with_context.pairs) > 10_000
    assert max(len(p.context[0]) for p in with_context.pairs if p.context) <= 300


def test_dialogues_english_and_spanish():
    r = extract_pairs(load_corpus("dialogues"))
    assert any(p.prompt == "Hello" and p.reply for p in r.pairs)
    assert r.found >= len(r.pairs) > 1_000
    doc = load_corpus("dialogues").documents[0].text
    assert doc.startswith("A: ") and "\nB: " in doc
    assert "english" in dialogue_languages() and "spanish" in dialogue_languages()
    es = extract_pairs(load_corpus("dialogues:spanish"))
    assert len(es.pairs) > 100 and es.pairs[0].prompt != r.pairs[0].prompt


def test_unknown_dialogue_language_lists_the_languages():
    with pytest.raises(CorpusError, match="klingon.*english.*spanish"):
        load_corpus("dialogues:klingon")


def test_yaml_file_with_bad_items(tmp_path):
    path = tmp_path / "mine.yml"
    path.write_text("conversations:\n- - yes\n  - '12:30'\n  - {a: b}\n  - after\n  - end\n- just a string\n",
                    encoding="utf-8")
    r = extract_pairs(load_corpus(str(path)))
    assert turns(r) == [("yes", "12:30"), ("after", "end")]      # scalars kept as written
    assert r.malformed == 2


# ------------------------------------------------------------------------------------------- splits

def _pairs(conversations: int, per: int) -> list[Pair]:
    return [Pair((), f"p{c}.{i}", f"r{c}.{i}", c) for c in range(conversations) for i in range(per)]


def test_split_whole_conversations_deterministic():
    pairs = _pairs(40, 5)
    train, val = split_pairs(pairs, 0.1, seed=3)
    assert (train, val) == split_pairs(pairs, 0.1, seed=3)
    assert split_pairs(pairs, 0.1, seed=4) != (train, val)
    assert len(train) + len(val) == 200 and 10 <= len(val) <= 40
    assert not {p.conversation for p in train} & {p.conversation for p in val}
    assert val == [p for p in pairs if p in val]                   # source order kept


@pytest.mark.parametrize("n", [2, 3, 7, 30])
def test_split_small_sets_are_never_empty(n):
    pairs = _pairs(1, n)                                           # one conversation: pairs are sampled
    train, val = split_pairs(pairs, 0.1)
    assert train and val and len(train) + len(val) == n
    assert split_pairs(pairs[:1]) == (pairs[:1], [])


def test_one_transcript_splits_by_block_with_a_gap(tmp_path):
    """Before: a transcript was split by pair, so a validation pair's prompt was a training pair's reply."""
    turns = "".join(f"{'AB'[i % 2]}: line number {i} of the talk\n" for i in range(60))
    (tmp_path / "talk.txt").write_text(turns, encoding="utf-8")
    report = extract_pairs(load_corpus(str(tmp_path / "talk.txt")), context_turns=2)
    train, val = split_pairs(report.pairs, 0.1)
    assert train and val
    assert val == list(report.pairs[-len(val):])                   # one contiguous block
    held = {t for p in val for t in (*p.context, p.prompt, p.reply)}
    seen = {t for p in train for t in (*p.context, p.prompt, p.reply)}
    assert not held & seen                                         # no turn on both sides
    assert len(train) + len(val) < len(report.pairs)               # the gap


def test_few_conversations_each_keep_a_tail_block():
    pairs = [Pair((), f"p{c}.{i}", f"r{c}.{i}", c, i) for c in range(3) for i in range(20)]
    train, val = split_pairs(pairs, 0.1)
    assert {p.conversation for p in val} == {0, 1, 2}
    for c in range(3):
        rows = [p.turn for p in val if p.conversation == c]
        assert rows == [18, 19]
        assert max(p.turn for p in train if p.conversation == c) == 16    # turn 17 -> 18 is the gap


# ---------------------------------------------------------------------------------------------- CLI

def test_corpus_show_prints_pair_counts(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("prompt\treply\nHello\tHi\nno tab\nHow are you?\tFine.\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "rnnchat", "corpus", "show", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pairs: 2 found, 2 kept" in done.stdout
    assert "malformed: 1" in done.stdout and "pairs.tsv:3: no tab" in done.stdout


def test_own_small_talk_is_part_of_the_english_dialogues_only():
    from rnnchat.text.chatterbot import SMALLTALK, conversations_by_topic, dialogue_files
    from rnnchat.text.dialogue import Conversations, read_yaml

    own = SMALLTALK / "english.yml"
    parsed = Conversations()
    convs = read_yaml(parsed, own.name, own.read_text(encoding="utf-8"))
    assert parsed.problems == [] and len(convs) >= 500 and all(len(c) >= 2 for c in convs)
    assert own in dialogue_files("english") and not any(p.name == own.name for p in dialogue_files("spanish"))
    english = load_corpus("dialogues")
    assert english.documents[-1].name == "smalltalk" and english.documents[-1].text.startswith("A: ")
    pairs = {(p.prompt, p.reply) for p in extract_pairs(english).pairs}
    assert (convs[0][0], convs[0][1]) in pairs
    assert "english" not in {topic for _, topic, _ in conversations_by_topic("english")}


def test_runs_from_before_the_small_talk_still_find_their_dialogues():
    import dataclasses

    from rnnchat.runs.meta import CorpusInfo
    from rnnchat.runs.opened import training_corpus
    from rnnchat.text.chatterbot import SMALLTALK_DOCUMENT

    now = load_corpus("dialogues")
    before = dataclasses.replace(now, documents=tuple(d for d in now.documents if d.name != SMALLTALK_DOCUMENT))
    assert len(before.documents) == len(now.documents) - 1 and before.content_hash() != now.content_hash()
    found = training_corpus(CorpusInfo("dialogues", "builtin:dialogues", before.content_hash(), before.chars))
    assert found.content_hash() == before.content_hash()
    old_pairs, new_pairs = extract_pairs(found).pairs, extract_pairs(now).pairs
    assert 1_000 < len(old_pairs) < len(new_pairs)           # the run's own pairs, not the small talk's
    assert training_corpus(CorpusInfo("dialogues", "builtin:dialogues", now.content_hash(), now.chars)) is not None
    with pytest.raises(CorpusError, match="not the text it trained on"):
        training_corpus(CorpusInfo("dialogues", "builtin:dialogues", "0" * 64, 1))
