"""The vanishing gradient, measured: how the gradient of a loss fades back in time for each cell.

    python benchmarks/gradients.py [--steps 300] [--windows 10] [--markdown]

Trains a vanilla RNN, an LSTM and a GRU of the same size (1x128) briefly on the built-in Shakespeare, then
for windows of held-out text takes the norm of d(loss at the last position) / d(hidden state t steps back)
(``rnnchat.lm.inspect.gradients_through_time``), as a median over the windows, relative to t = 0. It also
times an inspect pass (``trace``) over 10,000 characters with the default model, 2x256 GRU.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from _common import header, markdown_table, text_table  # also puts the checkout on sys.path

LAGS = (1, 5, 10, 20, 50, 100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--windows", type=int, default=10)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    header(f"gradients through time: 1x128 rnn / lstm / gru, {args.steps} steps on Shakespeare, "
           f"median over {args.windows} held-out windows of 102 characters")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(RNNCHAT_CHECKPOINTS=tmp, RNNCHAT_CACHE=os.path.join(tmp, "cache"))
        from rnnchat.config import TrainConfig
        from rnnchat.lm.config import ModelConfig
        from rnnchat.lm.inspect import gradients_through_time, trace
        from rnnchat.lm.model import RNNLM
        from rnnchat.runs.opened import open_language_model
        from rnnchat.text.load import load_corpus
        from rnnchat.text.split import split_documents
        from rnnchat.train.loop import Trainer

        val = "".join(split_documents(load_corpus("shakespeare"))[1])
        rows = []
        for cell in ("rnn", "lstm", "gru"):
            cfg = TrainConfig(max_steps=args.steps, eval_every=args.steps, sample_length=0, eval_chars=20_000)
            for _ in Trainer("shakespeare", ModelConfig(cell=cell, layers=1, hidden=128, embed=32), cfg,
                             name=cell).run():
                pass
            run = open_language_model(cell)
            curves = []
            for w in range(args.windows):
                start = 1000 + w * 7919
                curves.append(gradients_through_time(run.model, run.tokenizer.encode(val[start:start + 102])))
            g = np.median(np.stack(curves), axis=0)
            rows.append([cell, *(f"{g[lag] / g[0]:.1e}" for lag in LAGS)])
        model = RNNLM(ModelConfig(vocab_size=run.tokenizer.vocab_size)).eval()
        ids = run.tokenizer.encode(val[:10_000])
        t0 = time.perf_counter()
        trace(model, ids)
        seconds = time.perf_counter() - t0
    headers = ["cell", *(f"t = {lag}" for lag in LAGS)]
    print(text_table(headers, rows))
    print(f"\ninspect pass (trace) over 10,000 characters, default 2x256 GRU: {seconds:.2f} s")
    if args.markdown:
        print()
        print(markdown_table(headers, rows))


if __name__ == "__main__":
    main()
