"""``rnnchat corpus list`` and ``rnnchat corpus show NAME``: what can be trained on, and what is in it."""

from __future__ import annotations

import json


def cmd_corpus_list(args) -> int:
    from rich.table import Table
    from rich.text import Text

    from rnnchat.cli.console import console
    from rnnchat.formatting import human_size
    from rnnchat.safetext import neutralise
    from rnnchat.text.load import list_corpora

    entries = list_corpora()
    if args.json:
        print(json.dumps([e.__dict__ for e in entries]))
        return 0
    table = Table(box=None, header_style="bold")
    for col in ("name", "kind", "size", "path"):
        table.add_column(col, justify="right" if col == "size" else "left")
    for e in entries:  # names and paths are the user's file names: Text, so "[bold]" is shown, not parsed
        table.add_row(*(Text(neutralise(cell)) for cell in (e.name, e.kind, human_size(e.size), e.path or "")))
    console().print(table)
    return 0


def cmd_corpus_show(args) -> int:
    from rich.text import Text

    from rnnchat.chat.pairs import extract_pairs
    from rnnchat.cli.console import console
    from rnnchat.errors import CorpusError
    from rnnchat.safetext import neutralise
    from rnnchat.text.corpus import corpus_stats
    from rnnchat.text.load import load_corpus, looks_like_dialogue

    corpus = load_corpus(args.name)
    pair_lines, pair_data = [], {}
    if args.pairs or looks_like_dialogue(corpus):
        try:
            report = extract_pairs(corpus)
        except CorpusError as exc:
            if args.pairs:  # asked for: no pairs is the error; shown by default: a note under the stats
                raise
            pair_lines, pair_data = [f"none: {exc}"], {"pairs_error": str(exc)}
        else:
            pair_lines = report.summary_lines()
            pair_data = {"pairs": {k: v for k, v in report.__dict__.items() if k != "pairs"}
                         | {"kept": len(report.pairs)}}
            pair_data["pairs"]["problems"] = list(report.problems)
            for key in ("prompt_chars", "reply_chars"):
                pair_data["pairs"][key] = getattr(report, key).__dict__
    label_data, label_lines = _labels(corpus) if getattr(args, "labels", False) else ({}, [])
    stats = corpus_stats(corpus)
    data = {k: v for k, v in stats.__dict__.items()}
    if args.json:
        print(json.dumps({"name": corpus.name, "source": corpus.source, **data,
                          "warnings": corpus.warnings(), **pair_data, **label_data}, ensure_ascii=False))
        return 0
    out = console()
    out.print(Text(neutralise(f"{corpus.name}  ({corpus.source})"), style="bold"))
    for key, value in data.items():
        if key == "preview":
            continue
        if key == "top_chars":
            total = max(1, stats.chars)
            value = "  ".join(f"{_char_label(c)} {100 * n / total:.1f}%" for c, n in value)
        shown = f"{value:,}" if isinstance(value, int) else str(value)
        out.print(Text(f"  {key.replace('_', ' ')}: {neutralise(shown)}"))
    for w in corpus.warnings():
        out.print(Text("  warning: " + neutralise(w), style="yellow"))
    if pair_lines:
        out.print(Text("dialogue pairs:", style="bold"))
        for line in pair_lines:
            out.print(Text("  " + neutralise(line)))
    if label_lines:
        out.print(Text("labels:", style="bold"))
        for line in label_lines:
            out.print(Text("  " + neutralise(line)))
    if "preview" in data:
        out.print(Text("preview:", style="bold"))
        out.print(Text(neutralise(str(data["preview"]))))
    return 0


def _labels(corpus) -> tuple[dict, list[str]]:
    """A labelled corpus's labels: texts and their lengths in characters, by label (CorpusError if unusable)."""
    from rnnchat.text.labelled import check
    from rnnchat.text.load import corpus_labelled

    read = corpus_labelled(corpus)
    check(read, corpus.name)
    lengths: dict[str, list[int]] = {}
    for t in read.texts:
        lengths.setdefault(t.label, []).append(len(t.text))
    rows = {label: {"texts": len(n), "mean_chars": sum(n) / len(n), "min_chars": min(n), "max_chars": max(n)}
            for label, n in sorted(lengths.items(), key=lambda kv: (-len(kv[1]), kv[0]))}
    width = max(5, *(len(label) for label in rows))
    lines = [f"{len(rows)} labels, {len(read.texts):,} texts", f"{'label':<{width}}  {'texts':>7}  {'share':>6}  "
             f"{'mean chars':>10}  {'min':>6}  {'max':>7}"]
    lines += [f"{label:<{width}}  {r['texts']:>7,}  {r['texts'] / len(read.texts):>6.1%}  {r['mean_chars']:>10.0f}  "
              f"{r['min_chars']:>6,}  {r['max_chars']:>7,}" for label, r in rows.items()]
    lines += [f"note: {n}" for n in read.notes]
    return {"labels": rows, "label_notes": read.notes}, lines


def _char_label(c: str) -> str:
    names = {" ": "space", "\n": "newline", "\t": "tab"}
    return names.get(c, repr(c))
