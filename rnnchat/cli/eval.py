"""``rnnchat eval RUN``: a language model's loss on a text, or a chat model's loss on held-out pairs with
distinct-1/2 for each decoding strategy."""

from __future__ import annotations

import json
import os

from rnnchat.cli.classify import eval_classifier, rank_language_models
from rnnchat.cli.exits import EXIT_USAGE


def cmd_eval(args) -> int:
    from rnnchat.cli.console import err
    from rnnchat.runs.meta import read_meta
    from rnnchat.runs.rundir import resolve_run

    if args.text is not None and not os.path.exists(args.text):
        err(f"text file '{args.text}' not found")
        return EXIT_USAGE
    if len(args.run) > 1:         # several runs: language models ranked by how well each predicts the text
        return rank_language_models(args)
    args.run = args.run[0]
    kind = read_meta(resolve_run(args.run)).kind
    # Each kind of run is evaluated the way the command that uses it works: by its text or its replies.
    return _EVALUATE[kind.command](args)


def _eval_lm(args) -> int:
    from rnnchat.cli.console import err, open_run, warn
    from rnnchat.lm.evaluate import score_texts
    from rnnchat.safetext import neutralise
    from rnnchat.text.load import load_corpus

    if args.text is None:
        err("give --text FILE: the text to score")
        return EXIT_USAGE
    run = open_run(args.run, args.checkpoint, "lm")
    corpus = load_corpus(args.text)
    for w in corpus.warnings():
        warn(w)
    seq_len = run.meta.train.seq_len
    score = score_texts(run.model, run.tokenizer, [d.text for d in corpus.documents], seq_len=max(seq_len, 64))
    if args.json:
        print(json.dumps({"run": run.name, "checkpoint": run.which, **score.to_dict()}))
    else:
        print(neutralise(f"{run.name} ({run.which}) on {args.text}: {score.loss:.4f} nats/token, "
                         f"{score.bits_per_char:.4f} bits/char, perplexity {score.perplexity:.2f} "
                         f"over {score.tokens:,} tokens / {score.chars:,} chars"
                         + (f"; {score.unknown:,} unknown" if score.unknown else "")))
    return 0


def _eval_chat(args) -> int:
    from rnnchat.chat.evaluate import evaluate_chat
    from rnnchat.cli.console import err, open_run
    from rnnchat.safetext import neutralise
    from rnnchat.text.load import load_corpus

    if args.prompts < 1:
        err(f"--prompts must be at least 1; got {args.prompts}")
        return EXIT_USAGE
    run = open_run(args.run, args.checkpoint, "chat")
    result = evaluate_chat(run, load_corpus(args.text) if args.text else None, args.prompts)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    source = args.text or "its held-out pairs"
    print(neutralise(f"{run.name} ({run.which}) on {source}: {result['loss']:.4f} nats/token, "
                     f"perplexity {result['perplexity']:.2f}, {result['bits_per_char']:.4f} bits/char "
                     f"over {result['pairs']:,} pairs"))
    print(f"replies to {min(args.prompts, result['pairs'])} prompts:")
    print(f"  {'strategy':<22}{'distinct-1':>11}{'distinct-2':>11}{'same reply':>11}{'mean chars':>11}")
    for name, r in result["strategies"].items():
        print(f"  {name:<22}{r['distinct1']:>11.3f}{r['distinct2']:>11.3f}{100 * r['top_reply_share']:>10.0f}%"
              f"{r['mean_chars']:>11.1f}")
    for name, r in result["strategies"].items():
        for prompt, reply in r["examples"][:2]:
            prompt, reply = (neutralise(t.replace("\n", " / "))[:70] for t in (prompt, reply))
            print(f"  [{name}] > {prompt}\n  {' ' * len(name)}   < {reply}")
    return 0


# By Kind.command: the command that uses such a run ("generate" for language models, "chat" for chat models).
_EVALUATE = {"generate": _eval_lm, "chat": _eval_chat, "classify": eval_classifier}
