"""The retriever of a chat run: its own training pairs, rebuilt from the run's corpus and split, so
``--candidates retrieval`` can only answer with replies the model was trained on, never held-out ones."""

from __future__ import annotations

from rnnchat.chat.pairs import extract_pairs, split_pairs
from rnnchat.chat.retrieve import Retriever
from rnnchat.errors import CorpusError, RnnchatError
from rnnchat.runs.kinds import train_config_of


def open_retriever(meta: dict, run_name: str) -> Retriever:
    """A retriever over the training pairs of the chat run described by ``meta`` (its run.json)."""
    from rnnchat.text.load import load_corpus

    cfg = train_config_of(meta)
    source = str(meta.get("corpus", {}).get("source", "")).removeprefix("builtin:")
    try:
        corpus = load_corpus(source)
    except RnnchatError as exc:
        raise CorpusError(f"retrieval needs the training dialogue of run '{run_name}', which cannot be read "
                          f"now: {exc}") from None
    report = extract_pairs(corpus, context_turns=cfg.context_turns, max_turn_chars=cfg.max_turn_chars,
                           max_context_chars=cfg.max_turn_chars)
    train, _ = split_pairs(report.pairs, cfg.val_fraction, cfg.seed)
    if not train:
        raise CorpusError(f"run '{run_name}': its corpus has no training dialogue pairs to retrieve from")
    return Retriever(train)
