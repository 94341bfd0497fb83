"""Corpus preparation: wall time and peak memory of turning a large text file into training arrays, and of
the whole first ``rnnchat train`` on it.

    python benchmarks/corpus_prep.py [--quick] [--sizes 1,10,100] [--levels char,bpe] [--vocab-size 2000]
                                     [--charsets utf8,ascii] [--shapes file,folder,oneline]
                                     [--train-steps 30] [--no-start] [--before DIR] [--json] [--markdown]

What a user pays for ``rnnchat train big.txt`` before the first step: ``load_corpus`` (reading and
decoding the file) and ``rnnchat.lm.data.prepare`` on an empty cache (split, tokenizer training, encoding
both splits into the on-disk arrays). Each measurement is a fresh interpreter with ``RNNCHAT_CACHE``
pointing at a new empty folder.

Peak memory is the child's ``ru_maxrss`` minus that of a baseline child that only imports rnnchat and
torch, and is also given as a ratio to the file size. Targets: a 100 MB corpus prepared for
char training in <= 15 s with peak memory <= 2x the file; bpe training stays under a minute.

The whole first start (the ``start`` child, on by default; ``--no-start`` skips it) is what a user waits
for and what memory must hold: ``rnnchat train FILE --max-steps 1 --eval-every 1 --eval-chars 2000`` run
through the real command line on an empty cache (reading, the content hash, the split, the tokens, the copy
index of the training text, one step, an evaluation, a sample measured against the index, the
checkpoint). It reports its wall time, its peak over the baseline child, and each stage's own peak
(``VmHWM`` reset between stages through ``/proc/self/clear_refs``). A start on a 0.1 MB slice of the same
text gives the fixed cost of a start (the model, one training step's activations), which no corpus adds.
Targets: the whole start on 100 MB <= 15 s, its peak over the baseline <= 3x the file at 100 MB and 1 GB.
``--before DIR`` measures the same rows a second time with the rnnchat package of DIR (a worktree of an
older commit: ``git worktree add /tmp/old HEAD``), so before and after come from one run.

With ``--train-steps N`` a third child trains the default model for N steps on the prepared cache and
reports its resident memory while training (``VmRSS`` at the Step events, minus the baseline; the
memmapped token files are counted separately as "file" pages), to show whether memory during training
depends on corpus size.

The corpora are built in a temporary folder by repeating the built-in Shakespeare text (38 plays,
4.8 M characters) with small per-copy changes: copy k starts with a "COPY k:" line, has the plays in an
order rotated by k and its vowels permuted (the k-th permutation of aeiou; copy 0 is the original), so
that, as in a real corpus, the number of distinct words grows with its size (a subword tokenizer trained
on 20 identical copies would see the same few words and train unrealistically fast). The file is cut at a
line end just under the size asked for (1 MB = 10^6 bytes).
``--shapes`` lays the same text out as one file (``file``), as a folder of 10,000 files cut at line ends
(``folder``: the sentencepiece sample must stay bounded however many documents there are), or as one
file with a single line, every newline written as a space (``oneline``: encoding must stay in bounded
pieces without newlines to cut at).
Shakespeare as rnnchat renders it has one character outside Latin-1 (the em dash), so Python holds the
decoded text at 2 bytes per character: the text alone is then 2x the file. ``--charsets ascii`` writes the
same corpus with "--" for the em dash (1 byte per character in memory), the common case for English text.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import (  # noqa: F401
    answer,
    header,
    markdown_table,
    peak_rss_bytes,
    proc_status_kb,
    progress,
    run_side,
    text_table,
    today,
)

MB = 1_000_000


# ------------------------------------------------------------------------------------------- children

def child_baseline() -> dict:
    import torch  # noqa: F401

    import rnnchat.lm.data  # noqa: F401
    import rnnchat.text.corpus  # noqa: F401
    import rnnchat.text.tokenizers  # noqa: F401

    return {"peak_bytes": peak_rss_bytes()}


def _held_bytes(doc) -> int:
    """What a document holds: its UTF-8 bytes (documents read from files) or its str (older versions)."""
    held = getattr(doc, "_utf8", None)
    return sys.getsizeof(held if held is not None else doc.text)


def child_prep(path: str, level: str, vocab_size: int) -> dict:
    import torch  # noqa: F401

    import rnnchat.lm.data as data
    from rnnchat.text.load import load_corpus

    timings = {"tokenizer_s": 0.0}
    real_train = data.train_tokenizer

    def timed_train(*a, **kw):           # time the tokenizer training inside prepare, nothing else changes
        t = time.perf_counter()
        try:
            return real_train(*a, **kw)
        finally:
            timings["tokenizer_s"] += time.perf_counter() - t

    data.train_tokenizer = timed_train
    t0 = time.perf_counter()
    corpus = load_corpus(path)
    t1 = time.perf_counter()
    ds = data.prepare(corpus, level, vocab_size)
    t2 = time.perf_counter()
    assert not ds.cached, "the cache was not empty"
    return {
        "seconds": t2 - t0, "load_s": t1 - t0, "prepare_s": t2 - t1, **timings,
        "peak_bytes": peak_rss_bytes(), "chars": corpus.chars,
        "text_bytes_in_memory": sum(_held_bytes(d) for d in corpus.documents),
        "train_tokens": len(ds.train), "val_tokens": len(ds.val), "vocab": ds.tokenizer.vocab_size,
        "cache_bytes": sum(p.stat().st_size for p in ds.path.iterdir()),
    }


class _Stages:
    """Wall time and peak resident memory of each stage of a process: ``VmHWM`` is read and reset
    (``/proc/self/clear_refs``) as each stage ends, so every stage shows its own peak."""

    def __init__(self, first: str):
        self.rows: dict[str, list[float]] = {}
        self.peak = 0
        self.name, self.t = first, time.perf_counter()

    def switch(self, name: str) -> None:
        hwm, now = proc_status_kb().get("VmHWM", 0) * 1024, time.perf_counter()
        seconds, peak = self.rows.get(self.name, [0.0, 0])
        self.rows[self.name] = [seconds + now - self.t, max(peak, hwm)]
        self.peak = max(self.peak, hwm)
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
                f.write("5")
        except OSError:
            pass
        self.name, self.t = name, now

    def wrap(self, module, attr: str, name: str) -> None:
        real = getattr(module, attr)

        def staged(*a, **kw):
            self.switch(name)
            try:
                return real(*a, **kw)
            finally:
                self.switch("the rest")
        setattr(module, attr, staged)


def child_start(path: str, level: str, vocab_size: int) -> dict:
    """The whole first ``rnnchat train`` through the command line, on an empty cache."""
    stages = _Stages("imports")
    t_imports = time.perf_counter()
    import rnnchat
    import rnnchat.lm.task as task
    import rnnchat.train.setup as setup
    from rnnchat.cli import main

    stages.wrap(setup, "load_corpus", "read the corpus")
    stages.wrap(task, "prepare", "hash, split, tokens")
    stages.wrap(task, "eval_span", "evaluation span")
    stages.wrap(task, "training_index", "copy index")
    stages.switch("the rest")
    t0 = time.perf_counter()
    code = main(["train", path, "--level", level, "--vocab-size", str(vocab_size), "--max-steps", "1",
                 "--eval-every", "1", "--eval-chars", "2000", "--name", "bench-start", "--json"])
    seconds, imports_s = time.perf_counter() - t_imports, t0 - t_imports
    stages.switch("done")
    if code != 0:
        raise SystemExit(f"rnnchat train exited with {code}")
    peak = stages.peak if stages.peak else peak_rss_bytes()
    return {"seconds": seconds, "imports_s": imports_s, "peak_bytes": peak, "code": rnnchat.__file__,
            "stages": {k: {"seconds": v[0], "peak_bytes": v[1]} for k, v in stages.rows.items()}}


def child_train(path: str, level: str, vocab_size: int, steps: int) -> dict:
    from rnnchat import events as ev
    from rnnchat.config import TrainConfig
    from rnnchat.lm.config import ModelConfig
    from rnnchat.train.loop import Trainer

    trainer = Trainer(path, ModelConfig(), TrainConfig(level=level, vocab_size=vocab_size, max_steps=steps,
                                                       eval_every=10**9, sample_length=0, log_every=5,
                                                       eval_chars=10_000))
    rss, anon, file_pages, cached = 0, 0, 0, None
    for e in trainer.run():
        if isinstance(e, ev.Started):   # the Dataset lives on the trainer or, since the task split, on its task
            data = getattr(trainer, "data", None) or getattr(getattr(trainer, "task", None), "data", None)
            cached = getattr(data, "cached", None)
        if isinstance(e, ev.Step):
            s = proc_status_kb()
            if s.get("VmRSS", 0) * 1024 > rss:
                rss, anon, file_pages = s["VmRSS"] * 1024, s.get("RssAnon", 0) * 1024, s.get("RssFile", 0) * 1024
    return {"train_rss_bytes": rss, "train_anon_bytes": anon, "train_file_bytes": file_pages,
            "cache_hit": cached, "peak_bytes": peak_rss_bytes()}


# -------------------------------------------------------------------------------------------- corpora

def build_corpus(path: Path, size_mb: float, charset: str) -> int:
    """Write the repeated-Shakespeare corpus: size_mb * 10^6 bytes, cut at the last line end before that."""
    from rnnchat.text.load import load_corpus

    docs = [d.text for d in load_corpus("shakespeare").documents]
    if charset == "ascii":
        docs = [t.replace("\u2014", "--") for t in docs]
    vowels = list(itertools.permutations("aeiou"))      # vowels[0] is the identity: copy 0 is unchanged
    target = int(size_mb * MB)
    written, k = 0, 0
    with open(path, "wb") as f:
        while written < target:
            order = docs[k % len(docs):] + docs[:k % len(docs)]
            perm = "".join(vowels[k % len(vowels)])
            swap = str.maketrans("aeiou" + "AEIOU", perm + perm.upper())
            data = (f"COPY {k}:\n" + "".join(order).translate(swap)).encode("utf-8")
            if len(data) > target - written:
                cut = data.rfind(b"\n", 0, target - written)
                data = data[:cut + 1]
                target = written + len(data)
            f.write(data)
            written += len(data)
            k += 1
    return path.stat().st_size


FOLDER_FILES = 10_000


def build_shape(path: Path, size_mb: float, charset: str, shape: str) -> int:
    """The corpus as one file, a folder of FOLDER_FILES files, or one line; returns its size in bytes."""
    if shape == "file":
        return build_corpus(path, size_mb, charset)
    flat = path.with_suffix(".flat")
    build_corpus(flat, size_mb, charset)
    data = flat.read_bytes()
    flat.unlink()
    if shape == "oneline":
        path.write_bytes(data.replace(b"\n", b" "))
        return path.stat().st_size
    path.mkdir()
    step, start = len(data) // FOLDER_FILES, 0
    for i in range(FOLDER_FILES):
        end = len(data) if i == FOLDER_FILES - 1 else data.find(b"\n", start + step) + 1 or len(data)
        (path / f"part{i:05d}.txt").write_bytes(data[start:end])
        start = end
    return len(data)


# ----------------------------------------------------------------------------------------------- main

def _side(script: Path, child: list[str], code: str | None, env: dict | None = None) -> dict:
    return run_side(script, [*child, *(["--code", code] if code else [])], env=env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 MB only, char and bpe, utf8 (seconds)")
    ap.add_argument("--sizes", default="1,10,100", help="corpus sizes in MB (10^6 bytes), comma-separated")
    ap.add_argument("--levels", default="char,bpe")
    ap.add_argument("--charsets", default="utf8,ascii",
                    help="utf8: Shakespeare as rendered (em dashes); ascii: em dash written as --")
    ap.add_argument("--shapes", default="file", help="file, folder (10,000 files) or oneline, comma-separated")
    ap.add_argument("--vocab-size", type=int, default=2000)
    ap.add_argument("--train-steps", type=int, default=30,
                    help="steps of the memory-while-training child (0: skip it)")
    ap.add_argument("--no-start", action="store_true", help="skip the whole-first-start child")
    ap.add_argument("--before", metavar="DIR",
                    help="also measure with the rnnchat package of DIR (a worktree of an older commit)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--markdown", action="store_true", help="also print a table for benchmarks/RESULTS.md")
    ap.add_argument("--child", choices=("baseline", "prep", "start", "train"), help=argparse.SUPPRESS)
    ap.add_argument("--code", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    ap.add_argument("--level", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        if args.code:              # the package under test comes from this checkout, ahead of the installed one
            sys.path.insert(0, str(Path(args.code).resolve()))
        if args.child == "baseline":
            answer(child_baseline())
        elif args.child == "prep":
            answer(child_prep(args.file, args.level, args.vocab_size))
        elif args.child == "start":
            answer(child_start(args.file, args.level, args.vocab_size))
        else:
            answer(child_train(args.file, args.level, args.vocab_size, args.train_steps))
        return

    sizes = [1.0] if args.quick else [float(s) for s in args.sizes.split(",")]
    levels = args.levels.split(",")
    charsets = ["utf8"] if args.quick else args.charsets.split(",")
    train_steps = min(args.train_steps, 10) if args.quick else args.train_steps
    machine = header(f"corpus preparation: load_corpus + prepare on an empty cache; sizes {sizes} MB, "
                     f"levels {levels}, charsets {charsets}, bpe vocab {args.vocab_size}"
                     + ("" if args.no_start else "; and the whole first start"))
    script = Path(__file__).resolve()
    work = Path(tempfile.mkdtemp(prefix="rnnchat-corpus-prep-"))
    sides = [("after", None)] + ([("before", str(Path(args.before).resolve()))] if args.before else [])
    rows, bases, fixed = [], {}, {}
    try:
        for side, code in sides:
            bases[side] = min(_side(script, ["--child", "baseline"], code)["peak_bytes"] for _ in range(2))
            print(f"{side}: baseline child (imports rnnchat and torch): peak {bases[side] / MB:.0f} MB")
        for charset, shape in itertools.product(charsets, args.shapes.split(",")):
            for size in sizes:
                corpus = work / f"shakespeare-{size:g}MB-{charset}-{shape}" if shape == "folder" else \
                    work / f"shakespeare-{size:g}MB-{charset}-{shape}.txt"
                file_bytes = build_shape(corpus, size, charset, shape)
                if not args.no_start and not fixed:      # the fixed cost of a start: a 0.1 MB slice
                    tiny = work / "tiny.txt"
                    build_shape(tiny, 0.1, charset, "file")
                    for side, code in sides:
                        env = {"RNNCHAT_CACHE": str(work / f"cache-tiny-{side}"),
                               "RNNCHAT_CHECKPOINTS": str(work / f"checkpoints-{side}")}
                        t = _side(script, ["--child", "start", "--file", str(tiny), "--level", "char"], code, env)
                        fixed[side] = t["peak_bytes"] - bases[side]
                        print(f"{side}: the first start on 0.1 MB (the fixed cost of a start): {t['seconds']:.1f} s, "
                              f"peak {fixed[side] / MB:.0f} MB over the baseline")
                        shutil.rmtree(work / f"checkpoints-{side}", ignore_errors=True)
                for level, (side, code) in itertools.product(levels, sides):
                    base = bases[side]
                    cache = work / f"cache-{size:g}-{charset}-{shape}-{level}-{side}"
                    env = {"RNNCHAT_CACHE": str(cache), "RNNCHAT_CHECKPOINTS": str(work / f"checkpoints-{side}")}
                    common = ["--file", str(corpus), "--level", level, "--vocab-size", str(args.vocab_size)]
                    progress(f"  {size:g} MB {charset} {shape} {level} {side} ...")
                    r = _side(script, ["--child", "prep", *common], code, env)
                    r.update(side=side, size_mb=size, charset=charset, shape=shape, level=level,
                             file_bytes=file_bytes, peak_over_base_bytes=r["peak_bytes"] - base)
                    r["peak_ratio"] = r["peak_over_base_bytes"] / file_bytes
                    if train_steps:
                        t = _side(script, ["--child", "train", *common, "--train-steps", str(train_steps)], code, env)
                        r.update(train_rss_over_base_bytes=t["train_rss_bytes"] - base,
                                 train_anon_bytes=t["train_anon_bytes"], train_file_bytes=t["train_file_bytes"],
                                 train_cache_hit=t["cache_hit"])
                    shutil.rmtree(cache, ignore_errors=True)
                    if not args.no_start:
                        t = _side(script, ["--child", "start", *common], code, env)
                        r["start"] = {**t, "peak_over_base_bytes": t["peak_bytes"] - base,
                                      "peak_ratio": (t["peak_bytes"] - base) / file_bytes}
                        shutil.rmtree(cache, ignore_errors=True)
                    shutil.rmtree(work / f"checkpoints-{side}", ignore_errors=True)
                    rows.append(r)
                shutil.rmtree(corpus) if corpus.is_dir() else corpus.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    result = {"date": today(), "machine": machine, "baseline_peak_bytes": bases, "start_fixed_bytes": fixed,
              "vocab_size": args.vocab_size, "train_steps": train_steps, "rows": rows}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    _print_tables(rows, train_steps, args.markdown, not args.no_start, bool(args.before))


def _print_tables(rows: list[dict], train_steps: int, markdown: bool, start: bool, sides: bool) -> None:
    what = (lambda r: f"{r['size_mb']:g} MB {r['charset']} {r['shape']}" + (f" ({r['side']})" if sides else ""))
    headers = ["corpus", "level", "seconds", "load s", "tokenizer s", "peak MB", "peak / file", "text in memory MB"]
    if train_steps:
        headers += ["while training MB"]
    table = []
    for r in rows:
        row = [what(r), r["level"], f"{r['seconds']:.1f}", f"{r['load_s']:.1f}",
               f"{r['tokenizer_s']:.1f}" if r["level"] != "char" else "-",
               f"{r['peak_over_base_bytes'] / MB:.0f}", f"{r['peak_ratio']:.2f}x",
               f"{r['text_bytes_in_memory'] / MB:.0f}"]
        if train_steps:
            row.append(f"{r['train_rss_over_base_bytes'] / MB:.0f}")
        table.append(row)
    print("\npreparation alone (load_corpus + prepare):")
    print(text_table(headers, table))
    print("\npeak MB: the child's peak resident memory minus the baseline child's; peak / file: that over the "
          "file size.")
    if train_steps:
        print(f"while training: resident memory (VmRSS) during {train_steps} training steps of the default model "
              "on the prepared cache,\nminus the baseline; --json splits it into heap and file pages (the "
              "memmapped tokens and libraries).")
    tables = [(headers, table)]
    if start:
        names = list(dict.fromkeys(k for r in rows for k in r["start"]["stages"] if k not in ("imports", "done")))
        sheaders = ["corpus", "level", "seconds", "peak MB", "peak / file"] + [f"{k} MB" for k in names]
        stable = []
        for r in rows:
            st = r["start"]
            base = st["peak_bytes"] - st["peak_over_base_bytes"]
            stage = [f"{(st['stages'][k]['peak_bytes'] - base) / MB:.0f}" if k in st["stages"] else "-"
                     for k in names]
            stable.append([what(r), r["level"], f"{st['seconds']:.1f}", f"{st['peak_over_base_bytes'] / MB:.0f}",
                           f"{st['peak_ratio']:.2f}x", *stage])
        print("\nthe whole first start (rnnchat train FILE --max-steps 1 --eval-every 1 --eval-chars 2000, "
              "empty cache; seconds include importing):")
        print(text_table(sheaders, stable))
        print("stage columns: each stage's own peak minus the baseline (the corpus, once read, is held by every "
              "later stage until the step).\ntargets: 100 MB char start <= 15 s; peak <= 3x the file at 100 MB "
              "and 1 GB.")
        tables.append((sheaders, stable))
    if markdown:
        for h, t in tables:
            print()
            print(markdown_table(h, t))


if __name__ == "__main__":
    main()
