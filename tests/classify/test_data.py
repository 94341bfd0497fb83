"""Labelled corpora: every format, the refusals (one line each), mixed encodings and the split."""

from __future__ import annotations

import json

import pytest

from rnnchat.errors import CorpusError
from rnnchat.text.labelled import Labelled, check, split_labelled
from rnnchat.text.load import corpus_labelled, load_corpus


def read(path):
    data = corpus_labelled(load_corpus(str(path)))
    check(data, path.name)
    return data


def pairs(data):
    return sorted((t.text, t.label) for t in data.texts)


def test_tsv_with_header_in_any_column_order(tmp_path):
    p = tmp_path / "d.tsv"
    p.write_text("id\tlabel\ttext\n1\tpos\tgood film\n2\tneg\tbad film\n3\tpos\tfine\n4\tneg\tawful\n")
    assert pairs(read(p)) == [("awful", "neg"), ("bad film", "neg"), ("fine", "pos"), ("good film", "pos")]


def test_two_columns_without_header_take_the_label_from_the_column_with_fewer_values(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text('pos,"good, really"\nneg,bad\npos,fine\nneg,"awful ""film"""\n')
    assert pairs(read(p)) == [('awful "film"', "neg"), ("bad", "neg"), ("fine", "pos"), ("good, really", "pos")]


def test_jsonl_and_whole_number_labels(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(json.dumps({"text": t, "label": n}) for t, n in
                           [("one", 1), ("uno", 1), ("two", 2), ("dos", 2)]) + "\n")
    assert pairs(read(p)) == [("dos", "2"), ("one", "1"), ("two", "2"), ("uno", "1")]


def test_folder_of_folders_labels_by_subfolder(tmp_path):
    root = tmp_path / "reviews"
    for label, texts in {"good": ["fine film", "loved it"], "bad": ["dull", "awful"]}.items():
        (root / label / "deep").mkdir(parents=True)
        for i, t in enumerate(texts):
            (root / label / ("deep" if i else "") / f"{i}.txt").write_text(t)
    (root / "README").write_text("not a text")
    data = read(root)
    assert pairs(data) == [("awful", "bad"), ("dull", "bad"), ("fine film", "good"), ("loved it", "good")]
    assert any("README" in n for n in data.notes)


@pytest.mark.parametrize("content, name, says", [
    ("text,label\nhello,a\nthere,a\nlone,b\n", "d.csv", "fewer than 2 texts: 'b' (1)"),
    ("text,label\nhello,a\n,a\nx,b\ny,b\n", "d.csv", "1 empty text(s) (d.csv row 3)"),
    ("title,label\nhello,a\nthere,b\n", "d.csv", "has no text column"),
    ("text,label\n" + "".join(f"t{i},l{i}\nu{i},l{i}\n" for i in range(201)), "d.csv", "201 labels, more than 200"),
    ('{"text": "a"}\n{"text": "b", "label": "x"}\n', "d.jsonl", "line 1 needs an object with \"text\" and \"label\""),
    ("text,label\nhello,a\nthere,a\n", "d.csv", "only one label (a)"),
])
def test_refusals_are_one_line_each(tmp_path, content, name, says):
    p = tmp_path / name
    p.write_text(content)
    with pytest.raises(CorpusError) as info:
        read(p)
    assert says in str(info.value) and "\n" not in str(info.value)


def test_labels_are_shown_literally_through_the_sanitiser(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("text,label\nhello,\x1b[31mred\nthere,a\nthird,a\n")
    with pytest.raises(CorpusError) as info:
        read(p)
    assert "\x1b" not in str(info.value) and "red" in str(info.value)


def test_mixed_encodings_lose_nothing(tmp_path):
    p = tmp_path / "d.tsv"
    p.write_bytes("café au lait\tfr\n".encode() + "crème brûlée\tfr\n".encode("cp1252")
                  + b"tea\ten\ncoffee\ten\n")
    data = read(p)
    assert ("crème brûlée", "fr") in pairs(data) and ("café au lait", "fr") in pairs(data)
    assert any("Windows-1252" in n for n in data.notes)


def test_split_is_stratified_and_keeps_documents_and_repeats_on_one_side():
    texts = [Labelled(f"{label} text {i}", label, f"{label}-doc{i // 5}") for label, n in (("a", 100), ("b", 20))
             for i in range(n)]
    texts += [Labelled("a text 3", "a", "another-doc")]          # the same text in another document
    train, val = split_labelled(texts, 0.2, seed=1)
    assert sorted(train + val) == list(range(len(texts)))
    for label, n in (("a", 101), ("b", 20)):
        held = sum(1 for i in val if texts[i].label == label)
        assert 0.1 * n <= held <= 0.35 * n, (label, held)
    side = {}
    for i in train:
        side.setdefault(texts[i].group, set()).add("train")
        side.setdefault(texts[i].text, set()).add("train")
    for i in val:
        side.setdefault(texts[i].group, set()).add("val")
        side.setdefault(texts[i].text, set()).add("val")
    assert all(len(s) == 1 for s in side.values())
    assert split_labelled(texts, 0.2, seed=1) == (train, val)


def test_a_label_from_one_document_is_refused():
    texts = [Labelled(f"t{i}", "a", f"d{i}") for i in range(4)] + [Labelled(f"u{i}", "b", "one") for i in range(4)]
    with pytest.raises(CorpusError, match="labelled 'b' comes from one document"):
        split_labelled(texts, 0.2, seed=0)


def test_builtins_plays_by_kind_and_dialogues_by_topic():
    plays = corpus_labelled(load_corpus("plays-by-kind"))
    assert {t.label for t in plays.texts} == {"comedy", "history", "tragedy"}
    assert {t.group for t in plays.texts if t.label == "history"} >= {"henry-v", "richard-iii"}
    train, val = split_labelled(plays.texts, 0.1, 1337)
    assert not {plays.texts[i].group for i in train} & {plays.texts[i].group for i in val}   # whole plays
    topics = corpus_labelled(load_corpus("dialogues-by-topic"))
    check(topics, "dialogues-by-topic")
    assert {"greetings", "food", "science"} <= {t.label for t in topics.texts}
