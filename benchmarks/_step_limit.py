"""The fastest a batch-1 sampling step could be on this machine, and where a measured step's time goes.

A float32 step reads every weight once (each layer's (H + 1, N) product matrix and one row of the input
table): too many bytes for one core's L2, so they stream from L3 at every token. The floor of a step is those
bytes over the read bandwidth this machine reaches on a working set of that size, measured here by BLAS dot
products over a buffer of the same size (one thread, and two threads each reading half of it).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import torch

from rnnchat.events import Token
from rnnchat.lm.config import SampleConfig
from rnnchat.lm.generate import generate
from rnnchat.lm.stepper import FastStepper
from rnnchat.sampling import LiveControls, TokenFilter


def weight_bytes(stepper: FastStepper) -> int:
    """Bytes of weights one step reads, from the packed stepper's arrays (its private ``_p``)."""
    p = stepper._p
    row = p.table.shape[1] * p.table.itemsize
    if p.full is not None:
        return row + sum(m.nbytes for m in p.full)
    if p.mats is not None:
        return row + sum(m.numel() * m.element_size() for m in p.mats)
    return row + sum(rows * (cols + 8) for rows, cols in (q.shape for q in p.int8))   # int8, a scale and bias a row


def _dot_seconds(parts: list[tuple[np.ndarray, np.ndarray]], repeats: int, trials: int) -> float:
    """Least seconds for every thread (one per part) to run ``repeats`` dot products of its part, together."""
    if len(parts) == 1:
        a, b = parts[0]
        best = float("inf")
        for _ in range(trials):
            t0 = time.perf_counter()
            for _ in range(repeats):
                np.dot(a, b)
            best = min(best, time.perf_counter() - t0)
        return best
    gate = threading.Barrier(len(parts))
    spans: list[list[tuple[float, float]]] = [[] for _ in parts]

    def work(k: int) -> None:
        a, b = parts[k]
        for _ in range(trials):
            gate.wait()
            t0 = time.perf_counter()            # each thread's own clock: a thread waiting for the GIL starts late
            for _ in range(repeats):
                np.dot(a, b)                    # numpy lets go of the GIL inside BLAS
            spans[k].append((t0, time.perf_counter()))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(parts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # A trial lasts from its first thread's start to its last thread's end.
    return min(max(s[i][1] for s in spans) - min(s[i][0] for s in spans) for i in range(trials))


def read_bandwidth(nbytes: int, threads: int, repeats: int = 200, trials: int = 7) -> float:
    """Bytes a second that ``threads`` threads read from a float32 buffer of ``nbytes``, each its own share
    (BLAS sdot of the share's two halves), warm, best of ``trials``. Run it with one BLAS thread
    (OMP_NUM_THREADS=1), so that a dot is not split again inside the library."""
    n = max(2 * threads, nbytes // 4 // (2 * threads) * (2 * threads))
    buf = np.random.default_rng(0).random(n, dtype=np.float32)
    share = n // threads
    parts = [(buf[i * share:i * share + share // 2], buf[i * share + share // 2:(i + 1) * share])
             for i in range(threads)]
    _dot_seconds(parts, 5, 1)                                   # warm the caches and threads
    return n * 4 * repeats / _dot_seconds(parts, repeats, trials)


def ceiling(nbytes: int, bandwidth: float, overhead_us: float = 0.0, chars_per_token: float = 1.0) -> dict:
    """The fastest step reading ``nbytes`` at ``bandwidth`` bytes/s (µs), plus ``overhead_us`` of work outside
    the products, and the characters a second that implies."""
    us = nbytes / bandwidth * 1e6 + overhead_us
    return {"us_per_step": us, "chars_per_s": chars_per_token * 1e6 / us}


def breakdown(model, tokenizer, tokens: int, temperature: float, repeats: int = 3) -> dict:
    """µs a token of generate(exact=True), and its parts: the products alone, the gates (the stepper's step less
    its products), the token filter's pick on fixed logits, the loop of step and pick alone less those two
    (what each costs the other, mostly caches), and the events (generate less that loop: decoding, the Token,
    the generator, the Stream); each the best of ``repeats`` runs over ``tokens`` tokens."""
    stepper = FastStepper(model, "fp32")
    with torch.inference_mode():
        logits = stepper.prime([0]).copy()
    ids = np.random.default_rng(0).integers(2, stepper.vocab_size, tokens).tolist()
    prods = stepper._prods
    step = stepper.step

    def per_token(fn) -> float:
        fn()
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t0)
        return min(runs) / tokens * 1e6

    def products() -> None:
        for _ in ids:
            for prod in prods:
                prod()

    def steps() -> None:
        for i in ids:
            step(i)

    pick = TokenFilter(stepper.vocab_size, 1).pick
    controls = LiveControls(temperature)

    def picks() -> None:
        for _ in ids:
            pick(logits, controls)

    def loop() -> None:
        pick_loop = TokenFilter(stepper.vocab_size, 1).pick
        x = stepper.prime([0])
        for _ in ids:
            x = step(pick_loop(x, controls))

    chars = []

    def whole() -> None:
        n = 0
        for ev in generate(model, tokenizer, SampleConfig(length=tokens, temperature=temperature, seed=1,
                                                          exact=True)):
            if isinstance(ev, Token):
                n += len(ev.text)
        chars.append(n)

    got = {"products": per_token(products), "step": per_token(steps), "filter": per_token(picks),
           "loop": per_token(loop), "generate": per_token(whole)}
    got["gates"] = got["step"] - got["products"]
    got["together"] = got["loop"] - got["step"] - got["filter"]
    got["events"] = got["generate"] - got["loop"]
    got["rest"] = got["generate"] - got["step"] - got["filter"]
    got["outside_products"] = got["generate"] - got["products"]
    got["chars_per_token"] = chars[-1] / tokens
    return got
