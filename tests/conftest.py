"""Shared test helpers. Every test gets its own corpora/, checkpoints/ and token cache, so nothing touches
the user's; small generated texts, the fast CLI options and waiting on the app live here for every folder."""

from __future__ import annotations

import json
import random
import time

import pytest


@pytest.fixture(autouse=True)
def isolated_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNCHAT_CORPORA", str(tmp_path / "corpora"))
    monkeypatch.setenv("RNNCHAT_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("RNNCHAT_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def make_play_text(lines: int = 400, seed: int = 0) -> str:
    """A small invented play with regular structure, so a tiny model's loss falls within seconds."""
    rng = random.Random(seed)
    names = ["ALDO", "BRINA", "CORVIN"]
    verbs = ["sees", "holds", "loves", "fears", "keeps"]
    nouns = ["the moon", "a crown", "the sea", "my hand", "the door"]
    out = []
    for _ in range(lines):
        out.append(f"{rng.choice(names)}:\nI {rng.choice(verbs).rstrip('s')} {rng.choice(nouns)}, "
                   f"and {rng.choice(names).title()} {rng.choice(verbs)} {rng.choice(nouns)}.\n")
    return "\n".join(out)


COMMON_WORDS = "the a of and to in is it that was he for on are as with his they at be this from".split()


def write_x_or_z(path, texts: int, seed: int = 0):
    """A .tsv of ``texts`` texts of common words, each holding one 'x' (label ex) or one 'z' (label zed)
    somewhere: two labels a tiny classifier tells apart within a few steps. Returns ``path``."""
    rng = random.Random(seed)
    rows = ["text\tlabel"]
    for _ in range(texts):
        label = rng.choice(["ex", "zed"])
        words = [rng.choice(COMMON_WORDS) for _ in range(rng.randint(4, 10))]
        words.insert(rng.randrange(len(words) + 1), "x" if label == "ex" else "z")
        rows.append(f"{' '.join(words)}\t{label}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path

@pytest.fixture
def play_file(tmp_path):
    path = tmp_path / "play.txt"
    path.write_text(make_play_text(), encoding="utf-8")
    return path


# Options that make `rnnchat train` take a second: a tiny model on a tiny window.
FAST = ["--layers", "1", "--hidden", "48", "--embed", "16", "--seq-len", "32", "--batch-size", "16",
        "--eval-chars", "2000", "--sample-length", "30", "--precision", "fp32", "--lr", "1e-2",
        "--warmup-steps", "5"]


def json_events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


async def wait_for(pilot, condition, timeout: float = 60.0, what: str = "condition") -> None:
    """Let the app run until ``condition()`` holds; fail after ``timeout`` seconds saying ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


@pytest.fixture
def no_speed_probe(monkeypatch):
    """The Train tab measures real training speed on the torch thread; tests that don't look at it skip it."""
    monkeypatch.setattr("rnnchat.train.speed.estimate_tokens_per_s", lambda model, train: 12345.0)
