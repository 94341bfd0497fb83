"""Quality after a fixed training-time budget: rnnchat's default preset against a plain PyTorch loop.

    python benchmarks/quality.py [--quick] [--minutes 5] [--marks 1,2,3,5] [--val-chars 100000]
                                 [--peer-cell lstm|gru|both] [--no-peer]
                                 [--cell C --layers N --hidden N --embed N --dropout F --batch-size N
                                  --seq-len N --lr F --precision P]       (rnnchat side overrides)
                                 [--sweep FILE]  [--json] [--markdown]

Protocol (benchmarks/README.md): the built-in Shakespeare plays joined in order (a blank line between plays) are one
text; the last 10% of its characters is validation; the figure is the val loss in nats/char on the first
--val-chars characters of the validation part, after --minutes of training from a fresh start.

rnnchat: ``rnnchat.train.loop.Trainer`` with the settings ``rnnchat train --minutes M`` gives a new run
(``runs.kinds.plan``: the auto preset's row for this device class and budget; AdamW, warm-up, cosine
decay over the time budget, bf16 autocast where the CPU has it), on a one-document Corpus of that text
with val_fraction 0.1 (its split moves the cut to a line start; the script checks it lands within a
line of the protocol cut, and the peer uses the same cut).
Peer: the plain loop in ``_common.py`` (2x256 LSTM or GRU, embed 64, Adam 2e-3, clip 5, fp32).

How near each side runs to the machine's limit: model FLOP/s (the matmul FLOPs of a training step per
character, times characters per second) and, measured in the same child right after training, the
FLOP/s this machine reaches on the matmuls of one step alone at the same shapes and precision
(``_common.matmul_ceiling``); their ratio is the share of the ceiling. A fused kernel (oneDNN's LSTM)
can beat torch.mm at the same shapes, so a share can pass 100%. "peak" is one large square matmul in the
same precision: the most the machine's matmuls reach at all.

Both final models are scored by the same scheme on the identical characters: 32 contiguous lanes of the
first --val-chars validation characters, state carried along each lane, every character scored with all
the context before it in its lane (``rnnchat.lm.evaluate.mean_loss`` for rnnchat's model, the equivalent
``peer_mean_loss`` for the peer's), in fp32. The curve is scored the same way when the training time
crosses each mark; scoring time is excluded from the budget on both sides (for rnnchat the trainer's
clock is paused while scoring, so its schedule and budget see only training time).

--sweep FILE takes a JSON list of override dicts (keys: "preset" or any ModelConfig or TrainConfig field,
e.g. {"cell": "lstm", "hidden": 384, "lr": 0.004, "batch_size": 32}) and trains each in turn with the same
budget, one row each; the peer runs once. Each run is a fresh interpreter. A subword row
({"level": "bpe", "vocab_size": 1024}) is scored on the same validation characters: its mean loss per token
times the tokens per character of that text gives nats/char, and its chars/s is tokens/s times the
characters per token of that text; the tokenizer's training (once per corpus, cached) is "prep", outside
the budget like the char level's vocabulary scan.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import tempfile
import time
from pathlib import Path

from _common import (
    answer,
    header,
    markdown_table,
    matmul_ceiling,
    matmul_peak,
    peer_device,
    peer_encode,
    peer_mean_loss,
    peer_model,
    peer_trainer,
    progress,
    run_side,
    text_table,
    today,
    train_flops_per_char,
)

VAL_FRACTION = 0.1
SCORE_LANES, SCORE_SEQ = 32, 128
OVERRIDE_FLAGS = ("cell", "layers", "hidden", "embed", "dropout", "batch_size", "seq_len", "lr", "precision")


# ----------------------------------------------------------------------------------------------- data

def protocol_text() -> tuple[str, int]:
    """The joined Shakespeare text and the train/val cut both sides use (rnnchat's, checked against the
    protocol's "last 10% of characters")."""
    from rnnchat.text.corpus import Corpus, Document
    from rnnchat.text.load import load_corpus
    from rnnchat.text.split import split_documents

    text = "\n".join(d.text for d in load_corpus("shakespeare").documents)
    train, val = split_documents(Corpus("shakespeare", "benchmark", (Document("shakespeare", text),)), VAL_FRACTION)
    assert len(train) == 1 and len(val) == 1 and train[0] + val[0] == text
    cut, protocol = len(train[0]), round(len(text) * (1 - VAL_FRACTION))
    between = text[min(cut, protocol):max(cut, protocol)]
    if between.count("\n") > 1 or abs(cut - protocol) > 200:
        raise SystemExit(f"rnnchat's split at {cut} is not within a line of the protocol cut {protocol}")
    return text, cut


def one_document_corpus(text: str):
    from rnnchat.text.corpus import Corpus, Document

    return Corpus("shakespeare-joined", "benchmark:shakespeare-joined", (Document("shakespeare", text),))


# --------------------------------------------------------------------------------------------- sides

class PausableClock:
    """Stands in for the ``time`` module inside rnnchat.train: time spent scoring between steps is taken
    off ``perf_counter``, so the trainer's budget and schedule count training time only."""

    def __init__(self) -> None:
        self.paused = 0.0

    def perf_counter(self) -> float:
        return time.perf_counter() - self.paused

    def __getattr__(self, name):
        return getattr(time, name)


def split_overrides(overrides: dict) -> tuple[dict, dict]:
    from rnnchat.config import TrainConfig
    from rnnchat.lm.config import ModelConfig

    model_fields = {f.name for f in dataclasses.fields(ModelConfig)} - {"vocab_size"}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"minutes", "max_steps", "epochs"}
    m, t = {}, {}
    for key, value in overrides.items():
        key = key.replace("-", "_")
        if key == "preset":
            continue
        if key in model_fields:
            m[key] = value
        elif key in train_fields:
            t[key] = value
        else:
            raise SystemExit(f"unknown override {key!r}: use ModelConfig or TrainConfig field names")
    return m, t


def side_rnnchat(minutes: float, marks: list[float], val_chars: int, overrides: dict) -> dict:
    import rnnchat.train.loop as train_module
    from rnnchat import events as ev
    from rnnchat.lm.evaluate import mean_loss
    from rnnchat.runs.kinds import plan
    from rnnchat.text.tokenizers import load_tokenizer

    text, cut = protocol_text()
    model_over, train_over = split_overrides(overrides)
    model_cfg, train_cfg, note = plan("lm", overrides.get("preset"), model_over, {
        "eval_every": 10**9, "sample_length": 0, "log_every": 1, **train_over, "minutes": minutes,
        "val_fraction": VAL_FRACTION})
    clock = PausableClock()
    train_module.time = clock
    t_prep = time.perf_counter()
    trainer = train_module.Trainer(one_document_corpus(text), model_cfg, train_cfg, preset_note=note)
    curve, pending, val_ids, started, done, last_step = [], list(marks), None, None, None, None
    wall = paused_then = 0.0
    chars_per_token = 1.0
    for e in trainer.run():
        if isinstance(e, ev.Started):
            started, wall0 = e, time.perf_counter()
            prep_seconds = wall0 - t_prep
            tokenizer = load_tokenizer(Path(e.run_dir))
            val_text = text[cut:cut + val_chars]
            val_ids = tokenizer.encode(val_text)
            if trainer.cfg.level != "char":     # per-token losses become nats per character of the same text
                chars_per_token = len(val_text) / (len(val_ids) - 1)
        elif isinstance(e, ev.Step):
            last_step, wall, paused_then = e, time.perf_counter() - wall0, clock.paused   # before scoring
            if pending and e.elapsed >= pending[0] * 60:
                t0 = time.perf_counter()
                device = next(trainer.model.parameters()).device
                loss, scored = mean_loss(trainer.model, val_ids, len(val_ids) - 1, SCORE_LANES, SCORE_SEQ,
                                         device, "fp32")
                loss /= chars_per_token
                while pending and e.elapsed >= pending[0] * 60:
                    curve.append({"minutes": pending.pop(0), "elapsed": e.elapsed, "step": e.step,
                                  "val_loss": loss, "scored": scored})
                clock.paused += time.perf_counter() - t0
                progress(f"    rnnchat  {e.elapsed / 60:5.2f} min  step {e.step:5d}  val {loss:.4f}")
        elif isinstance(e, ev.Done):
            done = e
    if done is None or done.reason != "time" or last_step is None:
        raise SystemExit(f"rnnchat run ended with {done.reason if done else 'no Done event'}: "
                         f"{done.message if done else ''}")
    if paused_then and last_step.elapsed > wall - 0.5 * paused_then:   # the clock stand-in was not used
        progress("    warning: rnnchat.train no longer reads time.perf_counter; scoring time counted in its budget")
    cfg = {**{f.name: getattr(model_cfg, f.name) for f in dataclasses.fields(model_cfg) if f.name != "vocab_size"},
           **{k: getattr(trainer.cfg, k) for k in ("batch_size", "seq_len", "lr", "warmup_steps", "clip",
                                                   "weight_decay", "carry_state")}}
    tokens_per_s = last_step.step * trainer.cfg.batch_size * trainer.cfg.seq_len / last_step.elapsed
    return {"curve": curve, "steps": last_step.step, "train_seconds": last_step.elapsed,
            "chars_per_s": tokens_per_s * chars_per_token, "chars_per_token": chars_per_token,
            "level": trainer.cfg.level, "prep_seconds": prep_seconds,
            "parameters": started.parameters, "precision": started.precision, "device": started.device,
            "config": cfg, "overrides": overrides, "cut": cut, "preset": note,
            **limit_figures(cfg, started.vocab_size, tokens_per_s, started.precision, started.device)}


def limit_figures(cfg: dict, vocab: int, tokens_per_s: float, precision: str, device: str) -> dict:
    """Model FLOP/s and this machine's matmul ceiling at the step's shapes (CPU only: on a GPU the
    ceiling would need the kernels timed asynchronously)."""
    shape = (cfg["cell"], cfg["layers"], cfg["hidden"], cfg["embed"], vocab)
    flops = train_flops_per_char(*shape) * tokens_per_s       # per token: one character at the char level
    if not device.startswith("cpu"):
        return {"flops": flops, "ceiling": None, "peak": None}
    return {"flops": flops, "ceiling": matmul_ceiling(*shape, cfg["batch_size"], cfg["seq_len"], precision),
            "peak": matmul_peak(precision)}


def side_peer(minutes: float, marks: list[float], val_chars: int, cell: str) -> dict:
    import torch

    text, cut = protocol_text()
    chars, _, ids = peer_encode(text)
    device = peer_device()
    train_ids, val_ids = ids[:cut].to(device), ids[cut:cut + val_chars].to(device)
    model = peer_model(len(chars), cell, 2, 256, 64).to(device)
    step = peer_trainer(model, train_ids)
    curve, pending, steps, trained = [], list(marks), 0, 0.0
    while pending:
        t0 = time.perf_counter()
        step()
        trained += time.perf_counter() - t0
        steps += 1
        if trained >= pending[0] * 60:
            loss = peer_mean_loss(model, val_ids, SCORE_LANES, SCORE_SEQ)
            while pending and trained >= pending[0] * 60:
                curve.append({"minutes": pending.pop(0), "elapsed": trained, "step": steps, "val_loss": loss})
            progress(f"    peer     {trained / 60:5.2f} min  step {steps:5d}  val {loss:.4f}")
    config = {"cell": cell, "layers": 2, "hidden": 256, "embed": 64, "batch_size": 64, "seq_len": 128, "lr": 2e-3}
    where = str(device) if device.type != "cpu" else f"cpu ({torch.get_num_threads()} threads)"
    chars_per_s = steps * 64 * 128 / trained
    return {"curve": curve, "steps": steps, "train_seconds": trained, "chars_per_s": chars_per_s,
            "parameters": sum(p.numel() for p in model.parameters()), "precision": "fp32", "device": where,
            "config": config, "cut": cut, **limit_figures(config, len(chars), chars_per_s, "fp32", where)}


# ----------------------------------------------------------------------------------------------- main

def describe(r: dict, side: str) -> str:
    c = r["config"]
    if side == "peer":
        return f"peer: plain loop, 2x256 {c['cell'].upper()} (Adam 2e-3, fp32)"
    over = ", ".join(f"{k}={v}" for k, v in r.get("overrides", {}).items())
    level = "" if r.get("level", "char") == "char" else f" {r['level']}, {r['chars_per_token']:.2f} chars/token,"
    return (f"rnnchat {c['layers']}x{c['hidden']} {c['cell'].upper()}" + (f" ({over})" if over else " (defaults)")
            + f",{level} lr {c['lr']:g}, batch {c['batch_size']}, window {c['seq_len']}, {r['precision']}"
            + (f", prep {r['prep_seconds']:.1f} s" if "prep_seconds" in r else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="0.2-minute budget, 10k val chars (seconds)")
    ap.add_argument("--minutes", type=float, default=5.0, help="training-time budget per run (default 5)")
    ap.add_argument("--marks", default="1,2,3,5", help="minutes at which to score (the budget is always one)")
    ap.add_argument("--val-chars", type=int, default=100_000)
    ap.add_argument("--peer-cell", default="lstm", choices=("lstm", "gru", "both"))
    ap.add_argument("--no-peer", action="store_true", help="rnnchat side(s) only")
    ap.add_argument("--sweep", help="JSON file: a list of override dicts for the rnnchat side, one run each")
    ap.add_argument("--cell", choices=("lstm", "gru", "rnn"))
    ap.add_argument("--layers", type=int)
    ap.add_argument("--hidden", type=int)
    ap.add_argument("--embed", type=int)
    ap.add_argument("--dropout", type=float)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--seq-len", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--precision", choices=("auto", "fp32", "bf16"))
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--markdown", action="store_true", help="also print a table for benchmarks/RESULTS.md")
    ap.add_argument("--side", choices=("rnnchat", "peer"), help=argparse.SUPPRESS)
    ap.add_argument("--overrides", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.minutes, args.val_chars, args.marks = 0.2, 10_000, "0.1"
    marks = sorted({m for m in (float(x) for x in args.marks.split(",") if x) if m < args.minutes} | {args.minutes})

    if args.side:
        work = tempfile.mkdtemp(prefix="rnnchat-bench-")
        os.environ["RNNCHAT_CHECKPOINTS"] = os.path.join(work, "checkpoints")
        if args.side == "rnnchat":
            answer(side_rnnchat(args.minutes, marks, args.val_chars, json.loads(args.overrides)))
        else:
            answer(side_peer(args.minutes, marks, args.val_chars, args.peer_cell))
        return

    cli_overrides = {k: getattr(args, k) for k in OVERRIDE_FLAGS if getattr(args, k) is not None}
    if args.sweep:
        configs = json.loads(Path(args.sweep).read_text(encoding="utf-8"))
        if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
            raise SystemExit(f"{args.sweep}: expected a JSON list of objects")
        configs = [{**cli_overrides, **c} for c in configs]
    else:
        configs = [cli_overrides]
    for c in configs:
        split_overrides(c)                      # refuse unknown keys before any training starts
    peers = [] if args.no_peer else (["lstm", "gru"] if args.peer_cell == "both" else [args.peer_cell])

    machine = header(f"quality after {args.minutes:g} minutes of training from a fresh start, Shakespeare "
                     f"(last 10% validation), val loss in nats/char on the first {args.val_chars:,} validation "
                     f"characters, scored at {', '.join(f'{m:g}' for m in marks)} min", device="auto")
    cache = tempfile.mkdtemp(prefix="rnnchat-bench-cache-")
    script = Path(__file__).resolve()
    common = ["--minutes", str(args.minutes), "--marks", ",".join(map(str, marks)),
              "--val-chars", str(args.val_chars)]
    rows = []
    for cell in peers:
        progress(f"  peer {cell} ...")
        r = run_side(script, ["--side", "peer", "--peer-cell", cell, *common], env={"RNNCHAT_CACHE": cache})
        rows.append(("peer", r))
    for c in configs:
        progress(f"  rnnchat {json.dumps(c) if c else '(defaults)'} ...")
        r = run_side(script, ["--side", "rnnchat", "--overrides", json.dumps(c), *common],
                     env={"RNNCHAT_CACHE": cache})
        rows.append(("rnnchat", r))

    result = {"date": today(), "machine": machine, "minutes": args.minutes, "marks": marks,
              "val_chars": args.val_chars, "rows": [{"side": s, **r} for s, r in rows]}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    headers = ["", *[f"val @ {m:g} min" for m in marks], "bits/char", "steps", "chars/s", "params", "TFLOP/s",
               "ceiling", "share", "peak"]
    table = []
    for side, r in rows:
        losses = {p["minutes"]: p["val_loss"] for p in r["curve"]}
        final = losses[marks[-1]]
        table.append([describe(r, side), *[f"{losses[m]:.4f}" if m in losses else "-" for m in marks],
                      f"{final / math.log(2):.3f}", f"{r['steps']:,}", f"{r['chars_per_s']:,.0f}",
                      f"{r['parameters'] / 1e3:.0f}k", f"{r['flops'] / 1e12:.3f}",
                      f"{r['ceiling'] / 1e12:.3f}" if r["ceiling"] else "-",
                      f"{r['flops'] / r['ceiling']:.0%}" if r["ceiling"] else "-",
                      f"{r['peak'] / 1e12:.3f}" if r.get("peak") else "-"])
    print()
    for side, r in rows:
        if r.get("preset"):
            print(f"{describe(r, side)}: {r['preset']}")
    print(text_table(headers, table))
    peer_rows = [r for s, r in rows if s == "peer"]
    if peer_rows:
        print()
        for side, r in rows:
            if side != "rnnchat":
                continue
            final = r["curve"][-1]["val_loss"]
            for peer in peer_rows:
                ref = peer["curve"][-1]["val_loss"]
                verdict = f"{ref - final:.4f} lower (better)" if final < ref else f"{final - ref:.4f} higher (worse)"
                print(f"{describe(r, side)} against {describe(peer, 'peer')}: {final:.4f} vs {ref:.4f} "
                      f"nats/char, ratio {final / ref:.3f}, {verdict}")
    if args.markdown:
        print()
        print(markdown_table(headers, table))


if __name__ == "__main__":
    main()
