"""The retriever of a chat run: the dialogue pairs of its own corpus (checked by content hash), rebuilt
with the run's pair settings and split.

A chat answers from every pair, held-out ones too: the held-out split is there to measure the model's loss,
not to hide answers from the person chatting. Judging replies on held-out pairs (benchmarks/chat_quality.py)
asks for the training pairs alone (``held_out=False``), so no held-out reply can be its own answer."""

from __future__ import annotations

from rnnchat.chat.data import split_of
from rnnchat.chat.retrieve import Retriever
from rnnchat.errors import CorpusError
from rnnchat.runs.meta import RunMeta
from rnnchat.runs.opened import training_corpus


def open_retriever(meta: RunMeta, run_name: str, given: str | None = None, *, held_out: bool = True) -> Retriever:
    """A retriever over the dialogue pairs of the chat run described by ``meta`` (its run.json), from its
    own corpus only (``given`` names where it is now; a changed text is refused): all of them, or with
    ``held_out=False`` its training pairs only."""
    try:
        corpus = training_corpus(meta, given)
    except CorpusError as exc:
        raise CorpusError(f"retrieval needs the training dialogue of run '{run_name}': {exc}") from None
    report, train, _ = split_of(corpus, meta.model, meta.train)
    pairs = list(report.pairs) if held_out else train
    if not pairs:
        raise CorpusError(f"run '{run_name}': its corpus has no training dialogue pairs to retrieve from")
    return Retriever(pairs)
