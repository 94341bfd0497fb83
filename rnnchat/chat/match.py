"""How alike two prompts are, for retrieval: TF-IDF indexes over words and over character n-grams.

Words carry meaning ("what is your name" is about a name, not a number), so they are compared after
normalisation: case, curly apostrophes, contractions ("what's" is "what is"), British spellings as American
ones ("favourite" is "favorite") and a light plural rule; IDF already weighs a word shared by many prompts
("what", "is", "your") below the one that differs (an extra weight on English function words was measured
and made replies no better: benchmarks/journal/2026-12-04-chat-replies.md). Character n-grams (2 to 4
characters of the lowercased text with a space at each end, so word starts and ends count) survive typos,
inflections and scripts without spaces, which words miss. ``TfIdf`` is the index both use: sublinear term
frequency, smoothed IDF, L2-normalised, cosine similarity; terms are 64-bit hashes, the index a term-sorted
posting list, and a query one ``bincount`` over the postings of its terms.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from typing import Sequence

import numpy as np

NGRAMS = (2, 3, 4)           # character n-gram lengths; 1-grams only add noise shared by every prompt
_MUL = np.uint64(0x9E3779B97F4A7C15)   # odd multiplier of the rolling hash (wraps mod 2**64)
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})

_IRREGULAR = {"won't": "will not", "can't": "can not", "cannot": "can not", "shan't": "shall not",
              "ain't": "is not", "let's": "let us", "y'all": "you all"}
_SUFFIXES = (("n't", " not"), ("'re", " are"), ("'m", " am"), ("'ve", " have"), ("'ll", " will"), ("'d", " would"))
_IS_AFTER = frozenset("it that what where who how there here he she this".split())   # "what's" is "what is"

# British spellings as American ones, by word start: "favour" covers favourite, favoured, favours.
_BRITISH = {"favour": "favor", "colour": "color", "flavour": "flavor", "honour": "honor", "humour": "humor",
            "labour": "labor", "neighbour": "neighbor", "behaviour": "behavior", "harbour": "harbor",
            "rumour": "rumor", "armour": "armor", "vapour": "vapor", "endeavour": "endeavor", "glamour": "glamor",
            "centre": "center", "theatre": "theater", "metre": "meter", "litre": "liter", "fibre": "fiber",
            "organis": "organiz", "realis": "realiz", "recognis": "recogniz", "apologis": "apologiz",
            "criticis": "criticiz", "memoris": "memoriz", "analys": "analyz", "familiaris": "familiariz",
            "customis": "customiz", "optimis": "optimiz", "prioritis": "prioritiz", "summaris": "summariz",
            "travell": "travel", "cancell": "cancel", "modell": "model", "labell": "label", "jewell": "jewel",
            "catalogue": "catalog", "dialogue": "dialog", "programme": "program", "defence": "defense",
            "offence": "offense", "licence": "license", "grey": "gray", "aeroplane": "airplane",
            "pyjama": "pajama", "cheque": "check"}
_BRITISH_START = re.compile("^(" + "|".join(sorted(map(re.escape, _BRITISH), key=len, reverse=True)) + ")")


def normalise(text: str) -> str:
    """Lowercase, runs of whitespace as one space, a space at each end (so n-grams mark word edges)."""
    return f" {_SPACES.sub(' ', text).strip().lower()} "


@functools.lru_cache(maxsize=65536)
def canonical(word: str) -> tuple[str, ...]:
    """One lowercased word (apostrophes straight) as the words it means: contractions opened, British
    spellings as American, a plural as its singular ("hobbies" -> "hobby", "robots" -> "robot")."""
    if word in _IRREGULAR:
        return tuple(_IRREGULAR[word].split())
    for ending, full in _SUFFIXES:
        if word.endswith(ending) and len(word) > len(ending):
            return (*canonical(word[:-len(ending)]), full.strip())
    if word.endswith("'s"):                              # "what's" is "what is"; a possessive is its owner
        stem = word[:-2]
        return (*canonical(stem), "is") if stem in _IS_AFTER else canonical(stem)
    word = word.replace("'", "")
    word = _BRITISH_START.sub(lambda m: _BRITISH[m.group(1)], word)
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is", "ous")):
        word = word[:-1]
    return (word,)


def words(text: str) -> list[str]:
    """The normalised words of ``text`` (letters and digits; see ``canonical``), in order."""
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).lower()
    return [w for raw in _WORD.findall(text) for w in canonical(raw)]


@functools.lru_cache(maxsize=262144)
def _word_hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def word_keys(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(document index, word hash), both uint64, one row per normalised word of every text."""
    docs, keys = [], []
    for i, text in enumerate(texts):
        for w in words(text):
            docs.append(i)
            keys.append(_word_hash(w))
    return np.array(docs, dtype=np.uint64), np.array(keys, dtype=np.uint64)


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.uint64)


def _mix(h: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: every input bit reaches the high bits, which the index keeps."""
    with np.errstate(over="ignore"):
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return h ^ (h >> np.uint64(31))


def ngram_keys(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(document index, n-gram hash), both uint64, of every character n-gram of every normalised text."""
    texts = [normalise(t) for t in texts]
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    codes = _codepoints("".join(texts)) + np.uint64(1)   # + 1: a code point 0 would add nothing to a hash
    owner = np.repeat(np.arange(len(texts), dtype=np.uint64), lengths)
    docs, keys = [], []
    h = codes
    with np.errstate(over="ignore"):
        for n in range(2, max(NGRAMS) + 1):
            m = len(codes) - n + 1
            if m <= 0:
                break
            h = h[:m] * _MUL + codes[n - 1:]                     # rolling: the (n-1)-gram's hash, one more
            if n in NGRAMS:
                inside = owner[:m] == owner[n - 1:]              # n-grams never span two texts
                docs.append(owner[:m][inside])
                keys.append(_mix(h[inside]))
    if not docs:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    return np.concatenate(docs), np.concatenate(keys)


class TfIdf:
    """A TF-IDF index of ``n`` documents from (document, term hash) rows."""

    def __init__(self, n: int, docs: np.ndarray, keys: np.ndarray):
        self.n = n
        # One sort of 64-bit words gives the vocabulary and the term-major posting list at once: each
        # word is the term's hash with its low bits replaced by the document index (with 50,000 documents
        # 48 bits of hash are left: a clash between two of their terms has odds of about 1 in 200,000).
        self._shift = np.uint64(max(1, (n - 1).bit_length()))
        low = (np.uint64(1) << self._shift) - np.uint64(1)
        packed = np.sort((keys & ~low) | docs)
        new_entry = np.ones(len(packed), dtype=bool)
        new_entry[1:] = packed[1:] != packed[:-1]
        at = np.flatnonzero(new_entry)                      # one entry per (term, document)
        tf = np.diff(np.append(at, len(packed)))
        entries = packed[at]
        terms, doc = entries >> self._shift, (entries & low).astype(np.int64)
        new_term = np.ones(len(terms), dtype=bool)
        new_term[1:] = terms[1:] != terms[:-1]
        term = np.cumsum(new_term) - 1
        self.vocab = terms[new_term]                         # sorted hashes: a query looks them up
        df = np.bincount(term, minlength=len(self.vocab))
        self.idf = np.log((1.0 + n) / (1.0 + df)) + 1.0     # smoothed: a term in every document keeps weight 1
        weight = (1.0 + np.log(tf)) * self.idf[term]
        norm = np.sqrt(np.bincount(doc, weights=weight ** 2, minlength=n))
        self.post_doc = doc
        self.post_weight = weight / np.maximum(norm[doc], 1e-12)
        self.post_start = np.concatenate([[0], np.cumsum(df)])

    def cosine(self, keys: np.ndarray) -> np.ndarray:
        """Cosine similarity of one query (its term hashes, repeats counted) to every document."""
        scores = np.zeros(self.n)
        if not len(keys) or not len(self.vocab):
            return scores
        uniq, tf = np.unique(keys >> self._shift, return_counts=True)
        where = np.minimum(np.searchsorted(self.vocab, uniq), len(self.vocab) - 1)
        known = self.vocab[where] == uniq
        # Unknown terms still count in the query's norm (as rarest terms): a query mostly unlike every
        # document is scored low, not matched on its one familiar term.
        unknown_idf = np.log(1.0 + self.n) + 1.0
        qw = (1.0 + np.log(tf)) * np.where(known, self.idf[where], unknown_idf)
        qw /= max(np.sqrt(np.sum(qw ** 2)), 1e-12)
        t, w = where[known], qw[known]
        if not len(t):
            return scores
        starts, counts = self.post_start[t], self.post_start[t + 1] - self.post_start[t]
        # Indices of all postings of the query's terms, built without a Python loop.
        offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        idx = offsets + np.arange(int(counts.sum()))
        return np.bincount(self.post_doc[idx], weights=self.post_weight[idx] * np.repeat(w, counts),
                           minlength=self.n)
