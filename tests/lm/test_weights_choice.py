"""The sampler's choice of weights: measured once per shape and machine, kept in a JSON file in the cache
folder, and read back. The timer is replaced, so no test depends on which copy is faster here."""

from __future__ import annotations

import json
import os

import pytest
import torch

from rnnchat.lm import int8, weights_choice
from rnnchat.lm.config import ModelConfig, SampleConfig
from rnnchat.lm.generate import generate
from rnnchat.lm.model import RNNLM
from rnnchat.lm.stepper import FastStepper
from rnnchat.text.tokenizers import CharTokenizer

needs_int8 = pytest.mark.skipif(not int8.available(), reason="PyTorch's x86 (fbgemm) quantized engine is not here")


def model(hidden: int = 32, cell: str = "gru") -> RNNLM:
    torch.manual_seed(0)
    return RNNLM(ModelConfig(vocab_size=20, cell=cell, layers=2, hidden=hidden, embed=8)).eval()


class FakeTimer:
    """Says the kinds of ``faster``'s weights take 1 us a step and the others 2 us, after stepping each once."""

    def __init__(self, faster: str):
        self.faster, self.calls = faster, 0

    def __call__(self, steps, ids):
        self.calls += 1
        for step in steps.values():
            step(ids[0])
        return {name: 1e-6 if name.split("-")[0] == self.faster else 2e-6 for name in steps}


def refuse(steps, ids):
    raise AssertionError("measured when it should not have been")


@pytest.fixture
def timer(monkeypatch):
    def use(fake):
        monkeypatch.setattr(weights_choice, "time_steps", fake)
        return fake
    yield use
    weights_choice.forget()


@needs_int8
@pytest.mark.parametrize("faster", ["int8", "fp32"])
def test_the_measured_faster_copy_is_taken_cached_and_reused(timer, faster):
    fake = timer(FakeTimer(faster))
    assert FastStepper(model()).weights == faster
    assert fake.calls == 1
    data = json.loads(weights_choice.cache_path().read_text())
    (entry,) = data["choices"].values()
    kinds = {"fp32-blas", "int8"} | ({"fp32-split"} if torch.get_num_threads() > 1 else set())
    assert entry["weights"].split("-")[0] == faster and set(entry["us_per_step"]) == kinds
    assert FastStepper(model()).weights == faster          # a new model of the same shape: no new timing
    weights_choice.forget()                                # a new process: read from the file
    timer(refuse)
    assert FastStepper(model()).weights == faster


@needs_int8
def test_each_shape_threads_and_cpu_is_measured_on_its_own(timer, monkeypatch):
    fake = timer(FakeTimer("int8"))
    FastStepper(model(32))
    FastStepper(model(48))
    FastStepper(model(32, "lstm"))
    assert fake.calls == 3
    key = weights_choice.shape_key("gru", 2, 32, 20)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 7)
    assert weights_choice.shape_key("gru", 2, 32, 20) != key
    monkeypatch.setattr(weights_choice, "cpu_flags", lambda: frozenset({"avx2", "avx512_vnni"}))
    assert weights_choice.shape_key("gru", 2, 32, 20) not in (key, weights_choice.shape_key("gru", 2, 32, 20) + "x")
    assert len(json.loads(weights_choice.cache_path().read_text())["choices"]) == 3


@needs_int8
def test_exact_and_explicit_weights_are_never_measured(timer):
    timer(refuse)
    tok = CharTokenizer.train(["abcdefghijklmnopq"])
    m = RNNLM(ModelConfig(vocab_size=tok.vocab_size, cell="lstm", layers=1, hidden=16, embed=8)).eval()
    *_, done = generate(m, tok, SampleConfig(length=5, exact=True, seed=1))
    assert done.weights == "fp32"
    assert FastStepper(m, "int8").weights == "int8" and FastStepper(m, "fp32").weights == "fp32"
    assert not weights_choice.cache_path().exists()


def test_fp32_without_int8_products(timer, monkeypatch):
    # Without int8 only the float32 kinds compete: none at one thread, BLAS against the split with more.
    timed = []
    timer(lambda steps, ids: timed.append(set(steps)) or {name: 1e-6 for name in steps})
    monkeypatch.setattr(int8, "available", lambda: False)
    assert FastStepper(model()).weights == "fp32"
    assert timed == ([] if torch.get_num_threads() == 1 else [{"fp32-blas", "fp32-split"}])
    with pytest.raises(ValueError, match="int8"):
        FastStepper(model(), "int8")


@needs_int8
@pytest.mark.parametrize("content", [
    b"not json {", b"\xff\xfe\x00", b"[]", b'{"format": 1, "choices": []}', b'{"format": 99, "choices": {}}',
    b"[" * 100_000, b'{"format": 1, "choices": {"KEY": {"weights": "rm -rf"}}}',
    b'{"format": 1, "choices": {"KEY": "int8"}}', b" " * (1 << 20),
])
def test_a_corrupt_or_hostile_file_is_measured_again(timer, content):
    path = weights_choice.cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.replace(b"KEY", weights_choice.shape_key("gru", 2, 32, 20).encode()))
    fake = timer(FakeTimer("int8"))
    assert FastStepper(model()).weights == "int8"
    assert fake.calls == 1
    assert json.loads(path.read_text())["format"] == weights_choice.FORMAT    # rewritten whole


@needs_int8
def test_a_link_or_an_unwritable_cache_is_no_crash(timer, tmp_path, monkeypatch):
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"format": 1, "choices": {
        weights_choice.shape_key("gru", 2, 32, 20): {"weights": "int8"}}}))
    path = weights_choice.cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)
    fake = timer(FakeTimer("fp32"))
    assert FastStepper(model()).weights == "fp32"          # the link is not read
    assert fake.calls == 1
    weights_choice.forget()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("RNNCHAT_CACHE", str(blocker / "cache"))   # a folder that cannot be made
    assert FastStepper(model()).weights == "fp32"


def test_the_real_timer_times_every_copy():
    calls = {"a": 0, "b": 0}

    def step(name):
        def run(i):
            calls[name] += 1
        return run

    seconds = weights_choice.time_steps({"a": step("a"), "b": step("b")}, [1, 2, 3])
    assert set(seconds) == {"a", "b"} and all(0 < s < 1 for s in seconds.values())
    assert 25 <= calls["a"] <= 1 + 5 * 60 and 25 <= calls["b"] <= 1 + 5 * 60
