"""The copy index on a large corpus: build time and peak memory, and the time to measure one sample.

    python benchmarks/novelty.py [--size 100] [--samples 20]

Builds the index (``rnnchat.text.novelty.training_index``) for the repeated-Shakespeare corpus of
``corpus_prep.py`` (``--size`` MB, ASCII) in a fresh interpreter, reports its wall time and peak memory as a
ratio to the corpus, then measures 2,000-character samples: copied from the corpus, random letters, and
half and half. Targets: 100 MB builds in <= 60 s with memory <= 6x the corpus; a sample
is answered in <= 50 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import answer, header, peak_rss_bytes, run_side  # also puts the checkout on sys.path

MB = 1_000_000


def child_build(path: str) -> dict:
    import pydivsufsort  # noqa: F401  (its import is part of the baseline, not of the index)

    from rnnchat.text.load import load_corpus
    from rnnchat.text.novelty import training_index

    base = peak_rss_bytes()
    corpus = load_corpus(path)
    t0 = time.perf_counter()
    index = training_index(corpus, 0.1)
    build = time.perf_counter() - t0
    peak = peak_rss_bytes()
    text = corpus.documents[0].text
    rng = random.Random(0)
    kinds = {"copied": lambda k: text[k * 9973:k * 9973 + 2000],
             "random": lambda k: "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ,.\n") for _ in range(2000)),
             "half and half": lambda k: text[k * 7919:k * 7919 + 1000]
             + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ,.\n") for _ in range(1000))}
    times = {}
    for name, make in kinds.items():
        spent = []
        for k in range(int(sys.argv[-1])):
            sample = make(k)
            t = time.perf_counter()
            index.measure(sample)
            spent.append(time.perf_counter() - t)
        times[name] = statistics.median(spent)
    return {"build_s": build, "peak_bytes": peak - base, "chars": corpus.chars, "query_s": times}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=float, default=100)
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args, _ = ap.parse_known_args()
    if args.child:
        answer(child_build(args.child))
        return
    from corpus_prep import build_corpus

    header(f"copy index: {args.size:g} MB corpus, {args.samples} samples of 2,000 characters per kind")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        size = build_corpus(corpus, args.size, "ascii")
        base = run_side(Path(__file__).resolve(), ["--child", str(corpus), str(args.samples)],
                        env={"RNNCHAT_CACHE": str(Path(tmp) / "cache")})
    print(f"build: {base['build_s']:.1f} s, peak {base['peak_bytes'] / MB:.0f} MB = "
          f"{base['peak_bytes'] / size:.1f}x the {size / MB:.0f} MB file (over the interpreter's own; the corpus "
          "text included)")
    for name, seconds in base["query_s"].items():
        print(f"measure a 2,000-char sample, {name}: {1000 * seconds:.1f} ms (median)")


if __name__ == "__main__":
    main()
