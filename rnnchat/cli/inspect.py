"""``rnnchat inspect RUN``: inside a language model, in the terminal.

Runs a text (``--text FILE`` or ``--prompt T``) through the model and prints it coloured by one unit's value
(a hidden unit, an LSTM cell state or a gate; ``--layer``, ``--unit``, ``--show``), the cell's equations,
the units that best track simple properties of the text (``--top``), how saturated each gate is, and with
``--gradients`` how the gradient of the last position's loss fades over the steps before it.
``--json`` prints the same as one object: the chosen unit's value at every position, and the rest.
"""

from __future__ import annotations

import json
import math
import sys

from rnnchat.cli.exits import EXIT_USAGE

MAX_CHARS = 10_000             # an inspect pass on 10,000 characters takes about a second (RESULTS.md)
_GRADIENT_WINDOW = 102         # tokens: lags 0..100 (the loss at the last)


def cmd_inspect(args) -> int:
    from rich.text import Text

    from rnnchat.cli.console import console, err, open_run, warn
    from rnnchat.lm import inspect as ins
    from rnnchat.safetext import neutralise

    if (args.text is None) == (args.prompt is None):
        err("give the text to look at: --text FILE or --prompt TEXT (one of them)")
        return EXIT_USAGE
    if not 2 <= args.max_chars <= MAX_CHARS:
        err(f"--max-chars must be from 2 to {MAX_CHARS:,}; got {args.max_chars}")
        return EXIT_USAGE
    if args.top < 0:
        err(f"--top must be 0 (none) or more; got {args.top}")
        return EXIT_USAGE
    if args.text is not None:
        from rnnchat.text.load import load_corpus

        text = "\n".join(d.text for d in load_corpus(args.text).documents)
    else:
        text = args.prompt
    text = text[:args.max_chars]
    run = open_run(args.run, args.checkpoint, "lm")
    cfg = run.model.cfg
    ids = run.tokenizer.encode(text)
    unknown = run.tokenizer.count_unknown(ids)
    if unknown:
        warn(f"{unknown} character(s) of the text are unknown to the model and were read as <unk>")
    if len(ids) < 2:
        err("the text is too short to inspect: give at least two characters")
        return EXIT_USAGE
    if not 0 <= args.layer < cfg.layers:
        err(f"--layer must be from 0 to {cfg.layers - 1} for this {cfg.layers}-layer model; got {args.layer}")
        return EXIT_USAGE
    if not 0 <= args.unit < cfg.hidden:
        err(f"--unit must be from 0 to {cfg.hidden - 1} for this model of {cfg.hidden} units; got {args.unit}")
        return EXIT_USAGE
    kinds = ("hidden", *(("cell",) if cfg.cell == "lstm" else ()), *ins.GATES[cfg.cell])
    if args.show not in kinds:
        err(f"--show must be one of {', '.join(kinds)} for a {cfg.cell} model; got {args.show!r}")
        return EXIT_USAGE

    tr = ins.trace(run.model, ids)
    pieces = [run.tokenizer.token_text(int(i)) for i in ids]
    positions = ins.char_positions(run.tokenizer, ids) if run.tokenizer.kind != "char" else run.tokenizer.decode(ids)
    values = tr.series(args.layer, args.show, args.unit)
    units = ins.interesting_units(tr, positions, args.top) if args.top else []
    saturation = ins.gate_saturation(tr)
    grads = None
    if args.gradients:
        grads = ins.gradients_through_time(run.model, ids[:_GRADIENT_WINDOW])

    if args.json:
        out = {"run": run.name, "checkpoint": run.which, "cell": cfg.cell, "layer": args.layer, "unit": args.unit,
               "show": args.show, "tokens": pieces, "values": [round(float(v), 5) for v in values],
               "interesting": [m.__dict__ for m in units], "saturation": saturation,
               "equations": list(ins.EQUATIONS[cfg.cell])}
        if grads is not None:
            out["gradients"] = [float(g) for g in grads]
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        return 0

    con = console(sys.stdout)
    con.print(Text(f"{neutralise(run.name)} ({run.which}): {cfg.cell} {cfg.layers}x{cfg.hidden}, "
                   f"{len(ids):,} positions; colour = layer {args.layer} {args.show} unit {args.unit} "
                   "(blue negative, red positive)", style="bold"))
    con.print(_coloured(pieces, values, neutralise))
    con.print(Text("\nthe cell:", style="bold"))
    for line in ins.EQUATIONS[cfg.cell]:
        con.print(Text("  " + line))
    if units:
        con.print(Text("\nunits that track the text (Pearson r over the positions):", style="bold"))
        for m in units:
            con.print(Text(f"  layer {m.layer} {m.what:<6} unit {m.unit:>4}  r = {m.correlation:+.2f}  {m.property}"))
    if saturation:
        con.print(Text("\ngate saturation (share of values < 0.1 / > 0.9):", style="bold"))
        for s in saturation:
            con.print(Text(f"  layer {s['layer']} {s['gate']:<7} {100 * s['below']:5.1f}% / {100 * s['above']:5.1f}%"))
    if grads is not None:
        con.print(Text("\ngradient of the last position's loss by hidden state t steps back (log scale):",
                       style="bold"))
        top = max(float(grads[0]), 1e-30)
        for lag in [t for t in (0, 1, 2, 5, 10, 20, 30, 50, 75, 100) if t < len(grads)]:
            g = float(grads[lag])
            decades = math.log10(g / top) if g > 0 else -30.0
            bar = "#" * max(0, 30 + round(2 * decades))
            con.print(Text(f"  t = {lag:>3}  {g:9.2e}  {bar}"))
    return 0


def _coloured(pieces: list[str], values, neutralise):
    from rich.text import Text

    from rnnchat.safetext import NEWLINE_MARK

    out = Text()
    for piece, v in zip(pieces, values):
        v = max(-1.0, min(1.0, float(v)))
        level = int(55 + 200 * abs(v))
        colour = f"rgb({level},40,40)" if v >= 0 else f"rgb(40,40,{level})"
        shown = neutralise(piece)
        for part in shown.split("\n")[:-1]:          # a newline is shown as a coloured mark, then a break
            out.append(part + NEWLINE_MARK, style=f"on {colour}")
            out.append("\n")
        out.append(shown.split("\n")[-1], style=f"on {colour}")
    return out
