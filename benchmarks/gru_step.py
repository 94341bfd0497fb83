"""A faster GRU training step on the CPU? Three formulations of the same model, timed side by side.

    python benchmarks/gru_step.py [--layers 2] [--hidden 256] [--embed 64] [--batch 64] [--window 128]
                                  [--precision both|fp32|bf16] [--repeats 7] [--compile] [--json]

PyTorch has no fused GRU kernel on the CPU (oneDNN's RNN primitive is reachable only for the LSTM), so
``nn.GRU`` runs cell by cell. The alternatives measured here, on identical weights:

- ``nn.GRU``: what rnnchat trains (under bf16 autocast where the CPU has it).
- ``hand``: every input projection of a layer in one matmul before the time loop, the recurrence as a
  ``torch.autograd.Function`` with its backward written out, and the recurrent weight's gradient as one
  matmul over all steps instead of one per step.
- ``compiled`` (with --compile): the GRU cell through ``torch.compile``, called once per time step
  under autograd; compiling takes tens of seconds and is reported apart.

A step is the forward and backward of embedding -> GRU -> linear head -> cross-entropy on random tokens
(vocabulary 65), batch x window characters. Rounds alternate the variants inside one process so a
drifting VM slows all of them alike; the median per variant is printed with its ratio to ``nn.GRU``.
Before timing, the fp32 outputs and gradients of each variant are compared with ``nn.GRU``'s.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import answer, header, text_table

VOCAB = 65


def _recurrence_class():
    import torch

    class GRURecurrence(torch.autograd.Function):
        """h_t = GRU(h_{t-1}) given every step's input projection ``gi`` (T, B, 3H), biases included."""

        @staticmethod
        def forward(ctx, gi, h0, w_hh, b_hh, mm_dtype):
            steps, batch, three_h = gi.shape
            hidden = three_h // 3
            w = w_hh.t().to(mm_dtype)
            hs = gi.new_empty(steps + 1, batch, hidden, dtype=torch.float32)
            saved = gi.new_empty(steps, batch, 4 * hidden, dtype=torch.float32)   # r, z, n, h_n-part
            hs[0] = h0
            h = h0
            for t in range(steps):
                gh = torch.mm(h.to(mm_dtype), w).float() + b_hh
                i_r, i_z, i_n = gi[t].float().split(hidden, 1)
                h_r, h_z, h_n = gh.split(hidden, 1)
                r = torch.sigmoid(i_r + h_r)
                z = torch.sigmoid(i_z + h_z)
                n = torch.tanh(i_n + r * h_n)
                h = n + z * (h - n)
                hs[t + 1] = h
                saved[t] = torch.cat((r, z, n, h_n), 1)
            ctx.save_for_backward(hs, saved, w_hh)
            ctx.mm_dtype = mm_dtype
            return hs[1:].clone(), h.clone()

        @staticmethod
        def backward(ctx, d_out, d_last):
            hs, saved, w_hh = ctx.saved_tensors
            steps, batch, hidden = d_out.shape
            w = w_hh.to(ctx.mm_dtype)
            d_gi = d_out.new_empty(steps, batch, 3 * hidden)
            d_gh = d_out.new_empty(steps, batch, 3 * hidden)
            dh = d_last.clone() if d_last is not None else d_out.new_zeros(batch, hidden)
            for t in reversed(range(steps)):
                dh = dh + d_out[t]
                r, z, n, h_n = saved[t].split(hidden, 1)
                d_an = dh * (1 - z) * (1 - n * n)
                d_ar = d_an * h_n * r * (1 - r)
                d_az = dh * (hs[t] - n) * z * (1 - z)
                d_gi[t, :, :hidden] = d_ar
                d_gi[t, :, hidden:2 * hidden] = d_az
                d_gi[t, :, 2 * hidden:] = d_an
                d_gh[t, :, :2 * hidden] = d_gi[t, :, :2 * hidden]
                d_gh[t, :, 2 * hidden:] = d_an * r
                dh = dh * z + torch.mm(d_gh[t].to(ctx.mm_dtype), w).float()
            flat = d_gh.reshape(-1, 3 * hidden)
            d_w = torch.mm(flat.t(), hs[:-1].reshape(-1, hidden))
            return d_gi, dh, d_w, flat.sum(0), None

    return GRURecurrence


def build(layers: int, hidden: int, embed: int, seed: int = 0):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    emb, gru, head = nn.Embedding(VOCAB, embed), nn.GRU(embed, hidden, layers), nn.Linear(hidden, VOCAB)
    return emb, gru, head


def forward_variants(gru, layers: int, mm_dtype, compile_cell: bool):
    """name -> fn(x (T, B, E)) -> outputs (T, B, H), all reading ``gru``'s parameters."""
    import torch
    import torch.nn.functional as F

    recurrence = _recurrence_class()

    def weights(layer):
        return (getattr(gru, f"weight_ih_l{layer}"), getattr(gru, f"bias_ih_l{layer}"),
                getattr(gru, f"weight_hh_l{layer}"), getattr(gru, f"bias_hh_l{layer}"))

    def hand(x):
        for layer in range(layers):
            w_ih, b_ih, w_hh, b_hh = weights(layer)
            gi = F.linear(x, w_ih, b_ih)                     # every step's input projection at once
            h0 = x.new_zeros(x.shape[1], gru.hidden_size, dtype=torch.float32)
            x, _ = recurrence.apply(gi, h0, w_hh, b_hh, mm_dtype)
        return x

    variants = {"nn.GRU": lambda x: gru(x)[0], "hand": hand}
    if compile_cell:
        def cell(gi_t, h, w_hh, b_hh):
            gh = F.linear(h, w_hh, b_hh)
            i_r, i_z, i_n = gi_t.chunk(3, 1)
            h_r, h_z, h_n = gh.chunk(3, 1)
            r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
            n = torch.tanh(i_n + r * h_n)
            return n + z * (h - n)

        compiled_cell = torch.compile(cell, dynamic=False)

        def compiled(x):
            for layer in range(layers):
                w_ih, b_ih, w_hh, b_hh = weights(layer)
                gi = F.linear(x, w_ih, b_ih)
                h = x.new_zeros(x.shape[1], gru.hidden_size)
                outs = []
                for t in range(gi.shape[0]):
                    h = compiled_cell(gi[t], h, w_hh, b_hh)
                    outs.append(h)
                x = torch.stack(outs)
            return x

        variants["compiled"] = compiled
    return variants


def check(args) -> dict[str, float]:
    """Largest difference from nn.GRU in fp32, over outputs and every parameter's gradient."""
    import torch

    emb, gru, head = build(args.layers, args.hidden, args.embed)
    x = emb(torch.randint(0, VOCAB, (16, 4)))
    variants = forward_variants(gru, args.layers, torch.float32, args.compile)
    ref_out = variants.pop("nn.GRU")(x)
    g = torch.randn_like(ref_out)
    ref_grads = torch.autograd.grad((ref_out * g).sum(), list(gru.parameters()))
    worst = {}
    for name, fn in variants.items():
        out = fn(x)
        grads = torch.autograd.grad((out * g).sum(), list(gru.parameters()))
        worst[name] = max([(out - ref_out).abs().max().item()]
                          + [(a - b).abs().max().item() for a, b in zip(grads, ref_grads)])
    return worst


def time_steps(args, precision: str) -> dict:
    import torch
    import torch.nn.functional as F

    emb, gru, head = build(args.layers, args.hidden, args.embed)
    params = [*emb.parameters(), *gru.parameters(), *head.parameters()]
    bf16 = precision == "bf16"
    variants = forward_variants(gru, args.layers, torch.bfloat16 if bf16 else torch.float32, args.compile)
    tokens = torch.randint(0, VOCAB, (args.window, args.batch))
    targets = torch.randint(0, VOCAB, (args.window, args.batch))

    def step(fn):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = head(fn(emb(tokens)))
            loss = F.cross_entropy(logits.float().reshape(-1, VOCAB), targets.reshape(-1))
        loss.backward()
        for p in params:
            p.grad = None

    compile_s = None
    for name, fn in variants.items():                      # warm-up; the first compiled call compiles
        t0 = time.perf_counter()
        step(fn)
        if name == "compiled":
            compile_s = time.perf_counter() - t0
        step(fn)
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            step(fn)
            times[name].append((time.perf_counter() - t0) * 1000)
    return {"ms": {k: statistics.median(v) for k, v in times.items()},
            "spread": {k: [round(min(v), 1), round(max(v), 1)] for k, v in times.items()},
            "compile_s": compile_s}


def main() -> None:
    from rnnchat.device import cpu_has_native_bf16

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--precision", choices=("both", "fp32", "bf16"), default="both")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile of the cell (slow to build)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if min(args.layers, args.hidden, args.embed, args.batch, args.window, args.repeats) < 1:
        raise SystemExit("gru_step.py: sizes and --repeats must be at least 1")
    precisions = ["fp32", "bf16"] if args.precision == "both" else [args.precision]
    if "bf16" in precisions and not cpu_has_native_bf16():
        precisions.remove("bf16")
        if not precisions:
            raise SystemExit("gru_step.py: this CPU has no native bf16; use --precision fp32")
    info = header(f"GRU {args.layers}x{args.hidden}, embed {args.embed}, batch {args.batch} x window "
                  f"{args.window}: ms per training step (forward + backward), median of {args.repeats}")
    worst = check(args)
    print("largest difference from nn.GRU in fp32 (outputs and gradients): "
          + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
    results = {p: time_steps(args, p) for p in precisions}
    rows = []
    for name in results[precisions[0]]["ms"]:
        row = [name]
        for p in precisions:
            r = results[p]
            ms, base = r["ms"][name], r["ms"]["nn.GRU"]
            lo, hi = r["spread"][name]
            row.append(f"{ms:.1f} ({lo:.0f}-{hi:.0f}), {base / ms:.2f}x")
        rows.append(row)
    print(text_table(["formulation", *(f"{p}: ms (range), speed vs nn.GRU" for p in precisions)], rows))
    for p in precisions:
        if results[p]["compile_s"] is not None:
            print(f"torch.compile's first call ({p}): {results[p]['compile_s']:.1f} s")
    if args.json:
        answer({"machine": info, "check": worst, "results": results})


if __name__ == "__main__":
    main()
