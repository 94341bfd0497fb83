"""Sampling speed at batch 1: a naive per-step nn.LSTM loop vs rnnchat.lm.generate, side by side.

    python benchmarks/sampling.py [--chars 2000] [--hidden 256] [--layers 2] [--cell lstm] [--json]
    python benchmarks/sampling.py --run RUN [--text FILE] [--score-chars 20000]
    python benchmarks/sampling.py --before DIR [--rounds 4] [--threads 1,2] [--cell gru]

``--before DIR`` times generate() of this checkout against the rnnchat package of DIR (a worktree of an older
commit: ``git worktree add /tmp/old HEAD``) in the same run: each side in a fresh interpreter, taken in turn
(after, before, before, after, ...) for --rounds rounds at each --threads (OMP_NUM_THREADS), the load average
written beside every figure; each side's own weights choice is timed afresh in an empty cache folder, and
the text of one seeded sample tells whether both sides sample the same characters.

The model has random weights (the speed of a step does not depend on their values) and a character
vocabulary of 65 (63 printable characters plus the two reserved ids), or is a trained run's (``--run``).
Measured, each after a warm-up, best of --repeats runs:

(a) naive: ``model.embed`` -> ``model.rnn`` (the nn.LSTM/GRU/RNN module) -> ``model.head`` per token,
    softmax and ``torch.multinomial``, decoding each token to text, under ``torch.inference_mode``;
(b) ours: ``rnnchat.lm.generate.generate`` through its public API (tokenizer decoding, Token events), with
    the weights it takes by default ("auto": the copy that stepped faster when timed at the first load of
    the shape, ``lm/weights_choice.py``; the script times it afresh, in a temporary cache folder) and
    again with ``exact=True`` (float32, ``rnnchat generate --exact``);
(c) stepper: ``FastStepper.step`` alone over a fixed id sequence (the model compute, no sampling), with
    each copy of the weights.

Beside every figure, the limit (``_step_limit.py``): the bytes of weights a float32 step reads (from the packed
stepper's arrays) over the read bandwidth measured in the same run on a working set of that size (1 and 2
threads), the chars/s that allows, and that again with the measured time outside the products; and where a
token of generate(exact) goes: products, gates, filter, the two together, events.

First-char latency is the time from the start of a (warm) generation to the first decoded token.
The machine line names the CPU flags that decide int8 and bf16 speed (AVX2, AVX-512, VNNI, bf16, AMX), the
L2 cache per core, the kernels torch dispatches to, and whether that was capped below what the CPU has
(an emulated class, ``ATEN_CPU_CAPABILITY`` or ``ONEDNN_MAX_CPU_ISA``).

With ``--text FILE`` (a trained ``--run``; text it did not train on) the two copies of the weights also
read the first --score-chars tokens of the file side by side, each token with all the text before it:
the loss of each (nats per token), their difference, the mean KL divergence of the int8 copy's
next-token distribution from the float32 one's, and how often both put the same token first.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import string
import sys
import tempfile
import time

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import answer, machine_info, machine_line, run_side, today  # also puts the checkout on sys.path

if "--code" in sys.argv[:-1]:     # a --before child: the package under test comes from that checkout
    sys.path.insert(0, os.path.abspath(sys.argv[sys.argv.index("--code") + 1]))

from _step_limit import breakdown, ceiling, read_bandwidth, weight_bytes  # noqa: E402  (imports that rnnchat)

from rnnchat.device import cpu_flags, l2_cache_bytes  # noqa: E402
from rnnchat.events import Token  # noqa: E402
from rnnchat.lm import int8, weights_choice  # noqa: E402
from rnnchat.lm.config import ModelConfig, SampleConfig  # noqa: E402
from rnnchat.lm.generate import generate  # noqa: E402
from rnnchat.lm.model import RNNLM  # noqa: E402
from rnnchat.lm.stepper import FastStepper  # noqa: E402
from rnnchat.text.tokenizers import CharTokenizer  # noqa: E402
from rnnchat.vocab import EOD  # noqa: E402

_FLAGS = (("AVX2", ("avx2",)), ("AVX-512", ("avx512f",)), ("VNNI", ("avx512_vnni", "avx_vnni")),
          ("bf16", ("avx512_bf16", "amx_bf16")), ("AMX", ("amx_int8", "amx_bf16")))


def cpu_detail() -> dict:
    """What decides batch-1 speed here: the flags, one core's L2, torch's kernels and whether they were capped."""
    flags = cpu_flags()
    caps = {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA") if os.environ.get(k)}
    return {"flags": {name: bool(flags & set(names)) for name, names in _FLAGS},
            "l2_per_core_kb": l2_cache_bytes() // 1024, "torch_kernels": torch.backends.cpu.get_cpu_capability(),
            "emulated": ", ".join(f"{k}={v}" for k, v in caps.items()) or "no (the CPU's own kernels)"}


def naive(model: RNNLM, tokenizer, n: int, temperature: float, seed: int) -> tuple[float, float, int]:
    """(seconds, first-char seconds, chars) for n tokens sampled the obvious way."""
    gen = torch.Generator().manual_seed(seed)
    feed = tokenizer.decoder().feed
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            t0 = time.perf_counter()
            first = None
            x = torch.tensor([[EOD]])
            state = None
            pieces = []
            for _ in range(n):
                out, state = model.rnn(model.embed(x), state)
                logits = model.head(out[:, -1])
                probs = torch.softmax(logits / temperature, dim=-1)
                x = torch.multinomial(probs, 1, generator=gen)
                pieces.append(feed(int(x)))
                if first is None:
                    first = time.perf_counter() - t0
            seconds = time.perf_counter() - t0
    finally:
        model.train(was_training)
    return seconds, first, len("".join(pieces))


def ours(model: RNNLM, tokenizer, n: int, temperature: float, seed: int, exact: bool = False
         ) -> tuple[float, float, int]:
    cfg = SampleConfig(length=n, temperature=temperature, seed=seed, exact=exact)
    t0 = time.perf_counter()
    first = None
    chars = 0
    for ev in generate(model, tokenizer, cfg):
        if isinstance(ev, Token):
            chars += len(ev.text)
            if first is None:
                first = time.perf_counter() - t0
    return time.perf_counter() - t0, first, chars


def stepper_only(model: RNNLM, ids: list[int], weights: str) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    stepper = FastStepper(model, weights)
    stepper.prime([EOD])
    first = time.perf_counter() - t0
    step = stepper.step
    t1 = time.perf_counter()
    for i in ids:
        step(i)
    return time.perf_counter() - t1, first, len(ids)


def best(fn, repeats: int) -> tuple[float, float, int]:
    fn()                                                        # warm-up
    runs = [fn() for _ in range(repeats)]
    return min(r[0] for r in runs), min(r[1] for r in runs), runs[0][2]


def score(model: RNNLM, ids: list[int]) -> dict:
    """The float32 and int8 steppers reading the same tokens: their losses, KL and top-1 agreement."""
    exact, compact = FastStepper(model, "fp32"), FastStepper(model, "int8")
    a, b = exact.prime([EOD]).copy(), compact.prime([EOD]).copy()
    nll_a = nll_b = kl = 0.0
    same = 0
    for i in ids:
        la, lb = log_softmax(a), log_softmax(b)
        nll_a -= la[i]
        nll_b -= lb[i]
        kl += float(np.exp(la) @ (la - lb))
        same += int(la.argmax() == lb.argmax())
        a, b = exact.step(i).copy(), compact.step(i).copy()
    n = len(ids)
    return {"tokens": n, "loss_fp32": nll_a / n, "loss_int8": nll_b / n, "loss_change": (nll_b - nll_a) / n,
            "kl": kl / n, "top1_agreement": same / n}


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    z = z - z.max()
    return z - np.log(np.exp(z).sum())


def load(args):
    """(model, tokenizer, description) of a trained run or a random model of the asked shape."""
    if args.run:
        from rnnchat.runs.opened import open_language_model

        run = open_language_model(args.run, "best")
        cfg = run.model.cfg
        return run.model, run.tokenizer, {"cell": cfg.cell, "layers": cfg.layers, "hidden": cfg.hidden,
                                          "embed": cfg.embed, "weights": f"trained (run {args.run})"}
    torch.manual_seed(0)
    tokenizer = CharTokenizer.train([string.printable[:63]])
    model = RNNLM(ModelConfig(vocab_size=tokenizer.vocab_size, cell=args.cell, layers=args.layers,
                              hidden=args.hidden, embed=args.embed, dropout=0.0))
    return model, tokenizer, {"cell": args.cell, "layers": args.layers, "hidden": args.hidden,
                              "embed": args.embed, "weights": "random (torch.manual_seed(0))"}


def bandwidths(nbytes: int) -> dict:
    """Read bandwidth over ``nbytes`` at 1 and 2 threads, in a child with one BLAS thread (see _step_limit)."""
    got = run_side(os.path.abspath(__file__), ["--bandwidth", str(nbytes)], {"OMP_NUM_THREADS": "1"}, echo=False)
    return {int(k): v for k, v in got.items()}


def limits(nbytes: int, bw: dict, parts: dict) -> dict:
    """Per thread count: the products-only floor (bytes / bandwidth) and the floor with the measured work
    outside the products, each as µs a step and chars/s."""
    cpt = parts["chars_per_token"]
    rest = parts["outside_products"]
    return {t: {"floor": ceiling(nbytes, b, 0.0, cpt), "with_overhead": ceiling(nbytes, b, rest, cpt)}
            for t, b in bw.items()}


def limit_note(lim: dict) -> str:
    return "; ".join(f"{t} thr <= {v['floor']['chars_per_s']:,.0f} ({v['with_overhead']['chars_per_s']:,.0f} with "
                     "the rest)" for t, v in sorted(lim.items()))


def child(args) -> dict:
    """One side of --before: the weights choice timed afresh, then generate() auto and exact, best of repeats;
    the bytes a step reads and where generate(exact)'s time goes."""
    model, tokenizer, _ = load(args)
    n = args.chars
    with tempfile.TemporaryDirectory() as cache:
        os.environ["RNNCHAT_CACHE"] = cache
        weights_choice.forget()
        t0 = time.perf_counter()
        stepper = FastStepper(model)
        choice_ms = (time.perf_counter() - t0) * 1e3
        auto = best(lambda: ours(model, tokenizer, n, args.temperature, 1), args.repeats)
        exact = best(lambda: ours(model, tokenizer, n, args.temperature, 1, exact=True), args.repeats)
        text = generate(model, tokenizer, SampleConfig(length=n, temperature=args.temperature, seed=7)).text()
        text_exact = generate(model, tokenizer, SampleConfig(length=n, temperature=args.temperature, seed=7,
                                                             exact=True)).text()
        parts = breakdown(model, tokenizer, n, args.temperature)
    return {"auto_kind": getattr(stepper, "kind", stepper.weights), "choice_ms": choice_ms,
            "weight_bytes": weight_bytes(FastStepper(model, "fp32")), "parts": parts,
            "auto_chars_per_s": auto[2] / auto[0], "exact_chars_per_s": exact[2] / exact[0],
            "text": hashlib.sha256(text.encode()).hexdigest()[:12],
            "text_exact": hashlib.sha256(text_exact.encode()).hexdigest()[:12]}


def before_and_after(args) -> dict:
    """--before: both sides in fresh interpreters, in turn, at each thread count; the load beside each figure."""
    script = os.path.abspath(__file__)
    shape = ["--cell", args.cell, "--layers", str(args.layers), "--hidden", str(args.hidden), "--embed",
             str(args.embed), "--chars", str(args.chars), "--repeats", str(args.repeats),
             "--temperature", str(args.temperature)] + (["--run", args.run] if args.run else [])
    sides = {"after": [], "before": ["--code", os.path.abspath(args.before)]}
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        for r in range(args.rounds):
            for side in (("after", "before") if r % 2 == 0 else ("before", "after")):
                load_avg = os.getloadavg()[0]
                got = run_side(script, ["--child", *sides[side], *shape], {"OMP_NUM_THREADS": str(threads)})
                bw = bandwidths(got["weight_bytes"])          # the same minute as the side's figures
                lim = limits(got["weight_bytes"], bw, got["parts"])
                rows.append({"threads": threads, "round": r, "side": side, "load": load_avg, "bandwidth": bw,
                             "limits": lim, **got})
                p = got["parts"]
                print(f"threads {threads} round {r} {side:6} load {load_avg:4.2f}: auto ({got['auto_kind']}, "
                      f"chosen in {got['choice_ms']:.0f} ms) {got['auto_chars_per_s']:8,.0f} chars/s, exact "
                      f"{got['exact_chars_per_s']:8,.0f}; text {got['text']} / exact {got['text_exact']}\n"
                      f"    limit: {got['weight_bytes']:,} bytes a step at {bw[1] / 1e9:.1f} / {bw[2] / 1e9:.1f} GB/s "
                      f"(1 / 2 threads): {limit_note(lim)} chars/s; a token of generate(exact) {p['generate']:.1f} us"
                      f" = products {p['products']:.1f} + gates {p['gates']:.1f} + filter {p['filter']:.1f} + "
                      f"together {p['together']:.1f} + events {p['events']:.1f}")
    print("\nmedian (min-max) over rounds, chars/s; load average range")
    for threads in sorted({r["threads"] for r in rows}):
        for side in ("before", "after"):
            rs = [r for r in rows if r["threads"] == threads and r["side"] == side]
            loads = [r["load"] for r in rs]
            cells = []
            for k in ("auto_chars_per_s", "exact_chars_per_s"):
                v = [r[k] for r in rs]
                cells.append(f"{statistics.median(v):,.0f} ({min(v):,.0f}-{max(v):,.0f})")
            kinds = "/".join(sorted({r["auto_kind"] for r in rs}))
            med = {k: statistics.median(r["parts"][k] for r in rs)
                   for k in ("products", "gates", "filter", "together", "events")}
            floor = {t: statistics.median(r["limits"][t]["floor"]["chars_per_s"] for r in rs) for t in (1, 2)}
            rest = {t: statistics.median(r["limits"][t]["with_overhead"]["chars_per_s"] for r in rs) for t in (1, 2)}
            print(f"OMP_NUM_THREADS={threads} {side:6}: auto [{kinds}] {cells[0]}, exact {cells[1]}; "
                  f"load {min(loads):.2f}-{max(loads):.2f}\n    limit (medians): products alone <= "
                  f"{floor[1]:,.0f} / {floor[2]:,.0f} chars/s (1 / 2 threads), with the rest <= {rest[1]:,.0f} / "
                  f"{rest[2]:,.0f}; us a token: products {med['products']:.1f}, gates {med['gates']:.1f}, filter "
                  f"{med['filter']:.1f}, together {med['together']:.1f}, events {med['events']:.1f}")
    return {"date": today(), "machine": machine_info("cpu"), "cpu_detail": cpu_detail(), "rows": rows}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chars", type=int, default=2000, help="tokens to sample per run (default 2000)")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--cell", choices=("lstm", "gru", "rnn"), default="lstm")
    ap.add_argument("--run", help="a trained language-model run (name or directory) instead of random weights")
    ap.add_argument("--text", help="with --run: a text file the run did not train on, read by both weight copies")
    ap.add_argument("--score-chars", type=int, default=20_000, help="tokens of --text to read (default 20000)")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per variant; the best is reported")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    ap.add_argument("--before", metavar="DIR", help="time generate() against the rnnchat package of DIR, in turn")
    ap.add_argument("--rounds", type=int, default=4, help="with --before: rounds per thread count (default 4)")
    ap.add_argument("--threads", default="1,2", help="with --before: OMP_NUM_THREADS values (default 1,2)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--bandwidth", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--code", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.bandwidth:
        answer({t: read_bandwidth(args.bandwidth, t) for t in (1, 2)})
        return {}
    if args.child:
        answer(child(args))
        return {}
    if args.before:
        result = before_and_after(args)
        if args.json:
            print(json.dumps(result, indent=2))
        return result
    if args.text and not args.run:
        raise SystemExit("--text needs --run (random weights predict nothing)")

    model, tokenizer, described = load(args)
    n = args.chars
    ids = np.random.default_rng(0).integers(2, tokenizer.vocab_size, n).tolist()
    with tempfile.TemporaryDirectory() as cache:               # the choice is measured afresh, not read
        os.environ["RNNCHAT_CACHE"] = cache
        weights_choice.forget()
        t0 = time.perf_counter()
        auto = FastStepper(model).weights
        choice_ms = (time.perf_counter() - t0) * 1e3
        entry = weights_choice._read().get(weights_choice.shape_key(
            described["cell"], described["layers"], described["hidden"], tokenizer.vocab_size), {})
    kinds = ["fp32", "int8"] if int8.available() else ["fp32"]

    a = best(lambda: naive(model, tokenizer, n, args.temperature, 1), args.repeats)
    b = best(lambda: ours(model, tokenizer, n, args.temperature, 1), args.repeats)
    b_exact = best(lambda: ours(model, tokenizer, n, args.temperature, 1, exact=True), args.repeats)
    c = {w: best(lambda w=w: stepper_only(model, ids, w), args.repeats) for w in kinds}

    result = {
        "date": today(), "machine": machine_info("cpu"), "cpu_detail": cpu_detail(),
        "model": {**described, "vocab": tokenizer.vocab_size, "parameters": model.num_parameters()},
        "tokens": n, "temperature": args.temperature, "auto_weights": auto,
        "auto_choice": {"ms_to_choose": choice_ms, "timed_us_per_step": entry.get("us_per_step", {})},
        "naive": {"chars_per_s": a[2] / a[0], "tokens_per_s": n / a[0], "first_char_ms": a[1] * 1e3},
        "ours": {"chars_per_s": b[2] / b[0], "tokens_per_s": n / b[0], "first_char_ms": b[1] * 1e3},
        "ours_exact": {"chars_per_s": b_exact[2] / b_exact[0], "tokens_per_s": n / b_exact[0],
                       "first_char_ms": b_exact[1] * 1e3},
        "stepper": {w: {"steps_per_s": n / r[0], "us_per_step": r[0] / n * 1e6, "build_and_prime_ms": r[1] * 1e3}
                    for w, r in c.items()},
    }
    result["speedup_ours_over_naive"] = result["ours"]["tokens_per_s"] / result["naive"]["tokens_per_s"]
    nbytes = weight_bytes(FastStepper(model, "fp32"))
    parts = breakdown(model, tokenizer, n, args.temperature, args.repeats)
    bw = bandwidths(nbytes)
    result["limit"] = {"weight_bytes": nbytes, "bandwidth": bw, "parts": parts,
                       "threads_now": torch.get_num_threads(), "limits": limits(nbytes, bw, parts)}
    if args.text and "int8" in kinds:
        with open(args.text, encoding="utf-8") as f:
            text_ids = np.asarray(tokenizer.encode(f.read()))[:args.score_chars].tolist()
        result["int8_against_fp32"] = score(model, text_ids)

    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result, args)
    return result


def print_table(result: dict, args) -> None:
    m, mo, n = result["machine"], result["model"], result["tokens"]
    print(f"date:    {result['date']}")
    print(f"machine: {machine_line(m)}")
    d = result["cpu_detail"]
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in d["flags"].items())
    print(f"cpu:     {flags}; "
          f"L2 {d['l2_per_core_kb']} KB per core; torch kernels {d['torch_kernels']}; emulated: {d['emulated']}")
    print(f"model:   {mo['layers']}x{mo['hidden']} {mo['cell']}, embed {mo['embed']}, vocab {mo['vocab']}, "
          f"{mo['parameters']:,} parameters, {mo['weights']}; generate() takes {result['auto_weights']} weights")
    c = result["auto_choice"]
    timed = ", ".join(f"{k} {v:.1f} us" for k, v in c["timed_us_per_step"].items()) or "one copy, not timed"
    print(f"auto:    {result['auto_weights']}, chosen in {c['ms_to_choose']:.0f} ms (timed per step: {timed})")
    print(f"sampling {n} tokens at temperature {args.temperature}, best of {args.repeats} after a warm-up\n")
    print(f"{'':40}{'chars/s':>10}{'tokens/s':>10}{'first char':>12}")
    rows = (("(a) naive nn.Module + multinomial", "naive"), (f"(b) ours: generate(), {result['auto_weights']}", "ours"),
            ("(b) ours: generate(exact=True), fp32", "ours_exact"))
    lim = result["limit"]
    beside = f"   limit {limit_note(lim['limits'])}"
    for label, key in rows:
        r = result[key]
        print(f"{label:40}{r['chars_per_s']:10,.0f}{r['tokens_per_s']:10,.0f}{r['first_char_ms']:9.2f} ms"
              + (beside if key != "naive" else ""))
    for w, s in result["stepper"].items():
        label = "(c) FastStepper.step alone, " + w
        print(f"{label:40}{'':10}{s['steps_per_s']:10,.0f}{s['build_and_prime_ms']:9.2f} ms"
              f"  ({s['us_per_step']:.1f} us/step; latency = build + prime)")
    print(f"\nours / naive: {result['speedup_ours_over_naive']:.1f}x")
    p, bw = lim["parts"], lim["bandwidth"]
    print(f"limit: a float32 step reads {lim['weight_bytes']:,} bytes of weights; over a working set that size "
          f"this machine read {bw[1] / 1e9:.1f} GB/s on 1 thread, {bw[2] / 1e9:.1f} on 2: a step >= "
          + " / ".join(f"{v['floor']['us_per_step']:.1f}" for _, v in sorted(lim["limits"].items()))
          + f" us (1 / 2 threads); torch has {lim['threads_now']} here")
    print(f"where a token of generate(exact) goes: {p['generate']:.1f} us = products {p['products']:.1f} "
          f"({p['products'] / p['generate']:.0%}) + gates {p['gates']:.1f} + filter {p['filter']:.1f} + the two "
          f"together (caches) {p['together']:.1f} + events (decoding, Token, generator, Stream) {p['events']:.1f}; "
          f"outside the products {p['outside_products']:.1f} us")
    q = result.get("int8_against_fp32")
    if q:
        print(f"\nreading {q['tokens']:,} tokens of {args.text}: loss fp32 {q['loss_fp32']:.4f}, "
              f"int8 {q['loss_int8']:.4f} nats/token (change {q['loss_change']:+.4f}); "
              f"KL(fp32 || int8) {q['kl']:.5f} nats/token; same top token {q['top1_agreement']:.1%}")


if __name__ == "__main__":
    main()
