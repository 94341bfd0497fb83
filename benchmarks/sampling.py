"""Sampling speed at batch 1: a naive per-step nn.LSTM loop vs rnnchat.sampling, side by side.

    python benchmarks/sampling.py [--chars 2000] [--hidden 256] [--layers 2] [--cell lstm] [--json]

The model has random weights (the speed of a step does not depend on their values) and a character
vocabulary of 65 (63 printable characters plus the two reserved ids). Measured, each after a warm-up,
best of --repeats runs:

(a) naive: ``model.embed`` -> ``model.rnn`` (the nn.LSTM/GRU/RNN module) -> ``model.head`` per token,
    softmax and ``torch.multinomial``, decoding each token to text, under ``torch.inference_mode``;
(b) ours: ``rnnchat.sampling.generate`` through its public API (tokenizer decoding, Token events);
(c) stepper: ``FastStepper.step`` alone over a fixed id sequence (the model compute, no sampling).

First-char latency is the time from the start of a (warm) generation to the first decoded token.
"""

from __future__ import annotations

import argparse
import json
import string
import time

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import machine_info, machine_line, today  # also puts the checkout on sys.path

from rnnchat.events import Token  # noqa: E402
from rnnchat.lm.config import ModelConfig, SampleConfig  # noqa: E402
from rnnchat.lm.generate import generate
from rnnchat.lm.model import RNNLM  # noqa: E402
from rnnchat.lm.stepper import FastStepper  # noqa: E402
from rnnchat.text.tokenizers import EOD, CharTokenizer  # noqa: E402


def naive(model: RNNLM, tokenizer, n: int, temperature: float, seed: int) -> tuple[float, float, int]:
    """(seconds, first-char seconds, chars) for n tokens sampled the obvious way."""
    gen = torch.Generator().manual_seed(seed)
    feed = tokenizer.decoder().feed
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            t0 = time.perf_counter()
            first = None
            x = torch.tensor([[EOD]])
            state = None
            pieces = []
            for _ in range(n):
                out, state = model.rnn(model.embed(x), state)
                logits = model.head(out[:, -1])
                probs = torch.softmax(logits / temperature, dim=-1)
                x = torch.multinomial(probs, 1, generator=gen)
                pieces.append(feed(int(x)))
                if first is None:
                    first = time.perf_counter() - t0
            seconds = time.perf_counter() - t0
    finally:
        model.train(was_training)
    return seconds, first, len("".join(pieces))


def ours(model: RNNLM, tokenizer, n: int, temperature: float, seed: int) -> tuple[float, float, int]:
    cfg = SampleConfig(length=n, temperature=temperature, seed=seed)
    t0 = time.perf_counter()
    first = None
    chars = 0
    for ev in generate(model, tokenizer, cfg):
        if isinstance(ev, Token):
            chars += len(ev.text)
            if first is None:
                first = time.perf_counter() - t0
    return time.perf_counter() - t0, first, chars


def stepper_only(model: RNNLM, ids: list[int]) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    stepper = FastStepper(model)
    stepper.prime([EOD])
    first = time.perf_counter() - t0
    step = stepper.step
    t1 = time.perf_counter()
    for i in ids:
        step(i)
    return time.perf_counter() - t1, first, len(ids)


def best(fn, repeats: int) -> tuple[float, float, int]:
    fn()                                                        # warm-up
    runs = [fn() for _ in range(repeats)]
    return min(r[0] for r in runs), min(r[1] for r in runs), runs[0][2]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chars", type=int, default=2000, help="tokens to sample per run (default 2000)")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--cell", choices=("lstm", "gru", "rnn"), default="lstm")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per variant; the best is reported")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    tokenizer = CharTokenizer.train([string.printable[:63]])
    model = RNNLM(ModelConfig(vocab_size=tokenizer.vocab_size, cell=args.cell, layers=args.layers,
                              hidden=args.hidden, embed=args.embed, dropout=0.0))
    n = args.chars
    ids = np.random.default_rng(0).integers(2, tokenizer.vocab_size, n).tolist()

    a = best(lambda: naive(model, tokenizer, n, args.temperature, 1), args.repeats)
    b = best(lambda: ours(model, tokenizer, n, args.temperature, 1), args.repeats)
    c = best(lambda: stepper_only(model, ids), args.repeats)

    result = {
        "date": today(), "machine": machine_info("cpu"),
        "model": {"cell": args.cell, "layers": args.layers, "hidden": args.hidden, "embed": args.embed,
                  "vocab": tokenizer.vocab_size, "parameters": model.num_parameters(),
                  "weights": "random (torch.manual_seed(0))"},
        "tokens": n, "temperature": args.temperature,
        "naive": {"chars_per_s": a[2] / a[0], "tokens_per_s": n / a[0], "first_char_ms": a[1] * 1e3},
        "ours": {"chars_per_s": b[2] / b[0], "tokens_per_s": n / b[0], "first_char_ms": b[1] * 1e3},
        "stepper": {"steps_per_s": n / c[0], "us_per_step": c[0] / n * 1e6, "build_and_prime_ms": c[1] * 1e3},
    }
    result["speedup_ours_over_naive"] = result["ours"]["tokens_per_s"] / result["naive"]["tokens_per_s"]

    if args.json:
        print(json.dumps(result, indent=2))
    else:
        m, mo = result["machine"], result["model"]
        print(f"date:    {result['date']}")
        print(f"machine: {machine_line(m)}")
        print(f"model:   {mo['layers']}x{mo['hidden']} {mo['cell']}, embed {mo['embed']}, vocab {mo['vocab']}, "
              f"{mo['parameters']:,} parameters, {mo['weights']}")
        print(f"sampling {n} tokens at temperature {args.temperature}, best of {args.repeats} after a warm-up\n")
        print(f"{'':34}{'chars/s':>10}{'tokens/s':>10}{'first char':>12}")
        for label, key in (("(a) naive nn.Module + multinomial", "naive"), ("(b) ours: generate()", "ours")):
            r = result[key]
            print(f"{label:34}{r['chars_per_s']:10,.0f}{r['tokens_per_s']:10,.0f}{r['first_char_ms']:9.2f} ms")
        s = result["stepper"]
        print(f"{'(c) FastStepper.step alone':34}{'':10}{s['steps_per_s']:10,.0f}{s['build_and_prime_ms']:9.2f} ms"
              f"  ({s['us_per_step']:.1f} us/step; latency = build + prime)")
        print(f"\nours / naive: {result['speedup_ours_over_naive']:.1f}x")
    return result


if __name__ == "__main__":
    main()
