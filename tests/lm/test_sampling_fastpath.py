"""The batch-1 fast path (numpy BLAS products, the fused token filter) samples what the model says.

Each model is trained for a few dozen steps on a text this file writes, so its next-token distributions are
peaked and varied like a real model's. Checked against torch's own forward pass and a float64 reference
sampler that reads the same uniform numbers: the distributions per step, the sampled tokens, their
probabilities, and that both float32 product kinds sample the same text for a seed.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch

from rnnchat.lm import weights_choice
from rnnchat.lm.config import ModelConfig, SampleConfig
from rnnchat.lm.generate import generate
from rnnchat.lm.model import RNNLM
from rnnchat.lm.stepper import FastStepper
from rnnchat.sampling import LiveControls, TokenFilter
from rnnchat.text.tokenizers import CharTokenizer
from rnnchat.vocab import EOD, UNK

STEPS = 300


def corpus() -> str:
    words = ["river", "stone", "lantern", "quiet", "harbour", "north", "salt", "window", "morning", "rope"]
    rng = np.random.default_rng(11)
    lines = []
    for _ in range(120):
        picked = rng.choice(words, size=int(rng.integers(3, 8)))
        lines.append(" ".join(picked).capitalize() + rng.choice([".", "!", "?", ","]))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def tok() -> CharTokenizer:
    return CharTokenizer.train([corpus()])


@functools.lru_cache(maxsize=None)
def trained(cell: str, layers: int, hidden: int = 48) -> RNNLM:
    """A small model after 80 Adam steps on windows of the written corpus."""
    tokenizer = CharTokenizer.train([corpus()])
    ids = torch.tensor(tokenizer.encode(corpus()), dtype=torch.long)
    torch.manual_seed(3)
    model = RNNLM(ModelConfig(vocab_size=tokenizer.vocab_size, cell=cell, layers=layers, hidden=hidden,
                              embed=16, dropout=0.0))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(4)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)               # tiny ops: a second thread only waits (for a busy core, at worst)
    try:
        for _ in range(80):
            starts = torch.randint(0, len(ids) - 33, (16,), generator=gen)
            x = torch.stack([ids[s:s + 32] for s in starts])
            y = torch.stack([ids[s + 1:s + 33] for s in starts])
            logits, _ = model(x)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def softmax64(z: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(z, np.float64).copy()
    z[UNK] = -np.inf
    z = (z - z.max()) / temperature
    p = np.exp(z)
    return p / p.sum()


def reference_pick(logits: np.ndarray, u: float, temperature: float, top_k: int, top_p: float
                   ) -> tuple[int | None, np.ndarray]:
    """The token inverse-CDF sampling picks in float64 (None when u lies within 1e-5 of a boundary, where
    float32 rounding may go either way), and the model's own probability of each token at temperature 1.
    The CDF runs in the filter's order: by id, by probability under top-p, argpartition's under top-k alone."""
    if temperature <= 0:
        p = softmax64(logits)
        return int(p.argmax()), p
    p = softmax64(logits, temperature)
    V = len(p)
    by_prob = np.argsort(-p, kind="stable")
    keep = np.ones(V, bool)
    if 0 < top_k < V - 1:
        keep[:] = False
        keep[by_prob[:top_k]] = True
    order = np.arange(V)
    if top_p < 1:
        kept = by_prob[keep[by_prob]]
        cum = np.cumsum(p[kept])
        order = kept[:int(np.searchsorted(cum, top_p * cum[-1], "left")) + 1]
    elif 0 < top_k < V - 1:
        d = np.asarray(logits, np.float32).copy()
        d[UNK] = -np.inf
        d -= d.max()
        order = np.argpartition(d, V - top_k)[V - top_k:]
        assert set(order.tolist()) == set(np.flatnonzero(keep).tolist())
    cdf = np.cumsum(p[order])
    cdf /= cdf[-1]
    if np.abs(cdf - u).min() < 1e-5:
        return None, softmax64(logits)
    return int(order[np.searchsorted(cdf, u, "right")]), softmax64(logits)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("kind", ["fp32-blas", "fp32-split"])
def test_fast_stepper_gives_the_forward_distribution_at_every_step(cell, layers, kind, tok):
    model = trained(cell, layers)
    events = list(generate(model, tok, SampleConfig(length=STEPS, temperature=0.9, seed=1, exact=True)))
    ids = [EOD] + [e.id for e in events[:-1]]
    with torch.no_grad():
        ref, _ = model(torch.tensor([ids]))
    want = np.stack([softmax64(z) for z in ref[0].numpy()])
    stepper = FastStepper(model, kind)
    got = np.stack([softmax64(stepper.prime([EOD]))] + [softmax64(stepper.step(i)) for i in ids[1:]])
    assert np.abs(got - want).max() < 1e-5
    assert want.max(axis=1).mean() > 0.3                  # trained: peaked distributions, not uniform ones
    # the probability each Token reports is the model's own, at temperature 1
    probs = np.array([e.prob for e in events[:-1]])
    np.testing.assert_allclose(probs, want[np.arange(STEPS), ids[1:]], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, 0, 1.0), (0.8, 0, 1.0), (1.3, 0, 1.0), (0.0, 0, 1.0),
                                                     (0.8, 5, 1.0), (0.8, 0, 0.9), (1.0, 8, 0.8)])
def test_sampled_tokens_are_the_reference_samplers(cell, layers, temperature, top_k, top_p, tok):
    # The filter draws one uniform number per token from default_rng(seed) in blocks: the reference reads
    # the same numbers and inverts the float64 CDF of the model's (filtered, tempered) distribution.
    model = trained(cell, layers)
    seed = 21
    events = list(generate(model, tok, SampleConfig(length=STEPS, temperature=temperature, top_k=top_k,
                                                    top_p=top_p, seed=seed, exact=True)))[:-1]
    ids = [EOD] + [e.id for e in events]
    with torch.no_grad():
        ref, _ = model(torch.tensor([ids]))
    uniforms = np.random.default_rng(seed).random(STEPS + 256)
    compared = 0
    for n, event in enumerate(events):
        want, p = reference_pick(ref[0, n].numpy(), float(uniforms[n]), temperature, top_k, top_p)
        if want is not None:
            assert event.id == want, f"step {n}"
            compared += 1
        assert event.prob == pytest.approx(p[event.id], rel=1e-5, abs=1e-7)
    assert compared >= STEPS - 3
    assert temperature <= 0 or len(set(ids)) > 8           # it did sample, not repeat one token


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("layers", [1, 2])
def test_both_float32_kinds_sample_the_same_text(cell, layers):
    # Numpy's BLAS and torch's bmm add the same products in different orders: the logits differ in the
    # last bits only, so a seed gives the same tokens.
    model = trained(cell, layers)
    texts = []
    for kind in ("fp32-blas", "fp32-split"):
        stepper, pick = FastStepper(model, kind), TokenFilter(model.head.out_features, 5)
        controls = LiveControls(0.8)
        logits, out = stepper.prime([EOD]), []
        for _ in range(STEPS):
            out.append(pick.pick(logits, controls))
            logits = stepper.step(out[-1])
        texts.append(out)
    assert texts[0] == texts[1]


def test_the_filter_follows_a_temperature_changed_while_streaming(tok):
    model = trained("gru", 2)
    controls = LiveControls(0.7)
    stream = generate(model, tok, SampleConfig(length=STEPS, temperature=0.7, seed=9, exact=True), controls=controls)
    events = []
    for event in stream:
        events.append(event)
        if len(events) == STEPS // 2:
            controls.temperature = 1.4
    ids = [EOD] + [e.id for e in events[:-1]]
    with torch.no_grad():
        ref, _ = model(torch.tensor([ids]))
    uniforms = np.random.default_rng(9).random(STEPS + 256)
    compared = 0
    for n, event in enumerate(events[:-1]):
        want, _ = reference_pick(ref[0, n].numpy(), float(uniforms[n]), 0.7 if n < STEPS // 2 else 1.4, 0, 1.0)
        if want is not None:
            assert event.id == want, f"step {n}"
            compared += 1
    assert compared >= STEPS - 3


def test_exact_is_the_blas_kind_untimed_and_auto_times_the_split_only_with_threads(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNCHAT_CACHE", str(tmp_path / "cache"))
    weights_choice.forget()
    model = trained("gru", 2)
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            stepper = FastStepper(model, "fp32")
            assert (stepper.weights, stepper.kind) == ("fp32", "fp32-blas")
            assert not weights_choice.cache_path().exists()       # --exact: nothing timed or written
        for n in (1, 2):
            torch.set_num_threads(n)
            FastStepper(model)
        entries = json.loads(weights_choice.cache_path().read_text())["choices"]
        timed = {key.split("/")[2]: set(entry["us_per_step"]) for key, entry in entries.items()}
        assert "fp32-split" not in timed.get("threads-1", set())   # (nothing timed without int8 either)
        assert {"fp32-blas", "fp32-split"} <= timed["threads-2"]
    finally:
        torch.set_num_threads(threads)
        weights_choice.forget()
