"""The retriever of a chat run: its own training pairs, rebuilt from the run's corpus and split, so
``--candidates retrieval`` can only answer with replies the model was trained on, never held-out ones."""

from __future__ import annotations

from rnnchat.chat.data import split_of
from rnnchat.chat.retrieve import Retriever
from rnnchat.errors import CorpusError
from rnnchat.runs.meta import RunMeta
from rnnchat.runs.opened import training_corpus


def open_retriever(meta: RunMeta, run_name: str, given: str | None = None) -> Retriever:
    """A retriever over the training pairs of the chat run described by ``meta`` (its run.json), from its
    own corpus only (``given`` names where it is now): a changed corpus would make held-out replies
    retrievable."""
    try:
        corpus = training_corpus(meta, given)
    except CorpusError as exc:
        raise CorpusError(f"retrieval needs the training dialogue of run '{run_name}': {exc}") from None
    train = split_of(corpus, meta.model, meta.train)[1]
    if not train:
        raise CorpusError(f"run '{run_name}': its corpus has no training dialogue pairs to retrieve from")
    return Retriever(train)
