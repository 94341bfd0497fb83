"""The one sanitiser: every class of character that could move, hide, reorder or style text is neutralised."""

import subprocess
import sys
import unicodedata

import pytest

from rnnchat.safetext import neutralise

CLASSES = {
    "C0 control": "\x1b[31m\x07\x00\r",
    "DEL": "\x7f",
    "C1 control (CSI)": "\x9b31m",
    "bidi embeddings and overrides": "\u202a\u202b\u202c\u202d\u202e",
    "bidi marks": "\u200e\u200f\u061c",
    "bidi isolates": "\u2066\u2067\u2068\u2069",
    "zero-width": "\u200b\u200c\u200d\u2060\ufeff",
    "line and paragraph separators": "\u2028\u2029",
}


@pytest.mark.parametrize("name", CLASSES)
def test_each_class_is_replaced_by_a_visible_stand_in(name):
    raw = f"a{CLASSES[name]}b"
    shown = neutralise(raw)
    assert shown.startswith("a") and shown.endswith("b") and len(shown) == len(raw)
    hidden = [ch for ch in CLASSES[name] if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")]
    assert hidden
    for ch in hidden:
        assert ch not in shown, (name, hex(ord(ch)))


def test_text_newlines_tabs_and_markup_are_kept_literally():
    text = "KING:\n\tthe [bold]crown[/] & 你好 🙂 é"
    assert neutralise(text) == text


def test_corpus_show_neutralises_names_and_text(tmp_path):
    name = "evil\u202egnp.txt\u200b"
    (tmp_path / name).write_text("A\u202eB\u200bC\x1b[2J\n" * 20, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "rnnchat", "corpus", "show", str(tmp_path / name)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for bad in ("\u202e", "\u200b", "\x1b"):
        assert bad not in proc.stdout
    assert "evil" in proc.stdout and "gnp.txt" in proc.stdout
