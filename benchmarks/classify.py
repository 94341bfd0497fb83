"""The classifier on the built-in plays-by-kind: from scratch, and started from a language model of the same plays.

    python benchmarks/classify.py [--minutes 5] [--quick] [--seed 1337] [--eval-chars N] [--json]

One run, each side in its own interpreter through the command line (``rnnchat train ... --json``), in a fresh
checkpoints and cache folder:

1. scratch: ``rnnchat train plays-by-kind --task classify --minutes M`` (the default preset).
2. a language model: ``rnnchat train PLAYS --minutes M`` (the default preset), where PLAYS is the built-in
   ``shakespeare`` text of every play except those whose speeches the classifier holds out (a folder of one
   file per play, written here). The built-in ``shakespeare`` splits by its own rule (every tenth play), which
   is not the classifier's split (whole plays, about 10% of each kind), so trained on as it is, the language
   model would read most of the classifier's held-out speeches; the script checks the two texts are the same
   speeches and says how it made the split consistent.
3. init-from: ``rnnchat train plays-by-kind --task classify --init-from LM --minutes M``.

The figures are each classifier run's held-out accuracy and macro-F1 at its best checkpoint (lowest held-out
loss, what ``rnnchat classify`` opens), beside the two baselines the task computes on the same held-out texts
(the commonest label; logistic regression on character 1-4-gram TF-IDF), and their ratios. Then the time to
classify one held-out speech after loading (median of 50 calls in a fresh interpreter) and of the whole
``rnnchat classify RUN --prompt T`` command (median of 5). ``--quick``: 0.2 minutes a side, to check the script.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, header, progress, text_table, today

CALLS = 50
COMMANDS = 5


def consistent_split(seed: int, folder: Path) -> dict:
    """Write the language model's corpus (every play but the classifier's held-out ones) and check the texts."""
    from rnnchat.classify.data import read_checked
    from rnnchat.runs.kinds import assemble
    from rnnchat.text.labelled import split_labelled
    from rnnchat.text.load import load_corpus
    from rnnchat.text.shakespeare import parse_play_markdown, play_files, shakespeare_documents

    _, cfg = assemble("classify", None, {}, {"seed": seed})
    texts = read_checked(load_corpus("plays-by-kind")).texts
    train_i, val_i = split_labelled(texts, cfg.val_fraction, cfg.seed)
    held = {texts[i].group for i in val_i}
    trained = {texts[i].group for i in train_i}
    assert not held & trained, "a play on both sides of the classifier's split"
    docs = {d.name: d.text for d in shakespeare_documents()}
    missing = sum(1 for t in texts if t.text not in docs.get(t.group, ""))   # the same speeches, word for word
    folder.mkdir(parents=True)
    for name, text in docs.items():
        if name not in held:
            (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    spoken = {s.text for p in play_files() if p.stem not in held
              for s in parse_play_markdown(p.read_text(encoding="utf-8", errors="replace"))}
    leaked = sum(1 for i in val_i if texts[i].text in spoken)
    val = [texts[i] for i in val_i]
    example = next((t.text for t in val if 150 <= len(t.text) <= 180), val[0].text)   # as long as the issue's
    return {"held_out_plays": sorted(held), "lm_plays": len(docs) - len(held), "plays": len(docs),
            "speeches": len(texts), "held_out_speeches": len(val_i), "speeches_not_in_lm_text": missing,
            "held_out_speeches_in_lm_text": leaked, "example": example}


def train(args_list: list[str], env: dict, label: str) -> dict:
    """One ``rnnchat train --json`` run; its evaluations, the best one, steps and times."""
    cmd = [sys.executable, "-m", "rnnchat", "train", *args_list, "--json"]
    progress(f"[{label}] {' '.join(cmd[3:])}")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    evals, started_s, done, warnings = [], None, None, []
    for line in proc.stdout:
        try:
            e = json.loads(line)
        except ValueError:
            continue
        kind = e.get("event")
        if kind == "started":
            started_s = time.perf_counter() - t0
        elif kind == "warning":
            warnings.append(e["message"])
        elif kind == "eval":
            evals.append(e)
            f = e.get("figures") or {}
            progress(f"[{label}] step {e['step']}: loss {e['val_loss']:.4f}"
                     + (f", accuracy {f['accuracy']:.3f}, macro-F1 {f['macro_f1']:.3f}" if "macro_f1" in f else ""))
        elif kind == "done":
            done = e
    if proc.wait() != 0 or done is None or not evals:
        raise SystemExit(f"[{label}] rnnchat train failed (exit code {proc.returncode})")
    best = [e for e in evals if e.get("best")][-1]
    return {"steps": done["step"], "elapsed_s": done["elapsed"], "wall_s": time.perf_counter() - t0,
            "start_s": started_s, "best": best, "last": evals[-1], "warnings": warnings,
            "run_dir": done["run_dir"]}


def latency_child(run: str, text: str) -> None:
    """In a fresh interpreter: open the run, then classify one text CALLS times; prints one JSON line."""
    from rnnchat.classify.predict import probabilities
    from rnnchat.runs.opened import open_run

    t0 = time.perf_counter()
    opened = open_run(run, "best", "classify")
    load_s = time.perf_counter() - t0
    times = []
    for _ in range(CALLS + 3):
        t = time.perf_counter()
        probabilities(opened.model, opened.tokenizer, [text])
        times.append(time.perf_counter() - t)
    times = times[3:]                                  # the first calls warm the allocator and the kernels
    print(json.dumps({"load_s": load_s, "median_ms": 1000 * statistics.median(times),
                      "p90_ms": 1000 * sorted(times)[int(0.9 * len(times))], "min_ms": 1000 * min(times)}))


def latency(run_dir: str, text: str, env: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--latency-child", run_dir, text], env=env, cwd=ROOT,
                         stdout=subprocess.PIPE, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    walls = []
    for _ in range(COMMANDS):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "rnnchat", "classify", run_dir, "--prompt", text], env=env, cwd=ROOT,
                       stdout=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - t)
    result["command_s"] = statistics.median(walls)
    return result


def table(res: dict) -> str:
    best = {"scratch": res["scratch"]["best"], "init-from": res["init"]["best"]}
    base = best["scratch"]["figures"]
    ngram_f1, major_f1 = base["ngram_macro_f1"], base["majority_macro_f1"]
    rows = []

    def row(name, acc, f1, steps=""):
        rows.append([name, f"{acc:.3f}", f"{f1:.3f}", f"{f1 / ngram_f1:.2f}" if ngram_f1 else "-",
                     f"{f1 / major_f1:.2f}" if major_f1 else "-", steps])

    for name, e in best.items():
        f = e["figures"]
        side = res["scratch" if name == "scratch" else "init"]
        row(f"{name} (best, step {e['step']})", f["accuracy"], f["macro_f1"], f"{side['steps']:,}")
    row("majority label", base["majority_accuracy"], major_f1)
    row("char n-gram TF-IDF + logistic", base["ngram_accuracy"], ngram_f1)
    return text_table(["held-out speeches", "accuracy", "macro-F1", "F1 / n-gram", "F1 / majority", "steps"], rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=5.0, help="training time of each of the three runs")
    ap.add_argument("--quick", action="store_true", help="0.2 minutes each: checks the script works")
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--eval-chars", type=int, default=None, help="held-out characters each evaluation reads "
                    "(default: the task's)")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    ap.add_argument("--latency-child", nargs=2, metavar=("RUN", "TEXT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.latency_child:
        return latency_child(*args.latency_child)
    minutes = 0.2 if args.quick else args.minutes
    from rnnchat.device import l2_cache_bytes

    info = header(f"classifier on plays-by-kind: {minutes:g} minutes a run, seed {args.seed}")
    l2 = l2_cache_bytes()
    print(f"L2:      {l2 / 2**20:g} MiB per core")
    with tempfile.TemporaryDirectory(prefix="rnnchat-classify-bench-") as tmp:
        base = Path(tmp)
        env = {**os.environ, "RNNCHAT_CHECKPOINTS": str(base / "runs"), "RNNCHAT_CACHE": str(base / "cache"),
               "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
        split = consistent_split(args.seed, base / "lm-plays")
        common = ["--minutes", f"{minutes:g}", "--seed", str(args.seed)]
        common += ["--eval-chars", str(args.eval_chars)] if args.eval_chars else []
        cls = ["plays-by-kind", "--task", "classify", *common]
        res = {"date": today(), "machine": info, "l2_bytes": l2, "minutes": minutes,
               "split": split}
        res["scratch"] = train([*cls, "--name", "scratch"], env, "scratch")
        res["lm"] = train([str(base / "lm-plays"), *common, "--name", "lm"], env, "language model")
        res["init"] = train([*cls, "--init-from", "lm", "--name", "init"], env, "init-from")
        res["latency"] = latency(res["scratch"]["run_dir"], split["example"], env)
    for side in ("scratch", "init", "lm"):
        res[side].pop("run_dir")
    same = all(res[s]["best"]["figures"].get(k) == res["scratch"]["best"]["figures"].get(k)
               for s in ("init",) for k in ("ngram_macro_f1", "majority_macro_f1"))
    res["baselines_same_in_both_runs"] = same
    if args.json:
        print(json.dumps(res))
        return
    report(res, minutes)


def report(res: dict, minutes: float) -> None:
    s = res["split"]
    print(f"\nsplit:   the classifier holds out {s['held_out_speeches']:,} of {s['speeches']:,} speeches, whole plays: "
          f"{', '.join(s['held_out_plays'])}.")
    print(f"         The built-in 'shakespeare' splits by its own rule (every tenth play) and would train the language "
          f"model on the classifier's held-out speeches, so the language model trains on {s['lm_plays']} of its "
          f"{s['plays']} plays: all but the held-out ones. Checked: {s['held_out_speeches_in_lm_text']} held-out "
          f"speeches "
          f"are spoken in the language model's plays; {s['speeches_not_in_lm_text']} of the classifier's speeches "
          f"are not word for word in their play's 'shakespeare' text.")
    lm = res["lm"]
    print(f"lm:      {lm['steps']:,} steps, best held-out loss {lm['best']['val_loss']:.4f} nats/char "
          f"(its own validation plays), {minutes:g} min")
    print()
    print(table(res))
    if not res["baselines_same_in_both_runs"]:
        print("note: the two runs' baselines differ (their held-out texts should be the same)")
    for side in ("scratch", "init"):
        r = res[side]
        print(f"{side}: first event after {r['start_s']:.1f} s (corpus, split, tokens, baselines), "
              f"{r['steps']:,} steps in {r['elapsed_s']:.0f} s, last evaluation's macro-F1 "
              f"{r['last']['figures']['macro_f1']:.3f}")
    lat = res["latency"]
    print(f"\nclassify one held-out speech ({len(s['example'])} chars) after load: median {lat['median_ms']:.1f} ms "
          f"of {CALLS} calls (p90 {lat['p90_ms']:.1f}, min {lat['min_ms']:.1f}); loading the run "
          f"{lat['load_s']:.2f} s; "
          f"the whole 'rnnchat classify RUN --prompt T' command {lat['command_s']:.2f} s (median of {COMMANDS})")


if __name__ == "__main__":
    main()
