"""``rnnchat classify RUN``: the label of each text and every label's probability; and the classifier's side
of ``rnnchat eval`` (its figures on a labelled file) and eval's ranking of language-model runs on one text."""

from __future__ import annotations

import json
import os
import sys
import time

from rnnchat.cli.exits import EXIT_USAGE


def cmd_classify(args) -> int:
    from rnnchat.classify.predict import probabilities
    from rnnchat.cli.console import open_run
    from rnnchat.safetext import neutralise

    texts = _texts(args)
    if texts is None:
        return EXIT_USAGE
    run = open_run(args.run, args.checkpoint, "classify")
    start = time.perf_counter()
    predictions = probabilities(run.model, run.tokenizer, [t for _, t in texts])
    seconds = time.perf_counter() - start
    for (name, _), p in zip(texts, predictions):
        if args.json:
            print(json.dumps({"text": name, **p.to_dict()}, ensure_ascii=False))
            continue
        ranked = sorted(p.probabilities.items(), key=lambda kv: -kv[1])
        shown = "  ".join(f"{neutralise(label)} {prob:.1%}" for label, prob in ranked)
        print(f"{neutralise(name)}: {neutralise(p.label)}  ({shown})")
    if args.timing:
        sys.stderr.write(f"{len(texts)} text(s) in {seconds * 1000:.1f} ms after loading\n")
    return 0


def _texts(args) -> list[tuple[str, str]] | None:
    """(name, text) of every --text file and --prompt; None (said why) when there are none or one is empty."""
    from rnnchat.cli.console import err
    from rnnchat.text.labelled import decode_mixed

    texts: list[tuple[str, str]] = []
    for path in args.text or []:
        if path == "-":
            texts.append(("stdin", sys.stdin.read()))
            continue
        if not os.path.isfile(path):
            err(f"text file '{path}' not found")
            return None
        try:
            with open(path, "rb") as f:
                texts.append((path, decode_mixed(f.read())[0]))
        except OSError as exc:
            err(f"cannot read '{path}': {exc.strerror or exc}")
            return None
    if args.lines:   # every non-empty line of every file a text of its own
        texts = [(f"{name}:{i}", line) for name, text in texts
                 for i, line in enumerate(text.split("\n"), start=1) if line.strip()]
    texts += [(f"prompt {i}", p) for i, p in enumerate(args.prompt or [], start=1)]
    if not texts:
        err("give --text FILE or --prompt TEXT (each may be repeated): the text to classify")
        return None
    empty = [name for name, t in texts if not t.strip()]
    if empty:
        err(f"{empty[0]} is empty: an empty text has no label")
        return None
    return texts


def eval_classifier(args) -> int:
    """The run's figures on a labelled file (or its own held-out texts), beside the majority label."""
    import numpy as np

    from rnnchat.classify.data import TextArrays
    from rnnchat.classify.evaluate import figures, majority_baseline, score
    from rnnchat.cli.console import err, open_run
    from rnnchat.errors import CorpusError
    from rnnchat.safetext import neutralise
    from rnnchat.text.labelled import check
    from rnnchat.text.load import corpus_labelled, load_corpus

    if args.text is None:
        err("give --text LABELLED: a labelled file or folder to score the classifier on")
        return EXIT_USAGE
    run = open_run(args.run, args.checkpoint, "classify")
    labels = run.model.cfg.labels
    corpus = load_corpus(args.text)
    data = corpus_labelled(corpus)
    if data.problems or not data.texts or any(not t.text for t in data.texts):
        check(data, corpus.name)      # raises the line that says what is wrong (one text per label is enough here)
    unknown = sorted({t.label for t in data.texts} - set(labels))
    if unknown:
        raise CorpusError(f"label(s) the run was not trained on: {', '.join(neutralise(x) for x in unknown[:5])}; "
                          f"it knows {', '.join(neutralise(x) for x in labels)}")
    index = {name: i for i, name in enumerate(labels)}
    arrays = TextArrays(run.tokenizer, [t.text for t in data.texts], [index[t.label] for t in data.texts])
    probs, total = score(run.model, arrays, run.model.embed.weight.device)
    result = figures(arrays.labels, probs.argmax(-1), labels)
    result["loss"] = total / len(arrays)
    result["texts"] = len(arrays)
    result["majority_accuracy"] = majority_baseline(arrays.labels, arrays.labels, labels)["accuracy"]
    if args.json:
        print(json.dumps({"run": run.name, "checkpoint": run.which, "labels": list(labels), **result},
                         ensure_ascii=False))
        return 0
    print(neutralise(f"{run.name} ({run.which}) on {args.text}: accuracy {result['accuracy']:.1%}, macro-F1 "
                     f"{result['macro_f1']:.3f}, loss {result['loss']:.4f} nats/text over {len(arrays):,} texts "
                     f"(the commonest label alone: {result['majority_accuracy']:.1%})"))
    width = max(8, *(len(neutralise(x)) for x in labels))
    print(f"  {'label':<{width}}{'precision':>10}{'recall':>8}{'texts':>7}   predicted as: "
          + " ".join(neutralise(x)[:8].rjust(8) for x in labels))
    counts = np.bincount(arrays.labels, minlength=len(labels))
    for i, name in enumerate(labels):
        row = " ".join(f"{v:>8}" for v in result["confusion"][i])
        print(f"  {neutralise(name):<{width}}{result['precision'][name]:>10.3f}{result['recall'][name]:>8.3f}"
              f"{counts[i]:>7}   {' ' * 14}{row}")
    for note in data.notes:
        err(note)
    return 0


def rank_language_models(args) -> int:
    """Several language-model runs on one text, best (fewest bits per character) first, in one table."""
    from rnnchat.cli.console import err, open_run
    from rnnchat.lm.evaluate import score_texts
    from rnnchat.safetext import neutralise
    from rnnchat.text.load import load_corpus

    if args.text is None:
        err("give --text FILE: the text the runs are ranked on")
        return EXIT_USAGE
    runs = [open_run(r, args.checkpoint, "lm") for r in args.run]   # every run opened before any is scored
    corpus = load_corpus(args.text)
    rows = []
    for run in runs:
        s = score_texts(run.model, run.tokenizer, [d.text for d in corpus.documents],
                        seq_len=max(run.meta.train.seq_len, 64))
        rows.append({"run": run.name, "checkpoint": run.which, **s.to_dict()})
    rows.sort(key=lambda r: r["bits_per_char"])
    if args.json:
        print(json.dumps({"text": args.text, "ranking": rows}, ensure_ascii=False))
        return 0
    width = max(4, *(len(neutralise(r["run"])) for r in rows))
    print(neutralise(f"{len(rows)} runs on {args.text}, the text they resemble most first:"))
    print(f"  {'#':>2}  {'run':<{width}}{'bits/char':>11}{'nats/token':>12}{'unknown':>9}")
    for i, r in enumerate(rows, start=1):
        print(f"  {i:>2}  {neutralise(r['run']):<{width}}{r['bits_per_char']:>11.4f}{r['loss']:>12.4f}"
              f"{r.get('unknown', 0):>9,}")
    return 0
