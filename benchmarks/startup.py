"""Start-up: each command as a user types it, whole, against importing torch alone, in fresh processes.

    python benchmarks/startup.py [--repeats 7] [--work DIR] [--importtime] [--phases] [--no-app]
                                 [--no-bytecode-cache] [--json] [--markdown] [--quick] [--app-only] [--before DIR]

The goal (issue 26): ``rnnchat generate RUN --length 10`` within 0.4 s of ``python -c "import torch"``, and
the app's first screen in 1.5 s. Every repeat is a round: ``python -c "import torch"`` and then each command,
in turn, so a busy moment of the machine hits them alike; each figure is the median of its rounds, and
"beyond torch" is a command's median less the torch import's (``--help`` and ``--version`` never import
torch: for them the peer is ``python -c pass``).

The runs are trained once into ``--work`` (a temporary folder unless named; kept and reused when named):
a tiny language model (1x64 GRU, 20 steps), one of the default shape (``rnnchat train shakespeare
--max-steps 20``: the auto preset's row for this machine), a tiny chat model on the built-in dialogues and a
tiny classifier on a labelled file the script writes. Corpora, runs and caches all live in ``--work``.

``generate`` is timed twice per run: "first" with the sampling-weights choice removed before each repeat
(the first generate of a model shape on a machine times its float32 and int8 copies and caches the answer,
``rnnchat/lm/weights_choice.py``) and "later", the choice cached, as every later generate finds it. The copy
index of the training text is built before timing (the first generate after training finds it cached).
``chat`` answers one piped line (retrieval, its default, reads the run's training pairs at start), ``classify``
one short text, ``eval`` a 2,000-character text.

The app: ``rnnchat`` in a tmux terminal (100x30); "first screen" is the time until the tab bar is drawn,
"corpus shown" until the Corpus tab shows the built-in Shakespeare's statistics. Skipped without tmux.
``--app-only``: only the app (and ``import torch`` beside it), no runs trained. ``--before DIR``: the app of
another checkout of rnnchat too (its ``DIR`` first on ``PYTHONPATH``), in turn with this one's in every round.

Bytecode: the commands run with Python's bytecode cache on (``PYTHONDONTWRITEBYTECODE`` removed from their
environment), as after ``pip install``; a session that sets it compiles every rnnchat module at every start
(about 0.1 s more a command here). ``--no-bytecode-cache`` keeps the environment as it is.

``--phases``: generate's phases timed inside one process (import torch, the parser, the imports of opening
and generating, opening the run, the stepper with its weights choice, the copy index, 10 tokens), first and
later, median of --repeats.

``--importtime``: one more run of each command under ``python -X importtime``; the modules it imports that
``import torch`` does not, largest first, and their total (import time only; no other work of the command).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import header, markdown_table, progress, text_table, today
from sampling import cpu_detail

RNNCHAT = [sys.executable, "-m", "rnnchat"]
TORCH = [sys.executable, "-c", "import torch"]
BARE = [sys.executable, "-c", "pass"]
EVAL_TEXT = ("Now is the winter of our discontent made glorious summer by this sun of York; and all the clouds "
             "that lour'd upon our house in the deep bosom of the ocean buried. ") * 12


def _env(work: Path, bytecode: bool = True) -> dict:
    env = dict(os.environ)
    if bytecode:     # as after pip install: modules load from cached bytecode, not compiled on every start
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(RNNCHAT_CHECKPOINTS=str(work / "checkpoints"), RNNCHAT_CACHE=str(work / "cache"),
               RNNCHAT_CORPORA=str(work / "corpora"))
    return env


def _labelled(path: Path) -> None:
    """60 short texts in two labels, for a classifier that trains in seconds."""
    rng = random.Random(1)
    words = {"sea": "wave salt ship tide sail shore storm deep fish harbour".split(),
             "farm": "field wheat cow barn plough harvest hay sheep fence orchard".split()}
    rows = [{"text": " ".join(rng.choice(words[label]) for _ in range(12)), "label": label}
            for label in words for _ in range(30)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _train(work: Path, env: dict, name: str, args: list[str]) -> None:
    if (work / "checkpoints" / name / "run.json").exists():
        return
    progress(f"training {name}: rnnchat train {' '.join(args)}")
    proc = subprocess.run([*RNNCHAT, "train", *args, "--name", name, "--json"], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"training {name} failed: {proc.stderr.strip()[-500:]}")


def prepare(work: Path, env: dict, quick: bool) -> None:
    (work / "corpora").mkdir(parents=True, exist_ok=True)
    _labelled(work / "corpora" / "two.jsonl")
    (work / "eval.txt").write_text(EVAL_TEXT, encoding="utf-8")
    tiny = ["--max-steps", "20", "--layers", "1", "--hidden", "64", "--eval-chars", "20000"]
    _train(work, env, "tiny", ["shakespeare", *tiny])
    if not quick:
        _train(work, env, "dflt", ["shakespeare", "--max-steps", "20", "--eval-chars", "20000"])
    _train(work, env, "chat", ["dialogues", "--task", "chat", *tiny])
    _train(work, env, "cls", [str(work / "corpora" / "two.jsonl"), "--task", "classify", "--max-steps", "10",
                              "--layers", "1", "--hidden", "64"])
    for run in ("tiny", "dflt") if not quick else ("tiny",):   # the copy index, the weights choice, bytecode
        _run([*RNNCHAT, "generate", run, "--length", "10"], env)


def commands(work: Path, quick: bool) -> list[tuple[str, list[str], str, str]]:
    """(label, argv, stdin, before) per command; ``before`` "weights" drops the cached weights choice."""
    gen = [("generate tiny, first", "tiny", "weights"), ("generate tiny, later", "tiny", "")]
    if not quick:
        gen += [("generate default shape, first", "dflt", "weights"), ("generate default shape, later", "dflt", "")]
    return [
        ("--version", [*RNNCHAT, "--version"], "", ""),
        ("--help", [*RNNCHAT, "--help"], "", ""),
        *[(label, [*RNNCHAT, "generate", run, "--length", "10"], "", before) for label, run, before in gen],
        ("chat (one piped line)", [*RNNCHAT, "chat", "chat", "--max-length", "10"], "hello there\n", ""),
        ("classify (one text)", [*RNNCHAT, "classify", "cls", "--prompt", "the ship in the storm"], "", ""),
        ("eval (2,000 chars)", [*RNNCHAT, "eval", "tiny", "--text", str(work / "eval.txt")], "", ""),
    ]


def _run(argv: list[str], env: dict, stdin: str = "") -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[2:])} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return seconds


def _first_screen(work: Path, env: dict, timeout: float = 60.0, checkout: Path | None = None) -> tuple[float, float]:
    """Seconds until the app's tab bar is drawn, and until the Corpus tab shows Shakespeare's statistics
    (``checkout``: the rnnchat of that folder instead of the installed one)."""
    name = f"startup-{os.getpid()}"
    unset = "" if "PYTHONDONTWRITEBYTECODE" in env else "-u PYTHONDONTWRITEBYTECODE "
    path = {"PYTHONPATH": str(checkout)} if checkout else {}
    pairs = " ".join(f"{k}={v}" for k, v in {**{k: v for k, v in env.items() if k.startswith("RNNCHAT_")},
                                              "TERM": "xterm-256color", **path}.items())
    command = f"cd {work} && env {unset}{pairs} {sys.executable} -m rnnchat"
    for _ in range(3):   # a tmux server whose last session just ended can refuse a new one once
        t0 = time.perf_counter()
        made = subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "100", "-y", "30", command],
                              capture_output=True, text=True)
        if made.returncode == 0:
            break
        time.sleep(0.5)
    else:
        raise SystemExit(f"tmux could not open a terminal: {made.stderr.strip()}")
    tabs = shown = None
    try:
        while time.perf_counter() - t0 < timeout and shown is None:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", name], capture_output=True,
                                    text=True).stdout
            now = time.perf_counter() - t0
            if tabs is None and "Corpus" in screen and "Generate" in screen:
                tabs = now
            if re.search(r"[\d,]{7,} characters", screen):
                shown = now
            time.sleep(0.01)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    if tabs is None or shown is None:
        raise SystemExit(f"the app did not show its first screen within {timeout:.0f} s")
    return tabs, shown


PHASES = """
import sys, time
marks = [("start", time.perf_counter())]
def mark(name): marks.append((name, time.perf_counter()))
import torch; mark("import torch")
from rnnchat.cli.parser import build_parser; mark("import the parser")
args = build_parser().parse_args(["generate", sys.argv[1], "--length", "10"]); mark("build it, parse")
from rnnchat.cli.console import open_run
from rnnchat.lm.config import SampleConfig
from rnnchat.lm.generate import generate
from rnnchat.lm.stepper import FastStepper
from rnnchat.runs.opened import copy_index
mark("import opened, generate")
run = open_run(args.run, "best", "lm"); mark("open the run")
weights = FastStepper(run.model).weights; mark("build the stepper")
index, _ = copy_index(run.meta); mark("open the copy index")
text = "".join(e.text for e in generate(run.model, run.tokenizer, SampleConfig(length=10)) if hasattr(e, "text"))
mark("generate 10 tokens")
index.measure(text); mark("measure the copies")
print({"weights": weights, "ms": {b: round(1000 * (t1 - t0), 1) for (a, t0), (b, t1) in zip(marks, marks[1:])}})
"""


def phases(work: Path, env: dict, run: str, repeats: int, first: bool) -> dict:
    """Median ms of each phase of generate in one process (``first``: the weights choice dropped first)."""
    import ast

    runs = []
    for _ in range(repeats):
        if first:
            (work / "cache" / "sampling-weights.json").unlink(missing_ok=True)
        out = subprocess.run([sys.executable, "-c", PHASES, run], env=env, capture_output=True, text=True, check=True)
        runs.append(ast.literal_eval(out.stdout.strip().splitlines()[-1]))
    names = list(runs[0]["ms"])
    return {"weights": runs[0]["weights"], "ms": {n: round(statistics.median(r["ms"][n] for r in runs), 1)
                                                  for n in names}}


def _modules_of(argv: list[str], env: dict, stdin: str = "") -> list[tuple[str, int, int, str | None]]:
    """(name, self µs, cumulative µs, the module that imported it) per module, from ``python -X importtime``."""
    proc = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], env=env, input=stdin, capture_output=True,
                          text=True)
    rows, waiting = [], {}                 # depth -> rows at that depth still waiting for their importer
    for line in proc.stderr.splitlines():  # an importer's line comes after those of what it imported
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if not m:
            continue
        depth, name = len(m[3]) // 2, m[4]
        for i in waiting.pop(depth + 1, []):
            rows[i][3] = name
        waiting.setdefault(depth, []).append(len(rows))
        rows.append([name, int(m[1]), int(m[2]), None])
    return [tuple(r) for r in rows]


def import_report(cmds, env: dict, top: int = 8) -> dict:
    """Per command: ms of imports beyond those of ``import torch``, and the modules that start such imports
    (imported by one of torch's modules, or by the command's code at run time), by the ms beyond torch's
    under each."""
    base = {r[0] for r in _modules_of(TORCH, env)}
    report = {}
    for label, argv, stdin, _ in cmds:
        rows = _modules_of(argv, env, stdin)
        parent = {r[0]: r[3] for r in rows}
        beyond = [r for r in rows if r[0] not in base]
        names = {r[0] for r in beyond}
        under: dict[str, int] = {}
        for name, self_us, _, _ in beyond:     # each module's own time counts for it and every importer above
            node = name
            while node is not None:
                under[node] = under.get(node, 0) + self_us
                node = parent.get(node)
        roots = sorted(((under[r[0]], r[0]) for r in beyond if r[3] not in names), reverse=True)
        report[label] = {"beyond_torch_ms": round(sum(r[1] for r in beyond) / 1000, 1),
                         "largest": [(n, round(us / 1000, 1)) for us, n in roots[:top] if us >= 1000]}
    return report


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--work", type=Path, help="where runs, corpora and caches live (kept; reused when present)")
    ap.add_argument("--importtime", action="store_true", help="also list the imports beyond torch per command")
    ap.add_argument("--phases", action="store_true", help="also time generate's phases in one process")
    ap.add_argument("--no-app", action="store_true", help="skip the app's first screen")
    ap.add_argument("--no-bytecode-cache", action="store_true",
                    help="keep PYTHONDONTWRITEBYTECODE as set: every start compiles rnnchat's modules")
    ap.add_argument("--quick", action="store_true", help="2 repeats, no default-shape run: checks the script")
    ap.add_argument("--app-only", action="store_true", help="only the app's first screen (and import torch)")
    ap.add_argument("--before", type=Path, help="also the app of this checkout of rnnchat, in turn with this one's")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    repeats = 2 if args.quick else args.repeats
    work = args.work or Path(tempfile.mkdtemp(prefix="rnnchat-startup-"))
    work = work.resolve()
    try:
        info = header("start-up: whole commands against importing torch, fresh processes, median of rounds")
        detail = cpu_detail()
        flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in detail["flags"].items())
        print(f"cpu:     {flags}; L2 {detail['l2_per_core_kb']} KB per core; torch kernels "
              f"{detail['torch_kernels']}; emulated: {detail['emulated']}")
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        env = _env(work, not args.no_bytecode_cache)
        bytecode = "PYTHONDONTWRITEBYTECODE" not in env
        print(f"bytecode: {'cached, as after pip install' if bytecode else 'compiled at every start'}")
        if args.app_only:
            (work / "corpora").mkdir(parents=True, exist_ok=True)
            cmds = []
        else:
            prepare(work, env, args.quick)
            cmds = commands(work, args.quick)
        app = not args.no_app and shutil.which("tmux") is not None
        before: list[tuple[float, float]] = []
        times: dict[str, list[float]] = {"torch": [], "bare": [], **{c[0]: [] for c in cmds}}
        screens: list[tuple[float, float]] = []
        weights = work / "cache" / "sampling-weights.json"
        for r in range(repeats):
            progress(f"round {r + 1} of {repeats}")
            times["bare"].append(_run(BARE, env))
            times["torch"].append(_run(TORCH, env))
            for label, cmd, stdin, before in cmds:
                if before == "weights":
                    weights.unlink(missing_ok=True)
                times[label].append(_run(cmd, env, stdin))
            if app and args.before:     # which goes first alternates, so neither always follows torch's import
                pair = [(None, screens), (args.before.resolve(), before)]
                for checkout, into in pair if r % 2 else pair[::-1]:
                    into.append(_first_screen(work, env, checkout=checkout))
            elif app:
                screens.append(_first_screen(work, env))
        loads = [load, os.getloadavg()[0] if hasattr(os, "getloadavg") else None]
        med = {k: statistics.median(v) for k, v in times.items()}
        rows = []
        for label, *_ in cmds:
            peer = "bare" if label.startswith("--") else "torch"
            rows.append({"command": label, "seconds": round(med[label], 3), "peer": peer,
                         "peer_seconds": round(med[peer], 3), "beyond_s": round(med[label] - med[peer], 3),
                         "range": [round(min(times[label]), 3), round(max(times[label]), 3)]})
        result = {"date": today(), "machine": info, "cpu_detail": detail, "repeats": repeats, "bytecode": bytecode,
                  "load_average": loads, "rows": rows,
                  "torch_import_s": round(med["torch"], 3), "python_alone_s": round(med["bare"], 3)}
        for key, got in (("app", screens), ("app_before", before)):
            if got:
                result[key] = {"first_screen_s": round(statistics.median(s[0] for s in got), 3),
                               "corpus_shown_s": round(statistics.median(s[1] for s in got), 3),
                               "first_screen_range": [round(min(s[0] for s in got), 3),
                                                      round(max(s[0] for s in got), 3)]}
        if before:
            result["before"] = str(args.before)
        if args.importtime:
            result["imports"] = import_report(cmds, env)
        if args.phases and not args.app_only:
            run = "tiny" if args.quick else "dflt"
            result["phases"] = {f"{run}, {when}": phases(work, env, run, repeats, when == "first")
                                for when in ("first", "later")}
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print_tables(result, args.markdown)
        return result
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def print_tables(result: dict, markdown: bool) -> None:
    load = ", ".join(f"{x:.1f}" for x in result["load_average"] if x is not None)
    print(f"{result['repeats']} rounds; load average {load} (before, after); python alone "
          f"{result['python_alone_s']:.3f} s, import torch {result['torch_import_s']:.3f} s\n")
    head = ["command", "whole (s)", "peer", "peer (s)", "beyond the peer (s)", "min-max (s)"]
    rows = [[r["command"], f"{r['seconds']:.3f}", "python -c pass" if r["peer"] == "bare" else "import torch",
             f"{r['peer_seconds']:.3f}", f"{r['beyond_s']:+.3f}", f"{r['range'][0]:.2f}-{r['range'][1]:.2f}"]
            for r in result["rows"]]
    for key, side in (("app_before", f" ({result.get('before')})"), ("app", "")):
        if key in result:
            a = result[key]
            low, high = a["first_screen_range"]
            rows.append([f"the app{side}: first screen (tab bar)", f"{a['first_screen_s']:.3f}", "import torch",
                         f"{result['torch_import_s']:.3f}", f"{a['first_screen_s'] - result['torch_import_s']:+.3f}",
                         f"{low:.2f}-{high:.2f}"])
            rows.append([f"the app{side}: corpus shown", f"{a['corpus_shown_s']:.3f}", "", "", "", ""])
    print(markdown_table(head, rows) if markdown else text_table(head, rows))
    for label, rep in result.get("phases", {}).items():
        steps = ", ".join(f"{n} {ms:.0f}" for n, ms in rep["ms"].items())
        print(f"\nphases of generate {label} ({rep['weights']} weights), ms, median: {steps}")
    for label, rep in result.get("imports", {}).items():
        largest = ", ".join(f"{n} {ms:.0f}" for n, ms in rep["largest"])
        print(f"\nimports beyond torch, {label}: {rep['beyond_torch_ms']:.0f} ms; largest (ms beyond torch under "
              f"each): {largest}")


if __name__ == "__main__":
    main()
