"""The ``rnnchat`` command line: every subcommand, its options and the function that runs it.

Choices come from the config's tuples (``rnnchat.config``), so the CLI offers what the engine accepts, and
the defaults the help names come from the config dataclasses, so changing one there changes the help.
Only light modules are imported here: ``rnnchat --help`` must not load torch, rich or numpy.
"""

from __future__ import annotations

import argparse

from rnnchat import __version__
from rnnchat.chat.config import CHAT_TRAIN_DEFAULTS, DecodeConfig, Seq2SeqConfig
from rnnchat.classify.config import POOLINGS, ClassifierConfig
from rnnchat.cli.chat import cmd_chat
from rnnchat.cli.classify import cmd_classify
from rnnchat.cli.corpus import cmd_corpus_list, cmd_corpus_show
from rnnchat.cli.eval import cmd_eval
from rnnchat.cli.exits import EXIT_USAGE
from rnnchat.cli.generate import cmd_generate
from rnnchat.cli.inspect import MAX_CHARS, cmd_inspect
from rnnchat.cli.train import cmd_train
from rnnchat.config import (
    ATTENTIONS,
    CANDIDATES,
    CELLS,
    CHECKPOINTS,
    DEFAULT_PRESET,
    DEVICES,
    LEVELS,
    PRECISIONS,
    PRESET_NAMES,
    PRESETS,
    TASKS,
    TrainConfig,
)
from rnnchat.lm.config import SampleConfig

# The defaults the help names; instances, so a field with a default factory reads the same way.
_TRAIN, _SAMPLE, _DECODE, _SEQ2SEQ = TrainConfig(), SampleConfig(), DecodeConfig(), Seq2SeqConfig()
_CLASSIFIER = ClassifierConfig()


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not usage + error
        self.exit(EXIT_USAGE, f"rnnchat: error: {message} (see '{self.prog} --help')\n")


def _described(choices: dict[str, str], default: str) -> str:
    """'a: what a is; b: what b is', with '(default)' after the default's description."""
    return "; ".join(f"{name}: {what}{' (default)' if name == default else ''}" for name, what in choices.items())


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a language model (or, with --task chat, a chat model) on a corpus",
                       description="Train a recurrent language model, or with --task chat a seq2seq chat model "
                                   "on the corpus's dialogue. CORPUS is a text file, a folder of text files, a "
                                   "built-in name (shakespeare, dialogues, dialogues:LANGUAGE) or a name in corpora/.")
    p.add_argument("corpus", nargs="?", help="what to train on (optional with --resume)")
    p.add_argument("--preset", choices=PRESET_NAMES,
                   help=f"auto: the cell, size, rate, batch and window measured best for this device and time "
                        f"budget; or a size: {', '.join(PRESETS)} (default: {DEFAULT_PRESET})")
    p.add_argument("--task", choices=TASKS, help=_described(
        {"lm": "a language model", "chat": "encoder-decoder with attention on (prompt, reply) pairs",
         "classify": "a classifier: reads a whole text, names its label (labelled corpora: folders of "
                     "folders, .tsv/.csv, .jsonl, plays-by-kind, dialogues-by-topic)"}, _TRAIN.task))
    g = p.add_argument_group("data")
    g.add_argument("--level", choices=LEVELS, help="tokens: characters or subwords")
    g.add_argument("--vocab-size", type=int, help="subword vocabulary size (bpe/unigram)")
    g.add_argument("--val-fraction", type=float,
                   help=f"share of text kept for validation (default {_TRAIN.val_fraction:g})")
    g = p.add_argument_group("model")
    g.add_argument("--cell", choices=CELLS)
    g.add_argument("--layers", type=int)
    g.add_argument("--hidden", type=int)
    g.add_argument("--embed", type=int)
    g.add_argument("--dropout", type=float)
    g.add_argument("--tie", action="store_true", default=None, help="tie embedding and output weights")
    g = p.add_argument_group("chat (--task chat)")
    g.add_argument("--attention", choices=ATTENTIONS, help=f"Luong attention score (default {_SEQ2SEQ.attention})")
    g.add_argument("--context-turns", type=int,
                   help=f"earlier turns read with each prompt (default {_SEQ2SEQ.context_turns})")
    g.add_argument("--max-turn-chars", type=int,
                   help=f"pairs with a longer prompt or reply are dropped (default {_SEQ2SEQ.max_turn_chars})")
    g.add_argument("--teacher-forcing", type=float,
                   help=f"share of decoder inputs from the reference (default {_SEQ2SEQ.teacher_forcing:g})")
    g = p.add_argument_group("classifier (--task classify)")
    g.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None,
                   help="also read each text right to left (default: no)")
    g.add_argument("--pooling", choices=POOLINGS, help=f"the summary the label is read from: the final state, or "
                                                        f"the mean or max over time (default {_CLASSIFIER.pooling})")
    g.add_argument("--max-tokens", type=int, help=f"training texts longer than this are cut, with a notice "
                                                  f"(default {_CLASSIFIER.max_tokens}; prediction reads all)")
    g.add_argument("--balance", action=argparse.BooleanOptionalAction, default=None,
                   help="weight the loss by label rarity (default: yes)")
    g = p.add_argument_group("training")
    g.add_argument("--seq-len", type=int, help="BPTT window in tokens")
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float, help="peak learning rate")
    g.add_argument("--warmup-steps", type=int)
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--clip", type=float, help="gradient-norm clip (0: off)")
    g.add_argument("--carry-state", action=argparse.BooleanOptionalAction, default=None,
                   help="carry the hidden state from each window into the next of its lane (the auto preset "
                        "says whether it does)")
    g.add_argument("--max-steps", type=int)
    g.add_argument("--epochs", type=float)
    g.add_argument("--minutes", type=float, help="training-time budget")
    g.add_argument("--eval-every", type=int, help="steps between evaluations, samples and checkpoints")
    g.add_argument("--patience", type=int, help=f"stop after this many evaluations without a better held-out "
                                                 f"loss (0: never; chat default {CHAT_TRAIN_DEFAULTS['patience']})")
    g.add_argument("--eval-chars", type=int, help=f"validation characters scored at each evaluation "
                                                  f"(default {_TRAIN.eval_chars}; the same text at every level)")
    g.add_argument("--sample-length", type=int, help="tokens of the sample written at each evaluation (0: none)")
    g.add_argument("--device", choices=DEVICES)
    g.add_argument("--precision", choices=PRECISIONS)
    g.add_argument("--seed", type=int)
    g = p.add_argument_group("run")
    g.add_argument("--name", help="run name under checkpoints/ (default: corpus-level-model-date)")
    g.add_argument("--resume", metavar="RUN", help="continue a run (name or directory)")
    g.add_argument("--init-from", metavar="RUN", help="RUN may be 'base', the built-in base model (English "
                                                      "from plays, dialogues and Python's docs). "
                                                      "lm: fine-tune a language-model run on this text (its "
                                                      "cell, shape and weights; new characters join its "
                                                      "vocabulary); chat: start from an LSTM language-model run "
                                                      "(its tokenizer, shape, embedding, LSTM and output head); "
                                                      "classify: start the encoder from a language-model run "
                                                      "(its tokenizer, embedding and recurrent layers)")
    g.add_argument("--json", action="store_true", help="print one JSON object per event")
    p.set_defaults(func=cmd_train)


def _add_checkpoint(p) -> None:
    p.add_argument("--checkpoint", choices=CHECKPOINTS, default=CHECKPOINTS[0],   # "best"
                   help="best: the weights of the lowest held-out loss, kept when a run goes on to memorise "
                        "(default; the last when none was saved); last: the latest")


def _add_sampling_options(p) -> None:
    p.add_argument("--temperature", type=float, help=f"0 is greedy; higher is wilder (default {_SAMPLE.temperature:g})")
    p.add_argument("--top-k", type=int, help="sample from the k likeliest tokens (0: off)")
    p.add_argument("--top-p", type=float, help="nucleus sampling mass in (0, 1] (1: off)")
    p.add_argument("--seed", type=int, help="the same seed gives the same text")
    _add_checkpoint(p)


def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="stream text from a trained run")
    p.add_argument("run", help="run name under checkpoints/ or a run directory")
    p.add_argument("--prompt", default="", help="text that primes the model (shown dimmed on a terminal; "
                                                 "not part of the output when piped)")
    p.add_argument("--length", type=int, help=f"tokens to generate (default {_SAMPLE.length})")
    p.add_argument("--stop", action="append", default=[], help="stop after this string (repeatable)")
    p.add_argument("--count", type=int, default=1, help="number of samples")
    p.add_argument("--json", action="store_true", help="print one JSON object per sample")
    p.add_argument("--interactive", action="store_true",
                   help="pick each next token yourself from the most likely ones (piped: one choice per line)")
    p.add_argument("--choices", type=int, default=5, help="with --interactive: tokens offered (default %(default)s)")
    p.add_argument("--no-novelty", action="store_true",
                   help="do not measure how much of each sample is copied from the training text")
    _add_corpus_option(p, "to measure copies against")
    p.add_argument("--exact", action="store_true",
                   help="sample with float32 weights even where the faster int8 copy would be used "
                        "(taken where it measured faster on this CPU for the model's shape)")
    _add_sampling_options(p)
    p.set_defaults(func=cmd_generate)


def _add_decoding_options(p) -> None:
    d = _DECODE
    p.add_argument("--temperature", type=float, help=f"0 is greedy (default {d.temperature:g})")
    p.add_argument("--top-k", type=int, help="sample from the k likeliest tokens (0: off)")
    p.add_argument("--top-p", type=float, help=f"nucleus sampling mass in (0, 1] (default {d.top_p:g})")
    p.add_argument("--beam", type=int, help=f"beam width; > 1 searches instead of sampling (default {d.beam})")
    p.add_argument("--length-penalty", type=float, help=f"beam: rank by log-prob / length**F "
                                                        f"(default {d.length_penalty:g})")
    p.add_argument("--no-repeat-ngram", type=int, help="never repeat an n-gram of this many tokens (0: off)")
    p.add_argument("--repetition-penalty", type=float, help=f"> 1 discourages tokens already used "
                                                            f"(default {d.repetition_penalty:g})")
    p.add_argument("--rerank", type=float, help="beam: anti-language-model weight against generic replies "
                                                "(0: off; try 0.3)")
    p.add_argument("--max-length", type=int, help=f"longest reply in tokens (default {d.max_length})")
    p.add_argument("--seed", type=int, help="the same seed gives the same replies")
    _add_checkpoint(p)


def _add_chat(sub) -> None:
    p = sub.add_parser("chat", help="chat with a chat run in the terminal (one reply per input line)",
                       description="Chat with a run trained with --task chat. Type a line, get a reply. Commands: "
                                   "/reset, /temp F, /beam N, /topk N, /topp F, /rerank F, "
                                   "/candidates model|retrieval, /norepeat N, /penalty F, /settings, /help, /quit. "
                                   "With piped input, each line gets one reply line.")
    p.add_argument("run", help="run name under checkpoints/ or a run directory")
    p.add_argument("--show-beams", action="store_true", help="beam search: print the beams as they grow")
    p.add_argument("--json", action="store_true", help="one JSON object per reply")
    p.add_argument("--candidates", choices=CANDIDATES, help=_described(
        {"model": "the model's own reply",
         "retrieval": "the replies to the nearest prompts of the run's dialogue corpus (by words and letter groups) "
                      "and the model's beams, the nearest prompts first, then by the model's anti-LM score"},
        _DECODE.candidates) + ". Unset (and no --corpus), it falls back to model (one warning) when the run's "
        "training dialogue is not here. Retrieval searches beams, so --temperature, --top-k and --top-p apply to "
        "model replies. Each reply says where it came from: a dim 'retrieved' or 'model' after it (--json: "
        "\"source\")")
    _add_corpus_option(p, "for retrieval")
    _add_decoding_options(p)
    p.set_defaults(func=cmd_chat)


def _add_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="inside a language model or a classifier: units, gates and gradients "
                                       "through time",
                       description="Run a text through a language model or a classifier and show one unit's value "
                                   "at every position, the units that track properties of the text, gate "
                                   "saturation and (--gradients) how the gradient fades back in time: of the last "
                                   "position's next-token loss, or of a classifier's predicted label's loss "
                                   "(--label: another label's). A classifier also shows its label and every "
                                   "label's probability; a bidirectional one shows one direction (--direction).")
    p.add_argument("run", help="run name under checkpoints/ or a run directory")
    p.add_argument("--text", help="a text file or folder to run through the model")
    p.add_argument("--prompt", help="a text to run through the model")
    p.add_argument("--max-chars", type=int, default=MAX_CHARS, help="characters of the text to use "
                                                                    "(default %(default)s)")
    p.add_argument("--layer", type=int, default=0, help="which layer (default %(default)s)")
    p.add_argument("--unit", type=int, default=0, help="which unit of the layer (default %(default)s)")
    p.add_argument("--show", default="hidden", help="hidden, cell (LSTM) or a gate: input, forget, candidate, "
                                                    "output (LSTM), reset, update, new (GRU)")
    p.add_argument("--direction", choices=("forward", "backward"),
                   help="a bidirectional classifier's direction: forward reads left to right (the default), "
                        "backward right to left")
    p.add_argument("--top", type=int, default=5, help="interesting units to list (0: none)")
    p.add_argument("--gradients", action="store_true", help="gradient norm by steps back (first 100 tokens)")
    p.add_argument("--label", help="a classifier's label whose loss --gradients follows (default: the predicted "
                                   "one)")
    _add_checkpoint(p)
    p.add_argument("--json", action="store_true", help="one JSON object with the values at every position")
    p.set_defaults(func=cmd_inspect)


def _add_classify(sub) -> None:
    p = sub.add_parser("classify", help="the label of a text from a classifier run, with every label's probability")
    p.add_argument("run", help="run name under checkpoints/ or a run directory")
    p.add_argument("--text", action="append", metavar="FILE", help="a file to classify, whole ('-': standard "
                                                                   "input; repeatable)")
    p.add_argument("--prompt", action="append", metavar="TEXT", help="a text to classify (repeatable)")
    p.add_argument("--lines", action="store_true", help="classify every non-empty line of the files on its own")
    p.add_argument("--timing", action="store_true", help="say on stderr how long the texts took after loading")
    p.add_argument("--json", action="store_true", help="one JSON object per text")
    _add_checkpoint(p)
    p.set_defaults(func=cmd_classify)


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="loss, bits per character and perplexity of a text (chat runs: of "
                                    "held-out pairs, with distinct-1/2 per decoding strategy)")
    p.add_argument("run", nargs="+", help="a run; several language-model runs are ranked by bits/char on --text")
    p.add_argument("--text", help="a text file or folder to score (chat runs: a dialogue file; default: the "
                                  "run's own held-out pairs; classifier runs: a labelled file or folder)")
    p.add_argument("--prompts", type=int, default=100, help="chat runs: held-out prompts to reply to")
    _add_checkpoint(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)


def _add_corpus_option(p, what: str) -> None:
    p.add_argument("--corpus", metavar="PATH", help=f"where the run's training text is now, {what} (default: the "
                   "source its run.json names; used only when its content is what the run trained on)")


def _add_corpus(sub) -> None:
    p = sub.add_parser("corpus", help="list corpora or show one")
    csub = p.add_subparsers(dest="corpus_cmd", required=True, parser_class=Parser)
    lp = csub.add_parser("list", help="built-in corpora and what is in corpora/")
    lp.add_argument("--json", action="store_true")
    lp.set_defaults(func=cmd_corpus_list)
    sp = csub.add_parser("show", help="statistics and a preview of a corpus")
    sp.add_argument("name")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--pairs", action="store_true",
                    help="also read it as dialogue pairs (the default for dialogues, .tsv, .jsonl and .yml)")
    sp.add_argument("--labels", action="store_true",
                    help="read it as labelled texts for a classifier: labels, counts and lengths")
    sp.set_defaults(func=cmd_corpus_show)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="rnnchat", description="Train recurrent language models on your own text, "
                                                 "then sample from them.")
    parser.add_argument("--version", action="version", version=f"rnnchat {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    _add_train(sub)
    _add_generate(sub)
    _add_chat(sub)
    _add_classify(sub)
    _add_eval(sub)
    _add_inspect(sub)
    _add_corpus(sub)
    return parser
