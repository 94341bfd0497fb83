"""Your own small corpus: from the built-in base model against from scratch, the same minutes each, one after
another in one run, on corpora of genres the base never read.

    python benchmarks/finetune.py [--minutes 5] [--corpora licences,fortunes] [--sides scratch,base]
                                  [--base base] [--markdown] [--json]

Corpora, built at run time from what the machine has (nothing is committed; the held-out texts are not
in the base's training text):
- licences: the licence texts Debian ships in /usr/share/common-licenses (legal prose; 237 KB, 13 files);
- fortunes: six files of Debian's ``fortunes`` package (``apt-get install fortunes``): wisdom, work, science,
  education, food, humorists (quotations and jokes separated by ``%`` lines; 415 KB);
- fortunes@KB: the first KB kilobytes of those six and four more (people, computers, literature, definitions:
  1 MB in all), taking one fortune from each file in turn, for the table by corpus size.

Each side is ``rnnchat train CORPUS --minutes M --json`` in a fresh interpreter with the defaults, plus
``--init-from BASE`` for the base side; a side written ``name:OPTIONS`` adds options (e.g.
``base-lr1e-3:--init-from base --lr 1e-3``). Both sides split the corpus the same way, so held-out bits per
character compare directly. Printed per corpus and side: steps, the best held-out loss (bits/char) and its
step, the train and held-out loss at the last evaluation and their gap (nats), the difference from scratch,
and 300 sampled characters from the best checkpoint (temperature 0.8, seed 1).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import header, markdown_table, progress, text_table

LICENCES = Path("/usr/share/common-licenses")
FORTUNES = Path("/usr/share/games/fortunes")
FORTUNE_FILES = ("wisdom", "work", "science", "education", "food", "humorists")
FORTUNE_POOL = FORTUNE_FILES + ("people", "computers", "literature", "definitions")


def fortune_cut(kilobytes: int) -> str:
    """The first ``kilobytes`` KB of the pool, one fortune from each file in turn (so a small cut has every topic)."""
    lists = [(FORTUNES / f).read_text(encoding="utf-8", errors="replace").split("\n%\n") for f in FORTUNE_POOL]
    out, size, i = [], 0, 0
    while size < kilobytes * 1000 and any(i < len(x) for x in lists):
        for entries in lists:
            if i < len(entries) and size < kilobytes * 1000:
                out.append(entries[i].strip("\n%") + "\n%\n")
                size += len(out[-1].encode())
        i += 1
    return "".join(out)
NATS_TO_BITS = 1 / 0.6931471805599453


def build(name: str, folder: Path) -> Path:
    """Write corpus ``name`` into ``folder``; SystemExit with what to install when its source is missing."""
    folder.mkdir(parents=True)
    if name.startswith("fortunes@"):
        if not all((FORTUNES / f).is_file() for f in FORTUNE_POOL):
            raise SystemExit("fortunes: install Debian's fortunes package (apt-get install fortunes)")
        (folder / "fortunes.txt").write_text(fortune_cut(int(name.partition("@")[2])), encoding="utf-8")
        return folder
    if name == "licences":
        files = [p for p in sorted(LICENCES.iterdir()) if p.is_file() and not p.is_symlink()] \
            if LICENCES.is_dir() else []
    elif name == "fortunes":
        files = [FORTUNES / f for f in FORTUNE_FILES if (FORTUNES / f).is_file()]
        if len(files) < len(FORTUNE_FILES):
            raise SystemExit("fortunes: install Debian's fortunes package (apt-get install fortunes)")
    else:
        raise SystemExit(f"unknown corpus {name!r} (licences, fortunes)")
    if not files:
        raise SystemExit(f"{name}: no files found")
    for f in files:
        (folder / f"{f.name}.txt").write_text(f.read_text(encoding="utf-8", errors="replace"), encoding="utf-8")
    return folder


def rnnchat(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnnchat", *args], capture_output=True, text=True, env=env)


def side(corpus: Path, label: str, options: list[str], minutes: float, env: dict) -> dict:
    """Train one side and read its figures from the JSON events; sample from its best checkpoint."""
    name = f"{corpus.name}-{label}"
    proc = rnnchat("train", str(corpus), "--minutes", str(minutes), "--name", name, "--json", *options, env=env)
    if proc.returncode:
        raise SystemExit(f"{name}: rnnchat train failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    events = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
    started = next(e for e in events if e["event"] == "started")
    evals = [e for e in events if e["event"] == "eval"]
    done = next(e for e in events if e["event"] == "done")
    best = min(evals, key=lambda e: e["val_loss"])
    last = evals[-1]
    sample = rnnchat("generate", name, "--length", "300", "--temperature", "0.8", "--seed", "1", env=env)
    return {"side": label, "options": " ".join(options), "parameters": started["parameters"],
            "preset": started.get("preset", ""), "steps": done["step"], "reason": done["reason"],
            "best_bits": done["best_bits_per_char"], "best_step": best["step"],
            "end_train": last["train_loss"], "end_val": last["val_loss"],
            "end_gap": last["val_loss"] - last["train_loss"], "sample": sample.stdout.strip()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5)
    ap.add_argument("--corpora", default="licences,fortunes")
    ap.add_argument("--sides", default="scratch,base", help="scratch, base, or NAME:OPTIONS (comma-separated)")
    ap.add_argument("--base", default="base", help="the run the base side starts from")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    info = header("fine-tuning from the base vs from scratch")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "RNNCHAT_CHECKPOINTS": str(Path(tmp) / "runs")}
        for corpus_name in args.corpora.split(","):
            corpus = build(corpus_name, Path(tmp) / corpus_name.replace("@", "-"))
            size = sum(p.stat().st_size for p in corpus.iterdir())
            rows = []
            for spec in args.sides.split(","):
                label, _, extra = spec.partition(":")
                options = extra.split() if extra else (["--init-from", args.base] if label == "base" else [])
                progress(f"{corpus_name} ({size:,} bytes): {label} {' '.join(options)}, {args.minutes:g} min")
                rows.append(side(corpus, label, options, args.minutes, env))
                progress(f"  best {rows[-1]['best_bits']:.3f} bits/char at step {rows[-1]['best_step']}, "
                         f"end gap {rows[-1]['end_gap']:.3f} nats")
            results[corpus_name] = {"bytes": size, "sides": rows}
    if args.json:
        print(json.dumps({"machine": info, "minutes": args.minutes, "results": results}))
        return
    table = markdown_table if args.markdown else text_table
    for corpus_name, res in results.items():
        scratch = next((r for r in res["sides"] if r["side"] == "scratch"), None)
        print(f"\n{corpus_name}: {res['bytes']:,} bytes, {args.minutes:g} minutes a side")
        print(table(["side", "steps", "best bits/char", "at step", "end train", "end held-out", "gap (nats)",
                     "vs scratch"],
                    [[r["side"], r["steps"], f"{r['best_bits']:.3f}", r["best_step"], f"{r['end_train']:.3f}",
                      f"{r['end_val']:.3f}", f"{r['end_gap']:.3f}",
                      f"{r['best_bits'] - scratch['best_bits']:+.3f}" if scratch else ""] for r in res["sides"]]))
        for r in res["sides"]:
            print(f"\n{r['side']} ({r['preset']}):\n{r['sample']}")


if __name__ == "__main__":
    main()
