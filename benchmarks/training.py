"""Training throughput: rnnchat's Trainer against a plain PyTorch loop, same model, same data.

    python benchmarks/training.py [--quick] [--steps 250] [--warmup 20] [--models lstm2x256,lstm1x512,gru2x256]
                                  (also lstm1x768, lstm2x512, gru2x384: the AMX rows of the auto preset)
                                  [--peer-optimizer]
                                  [--rounds 1] [--precision auto] [--json] [--markdown]

Models (character level, embed 64, no dropout on either side): a 2x256 LSTM, a 1x512 LSTM and a 2x256 GRU,
trained on the built-in Shakespeare for --steps steps of 64 windows of 128 characters.

rnnchat: the real ``rnnchat.train.loop.Trainer`` as ``rnnchat train shakespeare`` runs it (its defaults:
AdamW with warm-up and cosine decay, clipping, the divergence guard, bf16 autocast where the CPU has
native bf16 — ``--precision`` overrides), with ``dropout=0`` so the model is the peer's, and no evaluation
or samples during the run.
Peer: the plain loop in ``_common.py`` (nn.Embedding -> nn.LSTM/GRU -> nn.Linear, Adam 2e-3, clip 5, fp32,
random windows from the first 90% of the joined plays).

Each side of each model is a fresh interpreter; with --rounds > 1 the order alternates and the median is
taken. Throughput is characters per second of training from the end of step --warmup to the end of the
last step, timed from outside the loop the same way on both sides. So a reader can see the speed does not
come from doing less per step, both sides also report the mean training loss over the last --loss-window
steps (nats/char).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from _common import (
    answer,
    header,
    markdown_table,
    peer_device,
    peer_encode,
    peer_model,
    peer_trainer,
    progress,
    run_side,
    text_table,
    today,
)

MODELS = {"lstm2x256": ("lstm", 2, 256), "lstm1x512": ("lstm", 1, 512), "gru2x256": ("gru", 2, 256),
          "lstm1x768": ("lstm", 1, 768), "lstm2x512": ("lstm", 2, 512), "gru2x384": ("gru", 2, 384)}  # cpu-amx rows
DEFAULT_MODELS = ("lstm2x256", "lstm1x512", "gru2x256")
BATCH, SEQ, EMBED = 64, 128, 64


# --peer-optimizer: rnnchat's Trainer with the peer's optimizer settings (a constant 2e-3, no warm-up, no
# weight decay; AdamW's betas stay (0.9, 0.99)), so the loss per step is comparable and only speed differs.
PEER_OPTIMIZER = dict(lr=2e-3, warmup_steps=0, min_lr_ratio=1.0, weight_decay=0.0, clip=5.0)


def side_rnnchat(cell: str, layers: int, hidden: int, steps: int, warmup: int, window: int, precision: str,
                 peer_optimizer: bool = False) -> dict:
    from rnnchat import events as ev
    from rnnchat.config import TrainConfig
    from rnnchat.lm.config import ModelConfig
    from rnnchat.train.loop import Trainer

    log_every = 5
    trainer = Trainer("shakespeare",
                      ModelConfig(cell=cell, layers=layers, hidden=hidden, embed=EMBED, dropout=0.0),
                      TrainConfig(max_steps=steps, eval_every=10**9, sample_length=0, log_every=log_every,
                                  batch_size=BATCH, seq_len=SEQ, eval_chars=1000, precision=precision,
                                  **(PEER_OPTIMIZER if peer_optimizer else {})))
    t_start = t_end = None
    losses = []
    started = None
    for e in trainer.run():
        if isinstance(e, ev.Started):
            started = e
        elif isinstance(e, ev.Step):
            now = time.perf_counter()
            if e.step == warmup:
                t_start = now
            if e.step == steps:
                t_end = now
            if e.step > steps - window:
                losses.append(e.loss)
            chars_per_token = e.chars_per_s / e.tokens_per_s if e.tokens_per_s else 1.0
        elif isinstance(e, ev.Done) and e.reason not in ("max_steps",):
            raise SystemExit(f"rnnchat run ended early: {e.reason} {e.message}")
    chars = (steps - warmup) * BATCH * SEQ * chars_per_token
    return {"chars_per_s": chars / (t_end - t_start), "seconds": t_end - t_start,
            "loss": statistics.fmean(losses), "precision": started.precision, "device": started.device,
            "parameters": started.parameters}


def side_peer(cell: str, layers: int, hidden: int, steps: int, warmup: int, window: int) -> dict:
    import torch

    from rnnchat.text.load import load_corpus  # the text only: the peer shares the data, not the code

    text = "\n".join(d.text for d in load_corpus("shakespeare").documents)
    chars, _, ids = peer_encode(text)
    device = peer_device()
    train = ids[:int(0.9 * len(ids))].to(device)
    model = peer_model(len(chars), cell, layers, hidden, EMBED).to(device)
    step = peer_trainer(model, train, BATCH, SEQ)
    losses = []
    t_start = time.perf_counter()
    for i in range(1, steps + 1):
        losses.append(step())
        if i == warmup:
            t_start = time.perf_counter()
    seconds = time.perf_counter() - t_start
    return {"chars_per_s": (steps - warmup) * BATCH * SEQ / seconds, "seconds": seconds,
            "loss": statistics.fmean(losses[-window:]), "precision": "fp32",
            "device": str(device) if device.type != "cpu" else f"cpu ({torch.get_num_threads()} threads)",
            "parameters": sum(p.numel() for p in model.parameters())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="15 steps of the 2x256 LSTM only (seconds)")
    ap.add_argument("--steps", type=int, default=250, help="training steps per side and model (default 250)")
    ap.add_argument("--warmup", type=int, default=20, help="steps before the clock starts (multiple of 5)")
    ap.add_argument("--loss-window", type=int, default=50, help="steps the reported training loss averages")
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS),
                    help=f"comma-separated, from {', '.join(MODELS)}")
    ap.add_argument("--rounds", type=int, default=1, help="repeat each pair, alternating order; median")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"), help="rnnchat side only")
    ap.add_argument("--peer-optimizer", action="store_true",
                    help="rnnchat side: the peer's optimizer settings (lr 2e-3 constant, no warm-up or decay)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--markdown", action="store_true", help="also print a table for benchmarks/RESULTS.md")
    ap.add_argument("--side", choices=("rnnchat", "peer"), help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.steps, args.warmup, args.loss_window = 15, 5, 5
        args.models = "lstm2x256"
    if args.warmup % 5 or args.loss_window % 5 or args.steps % 5 or not 0 < args.warmup < args.steps:
        ap.error("--steps, --warmup and --loss-window must be multiples of 5, with 0 < warmup < steps")

    if args.side:
        work = tempfile.mkdtemp(prefix="rnnchat-bench-")
        os.environ["RNNCHAT_CHECKPOINTS"] = os.path.join(work, "checkpoints")
        cell, layers, hidden = MODELS[args.model]
        if args.side == "rnnchat":
            answer(side_rnnchat(cell, layers, hidden, args.steps, args.warmup, args.loss_window, args.precision,
                                args.peer_optimizer))
        else:
            answer(side_peer(cell, layers, hidden, args.steps, args.warmup, args.loss_window))
        return

    models = args.models.split(",")
    for m in models:
        if m not in MODELS:
            ap.error(f"unknown model {m!r}; choose from {', '.join(MODELS)}")
    machine = header(f"training throughput, character level, Shakespeare, batch {BATCH} x {SEQ}, embed {EMBED}; "
                     f"{args.steps} steps, timed after {args.warmup}, loss over the last {args.loss_window}; "
                     f"{args.rounds} round(s)", device="auto")
    cache = tempfile.mkdtemp(prefix="rnnchat-bench-cache-")   # shared by the rnnchat children: prepared once
    script = Path(__file__).resolve()
    results = []
    for m in models:
        runs: dict[str, list[dict]] = {"rnnchat": [], "peer": []}
        for r in range(args.rounds):
            order = ("rnnchat", "peer") if (r + models.index(m)) % 2 == 0 else ("peer", "rnnchat")
            for side in order:
                res = run_side(script, ["--side", side, "--model", m, "--steps", str(args.steps),
                                        "--warmup", str(args.warmup), "--loss-window", str(args.loss_window),
                                        "--precision", args.precision]
                               + (["--peer-optimizer"] if args.peer_optimizer else []), env={"RNNCHAT_CACHE": cache})
                runs[side].append(res)
                progress(f"  {m} round {r + 1} {side:8s} {res['chars_per_s']:>9,.0f} chars/s  "
                         f"loss {res['loss']:.3f}  ({res['precision']}, {res['seconds']:.0f} s timed)")
        row = {"model": m}
        for side in ("rnnchat", "peer"):
            row[side] = {"chars_per_s": statistics.median(x["chars_per_s"] for x in runs[side]),
                         "loss": statistics.median(x["loss"] for x in runs[side]),
                         "precision": runs[side][0]["precision"], "parameters": runs[side][0]["parameters"],
                         "runs": [x["chars_per_s"] for x in runs[side]]}
        row["ratio"] = row["rnnchat"]["chars_per_s"] / row["peer"]["chars_per_s"]
        results.append(row)

    result = {"date": today(), "machine": machine, "steps": args.steps, "warmup": args.warmup,
              "loss_window": args.loss_window, "batch": BATCH, "seq_len": SEQ, "rows": results}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    headers = ["model", "rnnchat chars/s", "peer chars/s", "rnnchat / peer",
               f"train loss at step {args.steps}: rnnchat", "peer"]
    table = []
    for row in results:
        cell, layers, hidden = MODELS[row["model"]]
        rn, pe = row["rnnchat"], row["peer"]
        table.append([f"{layers}x{hidden} {cell.upper()} ({rn['parameters'] / 1e3:.0f}k params)",
                      f"{rn['chars_per_s']:,.0f} ({rn['precision']})", f"{pe['chars_per_s']:,.0f} (fp32)",
                      f"{row['ratio']:.2f}x", f"{rn['loss']:.3f}", f"{pe['loss']:.3f}"])
    print()
    print(text_table(headers, table))
    from rnnchat.config import TrainConfig

    d = TrainConfig()
    ours = ("AdamW 2e-3, constant, no weight decay, clip 5 (--peer-optimizer)" if args.peer_optimizer else
            f"AdamW {d.lr:g}, {d.warmup_steps} warm-up steps, cosine decay over the run, clip {d.clip:g}")
    print(f"\ntrain loss: mean over steps {args.steps - args.loss_window + 1}-{args.steps}, nats/char (rnnchat: "
          f"{ours}; peer: Adam 2e-3, constant, clip 5)")
    if args.markdown:
        print()
        print(markdown_table(headers, table))


if __name__ == "__main__":
    main()
