"""The ``rnnchat`` command: train, generate, eval and corpus, printing the engine's event streams.

Errors in what the user gave (files, names, option values) print one line on stderr and exit 2;
nothing the user can cause prints a traceback (set RNNCHAT_DEBUG=1 to see one for a real bug).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Sequence

from rnnchat import __version__

EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 2, 1, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not usage + error
        self.exit(EXIT_USAGE, f"rnnchat: error: {message} (see '{self.prog} --help')\n")


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a language model (or, with --task chat, a chat model) on a corpus",
                       description="Train a recurrent language model, or with --task chat a seq2seq chat model "
                                   "on the corpus's dialogue. CORPUS is a text file, a folder of text files, a "
                                   "built-in name (shakespeare, dialogues, dialogues:LANGUAGE) or a name in corpora/.")
    p.add_argument("corpus", nargs="?", help="what to train on (optional with --resume)")
    p.add_argument("--preset", choices=("tiny", "small", "medium"), help="model size preset (default: small)")
    p.add_argument("--task", choices=("lm", "chat"), help="lm: a language model (default); chat: encoder-decoder "
                                                          "with attention on (prompt, reply) pairs")
    g = p.add_argument_group("data")
    g.add_argument("--level", choices=("char", "bpe", "unigram"), help="tokens: characters or subwords")
    g.add_argument("--vocab-size", type=int, help="subword vocabulary size (bpe/unigram)")
    g.add_argument("--val-fraction", type=float, help="share of text kept for validation (default 0.1)")
    g = p.add_argument_group("model")
    g.add_argument("--cell", choices=("lstm", "gru", "rnn"))
    g.add_argument("--layers", type=int)
    g.add_argument("--hidden", type=int)
    g.add_argument("--embed", type=int)
    g.add_argument("--dropout", type=float)
    g.add_argument("--tie", action="store_true", default=None, help="tie embedding and output weights")
    g = p.add_argument_group("chat (--task chat)")
    g.add_argument("--attention", choices=("general", "dot"), help="Luong attention score (default general)")
    g.add_argument("--context-turns", type=int, help="earlier turns read with each prompt (default 1)")
    g.add_argument("--max-turn-chars", type=int, help="pairs with a longer prompt or reply are dropped (default 300)")
    g.add_argument("--teacher-forcing", type=float, help="share of decoder inputs from the reference (default 1)")
    g = p.add_argument_group("training")
    g.add_argument("--seq-len", type=int, help="BPTT window in tokens")
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float, help="peak learning rate")
    g.add_argument("--warmup-steps", type=int)
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--clip", type=float, help="gradient-norm clip (0: off)")
    g.add_argument("--carry-state", action="store_true", default=None,
                   help="carry hidden state across consecutive windows")
    g.add_argument("--max-steps", type=int)
    g.add_argument("--epochs", type=float)
    g.add_argument("--minutes", type=float, help="training-time budget")
    g.add_argument("--eval-every", type=int, help="steps between evaluations, samples and checkpoints")
    g.add_argument("--eval-tokens", type=int)
    g.add_argument("--sample-length", type=int)
    g.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"))
    g.add_argument("--precision", choices=("auto", "fp32", "bf16"))
    g.add_argument("--seed", type=int)
    g = p.add_argument_group("run")
    g.add_argument("--name", help="run name under checkpoints/ (default: corpus-level-model-date)")
    g.add_argument("--resume", metavar="RUN", help="continue a run (name or directory)")
    g.add_argument("--json", action="store_true", help="print one JSON object per event")
    p.set_defaults(func=cmd_train)


def _add_sampling_options(p) -> None:
    p.add_argument("--temperature", type=float, help="0 is greedy; higher is wilder (default 0.8)")
    p.add_argument("--top-k", type=int, help="sample from the k likeliest tokens (0: off)")
    p.add_argument("--top-p", type=float, help="nucleus sampling mass in (0, 1] (1: off)")
    p.add_argument("--seed", type=int, help="the same seed gives the same text")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")


def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="stream text from a trained run")
    p.add_argument("run", help="run name under checkpoints/ or a run directory")
    p.add_argument("--prompt", default="", help="text that primes the model (shown dimmed on a terminal; "
                                                 "not part of the output when piped)")
    p.add_argument("--length", type=int, help="tokens to generate (default 500)")
    p.add_argument("--stop", action="append", default=[], help="stop after this string (repeatable)")
    p.add_argument("--count", type=int, default=1, help="number of samples")
    p.add_argument("--json", action="store_true", help="print one JSON object per sample")
    _add_sampling_options(p)
    p.set_defaults(func=cmd_generate)


def _add_decoding_options(p) -> None:
    p.add_argument("--temperature", type=float, help="0 is greedy (default 0.7)")
    p.add_argument("--top-k", type=int, help="sample from the k likeliest tokens (0: off)")
    p.add_argument("--top-p", type=float, help="nucleus sampling mass in (0, 1] (default 0.9)")
    p.add_argument("--beam", type=int, help="beam width; > 1 searches instead of sampling (default 1)")
    p.add_argument("--length-penalty", type=float, help="beam: rank by log-prob / length**F (default 1)")
    p.add_argument("--no-repeat-ngram", type=int, help="never repeat an n-gram of this many tokens (0: off)")
    p.add_argument("--repetition-penalty", type=float, help="> 1 discourages tokens already used (default 1)")
    p.add_argument("--rerank", type=float, help="beam: anti-language-model weight against generic replies "
                                                "(0: off; try 0.3)")
    p.add_argument("--max-length", type=int, help="longest reply in tokens (default 200)")
    p.add_argument("--seed", type=int, help="the same seed gives the same replies")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")


def _add_chat(sub) -> None:
    p = sub.add_parser("chat", help="chat with a chat run in the terminal (one reply per input line)",
                       description="Chat with a run trained with --task chat. Type a line, get a reply. Commands: "
                                   "/reset, /temp F, /beam N, /topk N, /topp F, /rerank F, /settings, /help, /quit. "
                                   "With piped input, each line gets one reply line.")
    p.add_argument("run", help="run name under checkpoints/ or a run directory")
    p.add_argument("--show-beams", action="store_true", help="beam search: print the beams as they grow")
    p.add_argument("--json", action="store_true", help="one JSON object per reply")
    _add_decoding_options(p)
    p.set_defaults(func=cmd_chat)


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="loss, bits per character and perplexity of a text (chat runs: of "
                                    "held-out pairs, with distinct-1/2 per decoding strategy)")
    p.add_argument("run")
    p.add_argument("--text", help="a text file or folder to score (chat runs: a dialogue file; default: the "
                                  "run's own held-out pairs)")
    p.add_argument("--prompts", type=int, default=100, help="chat runs: held-out prompts to reply to")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)


def _add_corpus(sub) -> None:
    p = sub.add_parser("corpus", help="list corpora or show one")
    csub = p.add_subparsers(dest="corpus_cmd", required=True, parser_class=_Parser)
    lp = csub.add_parser("list", help="built-in corpora and what is in corpora/")
    lp.add_argument("--json", action="store_true")
    lp.set_defaults(func=cmd_corpus_list)
    sp = csub.add_parser("show", help="statistics and a preview of a corpus")
    sp.add_argument("name")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--pairs", action="store_true",
                    help="also read it as dialogue pairs (the default for dialogues, .tsv, .jsonl and .yml)")
    sp.set_defaults(func=cmd_corpus_show)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rnnchat", description="Train recurrent language models on your own text, "
                                                  "then sample from them.")
    parser.add_argument("--version", action="version", version=f"rnnchat {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    _add_train(sub)
    _add_generate(sub)
    _add_chat(sub)
    _add_eval(sub)
    _add_corpus(sub)
    return parser


# ---- commands ----------------------------------------------------------------------------------

def cmd_train(args) -> int:
    from rnnchat.train import distributed

    if not distributed.launched():
        return _train(args)
    # Started by torchrun: every process trains; rank 0 alone writes the run and prints.
    group = distributed.init(args.device or "auto")
    try:
        return _train(args, quiet=not group.is_main)
    finally:
        distributed.close()


def _train(args, quiet: bool = False) -> int:
    from rnnchat.chat.config import CHAT_TRAIN_DEFAULTS, Seq2SeqConfig
    from rnnchat.cli.console import TrainView, print_json_events
    from rnnchat.config import PRESETS, TrainConfig, replace
    from rnnchat.events import Done
    from rnnchat.lm.config import ModelConfig
    from rnnchat.train import distributed
    from rnnchat.train.loop import Trainer

    model_opts = dict(cell=args.cell, layers=args.layers, hidden=args.hidden, embed=args.embed,
                      dropout=args.dropout, tie=args.tie)
    chat = args.task == "chat"
    if chat:
        if args.cell not in (None, "lstm"):
            _err("chat models use LSTM cells; drop --cell")
            return EXIT_USAGE
        model_opts = {**{k: v for k, v in model_opts.items() if k != "cell"}, "attention": args.attention}
    elif args.attention is not None:
        _err("--attention is for chat models; add --task chat")
        return EXIT_USAGE
    train_opts = dict(level=args.level, vocab_size=args.vocab_size, val_fraction=args.val_fraction,
                      seq_len=args.seq_len, batch_size=args.batch_size, lr=args.lr, warmup_steps=args.warmup_steps,
                      weight_decay=args.weight_decay, clip=args.clip, carry_state=args.carry_state,
                      max_steps=args.max_steps, epochs=args.epochs, minutes=args.minutes,
                      eval_every=args.eval_every, eval_tokens=args.eval_tokens, sample_length=args.sample_length,
                      device=args.device, precision=args.precision, seed=args.seed,
                      task=args.task, context_turns=args.context_turns, max_turn_chars=args.max_turn_chars,
                      teacher_forcing=args.teacher_forcing)
    if args.resume:
        changed = [k for k, v in {**model_opts, "preset": args.preset, "level": args.level,
                                  "vocab_size": args.vocab_size, "seq_len": args.seq_len,
                                  "batch_size": args.batch_size, "carry_state": args.carry_state,
                                  "task": args.task, "context_turns": args.context_turns,
                                  "max_turn_chars": args.max_turn_chars}.items()
                   if v is not None]
        if changed:
            _err("when resuming, the model and data settings come from the run; drop "
                 + ", ".join("--" + c.replace("_", "-") for c in changed))
            return EXIT_USAGE
        trainer = Trainer(args.corpus, resume=args.resume, overrides=train_opts)
    else:
        if chat:
            train_opts.update({k: v for k, v in CHAT_TRAIN_DEFAULTS.items() if train_opts.get(k) is None})
        preset = PRESETS[args.preset or "small"]
        if chat:
            preset = {k: v for k, v in preset.items() if k != "cell"}
        model_cfg = replace(replace(Seq2SeqConfig() if chat else ModelConfig(), **preset), **model_opts)
        train_cfg = replace(TrainConfig(), **train_opts)
        trainer = Trainer(args.corpus, model_cfg, train_cfg, name=args.name)

    def on_signal(signum, frame):
        trainer.stop()
        # A second Ctrl+C aborts at once; the last checkpoint on disk stays whole either way. Not under
        # torchrun: it passes the terminal's Ctrl+C on to every process a second time by itself.
        if not distributed.launched():
            signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    events = trainer.run()
    if quiet:
        done = None
        for event in events:
            done = event if isinstance(event, Done) else done
    else:
        done = print_json_events(events) if args.json else TrainView(_console(sys.stdout)).run(events)
    if done is None:
        return EXIT_FAILED
    return {"interrupted": EXIT_INTERRUPTED, "failed": EXIT_FAILED}.get(done.reason, 0)


def cmd_generate(args) -> int:
    from rnnchat.config import replace
    from rnnchat.events import SampleDone, Token
    from rnnchat.lm.config import SampleConfig
    from rnnchat.lm.generate import generate
    from rnnchat.runs.checkpoints import open_language_model
    from rnnchat.safetext import neutralise

    cfg = replace(SampleConfig(), length=args.length, temperature=args.temperature, top_k=args.top_k,
                  top_p=args.top_p, seed=args.seed, stop=tuple(args.stop))
    cfg.validate()
    if args.count < 1 or args.count > 10_000:
        _err(f"--count must be from 1 to 10000; got {args.count}")
        return EXIT_USAGE
    run = open_language_model(args.run, args.checkpoint)
    prompt_ids = run.tokenizer.encode(args.prompt)
    unknown = run.tokenizer.count_unknown(prompt_ids)
    if 0 < unknown < len(prompt_ids):  # all unknown is refused by the sampler itself
        _warn(f"{unknown} character(s) of the prompt are unknown to the model and were mapped to <unk>")
    tty = sys.stdout.isatty()
    out = sys.stdout
    for i in range(args.count):
        sample_cfg = replace(cfg, seed=None if cfg.seed is None else cfg.seed + i)
        pieces, done = [], None
        if tty and args.count > 1 and not args.json:
            out.write(f"\n--- sample {i + 1} of {args.count} ---\n")
        if tty and args.prompt and not args.json:  # on a terminal the text reads on from the prompt
            out.write("\x1b[2m" + neutralise(args.prompt) + "\x1b[0m")
        for event in generate(run.model, run.tokenizer, sample_cfg, prompt=args.prompt):
            if isinstance(event, Token):
                pieces.append(event.text)
                if not args.json:
                    out.write(neutralise(event.text) if tty else event.text)
                    out.flush()
            elif isinstance(event, SampleDone):
                done = event
        if args.json:
            out.write(json.dumps({"sample": i, "text": "".join(pieces), **(done.to_dict() if done else {})},
                                 ensure_ascii=False) + "\n")
        else:
            out.write("\n")
        out.flush()
        if tty and done is not None and not args.json:
            rate = done.chars / done.seconds if done.seconds > 0 else 0.0
            sys.stderr.write(f"[{done.chars} chars in {done.seconds:.2f}s, {rate:,.0f} chars/s; {done.reason}]\n")
    return 0


def cmd_chat(args) -> int:
    from rnnchat.chat.config import DecodeConfig
    from rnnchat.chat.session import ChatSession
    from rnnchat.cli.chat import TerminalChat
    from rnnchat.config import replace

    cfg = replace(DecodeConfig(), temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, beam=args.beam,
                  length_penalty=args.length_penalty, no_repeat_ngram=args.no_repeat_ngram,
                  repetition_penalty=args.repetition_penalty, rerank=args.rerank, max_length=args.max_length,
                  seed=args.seed)
    cfg.validate()
    session = ChatSession(args.run, args.checkpoint)
    return TerminalChat(session, cfg, json_lines=args.json, show_beams=args.show_beams).run()


def cmd_eval(args) -> int:
    from rnnchat.runs.checkpoints import read_run_meta, resolve_run
    from rnnchat.runs.kinds import kind_of

    if args.text is not None and not os.path.exists(args.text):
        _err(f"text file '{args.text}' not found")
        return EXIT_USAGE
    if kind_of(read_run_meta(resolve_run(args.run))).name == "chat":
        return _eval_chat(args)
    if args.text is None:
        _err("give --text FILE: the text to score")
        return EXIT_USAGE
    from rnnchat.lm.evaluate import score_texts
    from rnnchat.runs.checkpoints import open_language_model
    from rnnchat.text.load import load_corpus

    run = open_language_model(args.run, args.checkpoint)
    corpus = load_corpus(args.text)
    for w in corpus.warnings():
        _warn(w)
    seq_len = int(run.meta.get("train", {}).get("seq_len", 256))
    score = score_texts(run.model, run.tokenizer, [d.text for d in corpus.documents], seq_len=max(seq_len, 64))
    if args.json:
        print(json.dumps({"run": run.name, "checkpoint": run.which, **score.to_dict()}))
    else:
        print(f"{run.name} ({run.which}) on {args.text}: {score.loss:.4f} nats/token, "
              f"{score.bits_per_char:.4f} bits/char, perplexity {score.perplexity:.2f} "
              f"over {score.tokens:,} tokens / {score.chars:,} chars"
              + (f"; {score.unknown:,} unknown" if score.unknown else ""))
    return 0


def _eval_chat(args) -> int:
    from rnnchat.chat.evaluate import evaluate_chat
    from rnnchat.runs.checkpoints import open_chat_model
    from rnnchat.text.load import load_corpus

    if args.prompts < 1:
        _err(f"--prompts must be at least 1; got {args.prompts}")
        return EXIT_USAGE
    run = open_chat_model(args.run, args.checkpoint)
    result = evaluate_chat(run, load_corpus(args.text) if args.text else None, args.prompts)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    from rnnchat.safetext import neutralise

    source = args.text or "its held-out pairs"
    print(f"{run.name} ({run.which}) on {neutralise(source)}: {result['loss']:.4f} nats/token, "
          f"perplexity {result['perplexity']:.2f}, {result['bits_per_char']:.4f} bits/char over {result['pairs']:,} pairs")
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


def cmd_corpus_list(args) -> int:
    from rnnchat.formatting import human_size
    from rnnchat.text.load import list_corpora

    entries = list_corpora()
    if args.json:
        print(json.dumps([e.__dict__ for e in entries]))
        return 0
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col in ("name", "kind", "size", "path"):
        table.add_column(col, justify="right" if col == "size" else "left")
    for e in entries:
        table.add_row(e.name, e.kind, human_size(e.size), e.path or "")
    _console(sys.stdout).print(table)
    return 0


def cmd_corpus_show(args) -> int:
    from rich.text import Text

    from rnnchat.chat.pairs import extract_pairs
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
    stats = corpus_stats(corpus)
    data = {k: v for k, v in stats.__dict__.items()}
    if args.json:
        print(json.dumps({"name": corpus.name, "source": corpus.source, **data,
                          "warnings": corpus.warnings(), **pair_data}, ensure_ascii=False))
        return 0
    console = _console(sys.stdout)
    console.print(Text(f"{corpus.name}  ({corpus.source})", style="bold"))
    for key, value in data.items():
        if key == "preview":
            continue
        if key == "top_chars":
            total = max(1, stats.chars)
            value = "  ".join(f"{_char_label(c)} {100 * n / total:.1f}%" for c, n in value)
        shown = f"{value:,}" if isinstance(value, int) else str(value)
        console.print(Text(f"  {key.replace('_', ' ')}: {neutralise(shown)}"))
    for w in corpus.warnings():
        console.print(Text("  warning: " + neutralise(w), style="yellow"))
    if pair_lines:
        console.print(Text("dialogue pairs:", style="bold"))
        for line in pair_lines:
            console.print(Text("  " + neutralise(line)))
    if "preview" in data:
        console.print(Text("preview:", style="bold"))
        console.print(Text(neutralise(str(data["preview"]))))
    return 0


# ---- helpers -----------------------------------------------------------------------------------

def _console(stream):
    from rich.console import Console

    return Console(file=stream, highlight=False, soft_wrap=False)


def _char_label(c: str) -> str:
    names = {" ": "space", "\n": "newline", "\t": "tab"}
    return names.get(c, repr(c))


def _other_rank() -> bool:
    """A torchrun process other than rank 0: its errors repeat rank 0's, so it keeps quiet."""
    return os.environ.get("RANK", "0") != "0" and os.environ.get("WORLD_SIZE", "1") != "1"


def _err(message: str) -> None:
    from rnnchat.safetext import neutralise

    if _other_rank():
        return
    sys.stderr.write(f"rnnchat: error: {neutralise(message)}\n")


def _warn(message: str) -> None:
    from rnnchat.safetext import neutralise

    if _other_rank():
        return
    sys.stderr.write(f"rnnchat: warning: {neutralise(message)}\n")


def main(argv: Sequence[str] | None = None) -> int:
    from rnnchat.errors import ConfigError, RnnchatError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            _err("the app needs a terminal; for scripts use the subcommands (see 'rnnchat --help')")
            return EXIT_USAGE
        from rnnchat.tui.app import (
            run_app,  # textual is imported only here: the core stays headless
        )

        return run_app()
    try:
        return args.func(args)
    except ConfigError as exc:
        _err(exc.phrased("--" + exc.field.replace("_", "-")) if exc.field else str(exc))
        return EXIT_USAGE
    except RnnchatError as exc:
        _err(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("rnnchat: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `rnnchat generate RUN | head`): not an error.
        sys.stderr.close()
        return 0
    except Exception as exc:  # noqa: BLE001 - a bug; say so in one line unless debugging
        if os.environ.get("RNNCHAT_DEBUG"):
            raise
        _err(f"internal error: {type(exc).__name__}: {exc} (set RNNCHAT_DEBUG=1 for details; please report it)")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
