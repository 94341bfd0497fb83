"""Every test gets its own corpora/, checkpoints/ and token cache, so nothing touches the user's."""

from __future__ import annotations

import random

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


@pytest.fixture
def play_file(tmp_path):
    path = tmp_path / "play.txt"
    path.write_text(make_play_text(), encoding="utf-8")
    return path
