"""The retriever of a chat run: its own training pairs, rebuilt from the run's corpus and split, so
``--candidates retrieval`` can only answer with replies the model was trained on, never held-out ones."""

from __future__ import annotations

from rnnchat.chat.data import split_of
from rnnchat.chat.retrieve import Retriever
from rnnchat.errors import CorpusError, RnnchatError
from rnnchat.runs.meta import RunMeta


def open_retriever(meta: RunMeta, run_name: str) -> Retriever:
    """A retriever over the training pairs of the chat run described by ``meta`` (its run.json)."""
    from rnnchat.text.load import load_corpus

    try:
        corpus = load_corpus(meta.corpus.spec)
    except RnnchatError as exc:
        raise CorpusError(f"retrieval needs the training dialogue of run '{run_name}', which cannot be read "
                          f"now: {exc}") from None
    train = split_of(corpus, meta.model, meta.train)[1]
    if not train:
        raise CorpusError(f"run '{run_name}': its corpus has no training dialogue pairs to retrieve from")
    return Retriever(train)
