"""A chat run's replies to everyday prompts, the model's own beside the default's, each with its source mark.

    python benchmarks/chat_side_by_side.py RUN [--seed 1] [--json]

Asks the real ``rnnchat chat RUN --json`` twice, once with ``--candidates model`` (the model's own sampled
replies: the default before 2026-12-04) and once as a user gets it with no flag (retrieval: the replies of
similar prompts among the run's dialogue pairs and the model's beams, reranked). ``/reset`` comes after every
prompt, so each reply reads its prompt alone, as the first message of a chat does. Two fixed lists: the ten
openers below, the 20 everyday prompts of ``chat_quality.py``, and ``BLIND``. Whether a reply is sensible is a person's
judgement: the table leaves a column for it and the count goes in the journal.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from _common import header, markdown_table
from chat_quality import EVERYDAY

# Ten everyday openers of a first chat, none copied from the corpus (the built-in dialogues).
PROMPTS = ["Hi, how are you?", "What is your name?", "Do you like music?", "Tell me a joke.",
           "What do you do for a living?", "Are you a robot?", "What is your favourite food?", "I feel sad today.",
           "Can you help me?", "Thanks, goodbye!"]
# Twenty first messages written blind (2026-12-04): by someone who had seen neither the dialogue data nor the
# lists above, after rnnchat's small talk (rnnchat/text/smalltalk/) was written; kept as written, case and all.
BLIND = ["hi", "hello there!", "what's your name?", "what can you do?", "are you a real person or a bot?",
         "how are you doing today?", "who made you?", "I'm feeling kind of tired today", "can you tell me a joke?",
         "what's the weather like?", "hmm not sure what to ask", "i had a pretty rough day at work", "what time is it",
         "do you like music?", "that's cool", "you're funny lol", "can you help me with something?", "thanks!",
         "ok thank you so much", "bye, see you later"]


def replies(run: str, flags: list[str], prompts: list[str]) -> tuple[list[dict], str]:
    """One JSON record per prompt from ``rnnchat chat RUN --json FLAGS`` (and what it said on stderr)."""
    lines = "".join(f"{p}\n/reset\n" for p in prompts)
    proc = subprocess.run([sys.executable, "-m", "rnnchat", "chat", run, "--json", *flags], input=lines,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode:
        sys.exit(f"rnnchat chat failed ({proc.returncode}): {proc.stderr.strip()}")
    said = "\n".join(line for line in proc.stderr.splitlines() if line != "conversation cleared")
    return [json.loads(line) for line in proc.stdout.splitlines()], said


def cell(record: dict, width: int = 90) -> str:
    """A reply on one line (the model's text through the sanitiser, cut at ``width``), then its source mark."""
    from rnnchat.safetext import neutralise

    text = " / ".join(line.strip() for line in record["reply"].splitlines() if line.strip()) or "(empty)"
    text = neutralise(text if len(text) <= width else text[:width - 1] + "…")
    return f"{text} *{record.get('source', '?')}*"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="a chat run's name or directory")
    ap.add_argument("--seed", type=int, default=1, help="the model's sampling seed (the default's search is exact)")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    args = ap.parse_args()
    if not args.json:
        header("Chat replies side by side (benchmarks/chat_side_by_side.py)")
    prompts = PROMPTS + EVERYDAY + BLIND
    model, model_notes = replies(args.run, ["--candidates", "model", "--seed", str(args.seed)], prompts)
    default, default_notes = replies(args.run, ["--seed", str(args.seed)], prompts)
    if args.json:
        print(json.dumps({"prompts": PROMPTS, "everyday": EVERYDAY, "blind": BLIND, "model": model, "default": default,
                          "notes": {"model": model_notes, "default": default_notes}}, ensure_ascii=False))
        return
    for notes in (model_notes, default_notes):
        if notes.strip():
            print(f"stderr: {notes.strip()}")
    lists, lo = [], 0
    for title, part in (("Ten openers (PROMPTS)", PROMPTS), ("chat_quality.py's EVERYDAY", EVERYDAY),
                        ("Twenty written blind (BLIND)", BLIND)):
        lists.append((title, lo, lo + len(part)))
        lo += len(part)
    for title, lo, hi in lists:
        print(f"\n{title}\n")
        print(markdown_table(["prompt", "model only (`--candidates model`)", "default (retrieval)"],
                             [[p, cell(m), cell(d)] for p, m, d in zip(prompts[lo:hi], model[lo:hi], default[lo:hi])]))
        sources = [d.get("source") for d in default[lo:hi]]
        print(f"\ndefault: {sources.count('retrieved')} retrieved, {sources.count('model')} written by the model")


if __name__ == "__main__":
    main()
