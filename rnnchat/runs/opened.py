"""A run's model opened for use (sampling, chat, evaluation, inspection) and what it needs beside the
weights (the copy index of its training text)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnchat.errors import CheckpointError, CorpusError, RnnchatError
from rnnchat.runs.intact import checkpoint_dir
from rnnchat.runs.kinds import KINDS
from rnnchat.runs.meta import CorpusInfo, RunMeta, read_meta
from rnnchat.runs.rundir import resolve_run
from rnnchat.text.tokenizers import load_tokenizer


@dataclass(frozen=True)
class OpenedRun:
    name: str
    path: Path
    which: str
    meta: RunMeta
    model: Any        # RNNLM or Seq2Seq, in eval mode, on the CPU
    tokenizer: Any
    note: str = ""    # set when the checkpoint failed its check and the previous copy was loaded: say it


def open_language_model(run: str | os.PathLike, which: str = "best") -> OpenedRun:
    """Load a run's language model and tokenizer for sampling or evaluation; ``best`` falls back to ``last``."""
    return open_run(run, which, "lm")


def open_chat_model(run: str | os.PathLike, which: str = "best") -> OpenedRun:
    """Load a chat run's seq2seq model and tokenizer; ``best`` falls back to ``last``."""
    return open_run(run, which, "chat")


def open_run(run: str | os.PathLike, which: str = "best", kind: str | None = None) -> OpenedRun:
    """Load a run's model (of ``kind``, when given) and tokenizer, in eval mode on the CPU."""
    from rnnchat.runs.checkpoints import check_model_size, load_checkpoint  # torch's: the app draws without

    run_dir = resolve_run(run)
    meta = read_meta(run_dir)
    found = meta.kind
    if kind is not None and found.name != kind:
        raise CheckpointError(f"run '{run_dir.name}' is {found.describe()}, not {KINDS[kind].what}")
    if which == "best":
        try:
            checkpoint_dir(run_dir, "best")
        except CheckpointError:
            which = "last"
    loaded = load_checkpoint(run_dir, which)
    tokenizer = load_tokenizer(run_dir)
    check_model_size(run_dir.name, meta, loaded)
    try:
        cfg = meta.model
        if cfg.vocab_size != tokenizer.vocab_size:
            raise ValueError(f"model vocabulary {cfg.vocab_size} != tokenizer vocabulary {tokenizer.vocab_size}")
        model = found.model(cfg)
        model.load_weights(loaded.model)
    except (CheckpointError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"run '{run_dir.name}' does not describe a loadable model: "
                              f"{str(exc).splitlines()[0][:300]}") from None
    model.eval()
    return OpenedRun(run_dir.name, run_dir, which, meta, model, tokenizer, loaded.note)


def training_corpus(meta: RunMeta | CorpusInfo, given: str | None = None):
    """The text a run trained on (``meta``: the run's description, or its corpus record): the source its
    run.json names, or ``given`` (the user's --corpus), read only when its content is what the run
    recorded. A run from elsewhere may name any path; its text is used (copied into caches, shown,
    retrieved from) only when it is the run's own."""
    from rnnchat.text.load import editions, load_corpus

    info = meta.corpus if isinstance(meta, RunMeta) else meta
    where = f"--corpus {given}" if given else info.source
    try:
        corpus = load_corpus(given or info.spec)
    except RnnchatError as exc:
        raise CorpusError(f"the run's corpus is not here ({where}: {exc}); pass --corpus PATH") from None
    for edition in editions(corpus):        # a built-in as this rnnchat reads it, then as earlier ones did
        if edition.content_hash() == info.hash:
            return edition
    raise CorpusError(f"the run's corpus is not here ({where} is not the text it trained on: its files' "
                      "names or content differ); pass --corpus PATH") from None


def copy_index(meta: RunMeta, given: str | None = None):
    """(the copy index of a run's training text, a warning or ""): from the cache, or built once from the
    run's own corpus (``training_corpus``); no index, with the reason, when that is not here."""
    from rnnchat.text.novelty import index_path, open_cached, training_index

    cached = open_cached(index_path(meta.corpus.hash, meta.train.val_fraction))
    if cached is not None:
        return cached, ""
    try:
        corpus = training_corpus(meta, given)
    except CorpusError as exc:
        return None, f"cannot tell how much is copied from the training text: {exc}"
    return training_index(corpus, meta.train.val_fraction), ""


