"""``rnnchat inspect RUN``: inside a language model or a classifier, in the terminal.

Runs a text (``--text FILE`` or ``--prompt T``) through the model and prints it coloured by one unit's value
(a hidden unit, an LSTM cell state or a gate; ``--layer``, ``--unit``, ``--show``), the cell's equations,
the units that best track simple properties of the text (``--top``), how saturated each gate is, and with
``--gradients`` how the gradient of the last position's loss fades over the steps before it. A classifier's
run also prints its label for the text and every label's probability; its gradients follow the predicted
label's loss (``--label``: another's), and a bidirectional one's units, equations and gradients are those
of one direction (``--direction``). ``--json`` prints the same as one object: the chosen unit's value at
every position, and the rest. The numbers come from ``rnnchat.runs.inspection``, as the Inspect tab's do.
"""

from __future__ import annotations

import json
import math
import sys

from rnnchat.cli.exits import EXIT_USAGE

MAX_CHARS = 10_000             # an inspect pass on 10,000 characters takes about a second (RESULTS.md)
_LAGS = (0, 1, 2, 5, 10, 20, 30, 50, 75, 100)


def cmd_inspect(args) -> int:
    from rnnchat.cli.console import err, open_run, warn
    from rnnchat.runs import inspection

    if (args.text is None) == (args.prompt is None):
        err("give the text to look at: --text FILE or --prompt TEXT (one of them)")
        return EXIT_USAGE
    if not 2 <= args.max_chars <= MAX_CHARS:
        err(f"--max-chars must be from 2 to {MAX_CHARS:,}; got {args.max_chars}")
        return EXIT_USAGE
    if args.top < 0:
        err(f"--top must be 0 (none) or more; got {args.top}")
        return EXIT_USAGE
    if args.label is not None and not args.gradients:
        err("--label names the label whose loss --gradients follows: add --gradients")
        return EXIT_USAGE
    if args.text is not None:
        from rnnchat.text.load import load_corpus

        text = "\n".join(d.text for d in load_corpus(args.text).documents)
    else:
        text = args.prompt
    if len(text) > args.max_chars:
        warn(f"only the first {args.max_chars:,} characters of the text are inspected (--max-chars)")
        text = text[:args.max_chars]
    run = inspection.inspectable(open_run(args.run, args.checkpoint, None))
    refusal = _refusal(args, run)
    if refusal:
        err(refusal)
        return EXIT_USAGE
    direction = args.direction or "forward"
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
    kinds = inspection.shown_kinds(cfg.cell)
    if args.show not in kinds:
        err(f"--show must be one of {', '.join(kinds)} for a {cfg.cell} model; got {args.show!r}")
        return EXIT_USAGE

    inside = inspection.look_inside(run, ids, args.top)
    grads = inspection.measure(run, text, args.label) if args.gradients else None
    prediction = None
    if inspection.is_classifier(run):
        from rnnchat.classify.predict import probabilities

        prediction = probabilities(run.model, run.tokenizer, [text])[0]
    values = inside.trace.series(args.layer, args.show, args.unit, direction)
    if args.json:
        _print_json(args, run, inside, values, direction, prediction, grads)
    else:
        _print_view(args, run, inside, values, direction, prediction, grads)
    return 0


def _refusal(args, run) -> str:
    """Why the options do not fit this run ("" when they do)."""
    from rnnchat.runs import inspection

    classifier = inspection.is_classifier(run)
    what = "a classifier" if classifier else "a language model"
    if args.direction is not None and not getattr(run.model.cfg, "bidirectional", False):
        return (f"--direction is for a bidirectional classifier; run '{run.name}' is {what} that reads left to "
                "right only")
    if args.label is not None:
        if not classifier:
            return (f"--label is for a classifier; run '{run.name}' is a language model, whose gradients follow "
                    "the next token's loss")
        inspection.label_index(run, args.label)          # ConfigError naming the run's labels
    if args.gradients:
        return inspection.gradients_refusal(run)
    return ""


def _describe(run) -> str:
    cfg = run.model.cfg
    shape = f"{cfg.cell} {cfg.layers}x{cfg.hidden}"
    if run.meta.kind.name != "classify":
        return shape
    return f"classifier, {shape}{' bidirectional' if cfg.bidirectional else ''}, pooling {cfg.pooling}"


def _print_json(args, run, inside, values, direction, prediction, grads) -> None:
    from rnnchat.lm import inspect as ins

    cfg = run.model.cfg
    out = {"run": run.name, "checkpoint": run.which, "kind": run.meta.kind.name, "cell": cfg.cell,
           "layer": args.layer, "unit": args.unit, "show": args.show, "direction": direction,
           "directions": list(inside.trace.directions), "tokens": inside.pieces,
           "values": [round(float(v), 5) for v in values], "interesting": [m.__dict__ for m in inside.units],
           "saturation": inside.saturation, "equations": list(ins.equations(cfg.cell, direction))}
    if prediction is not None:
        out |= {"pooling": cfg.pooling, **prediction.to_dict()}
    if grads is not None:
        out["gradients"] = [float(g) for g in grads.of(direction)]
        out["gradient_tokens"] = grads.tokens
        if grads.label is not None:
            out["gradient_label"] = grads.label
    sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")


def _print_view(args, run, inside, values, direction, prediction, grads) -> None:
    from rich.text import Text

    from rnnchat.cli.console import console
    from rnnchat.lm import inspect as ins
    from rnnchat.safetext import neutralise

    con = console(sys.stdout)
    both = len(inside.trace.directions) > 1
    where = f"layer {args.layer}" + (f" {direction}" if both else "")
    con.print(Text(f"{neutralise(run.name)} ({run.which}): {_describe(run)}, {len(inside.pieces):,} positions; "
                   f"colour = {where} {args.show} unit {args.unit} (blue negative, red positive)", style="bold"))
    if prediction is not None:
        ranked = sorted(prediction.probabilities.items(), key=lambda kv: -kv[1])
        shown = "  ".join(f"{neutralise(label)} {p:.1%}" for label, p in ranked)
        con.print(Text(f"label: {neutralise(prediction.label)}  ({shown})", style="bold"))
    con.print(_coloured(inside.pieces, values, neutralise))
    reads = {"forward": "reads left to right", "backward": "reads right to left: h_(t+1) is the state before"}
    con.print(Text(f"\nthe cell{f' ({direction} direction, {reads[direction]})' if both else ''}:", style="bold"))
    for line in ins.equations(run.model.cfg.cell, direction):
        con.print(Text("  " + line))
    short = {"forward": "fwd ", "backward": "bwd "}
    if inside.units:
        con.print(Text("\nunits that track the text (Pearson r over the positions):", style="bold"))
        for m in inside.units:
            con.print(Text(f"  layer {m.layer} {short[m.direction] if both else ''}{m.what:<6} unit {m.unit:>4}  "
                           f"r = {m.correlation:+.2f}  {m.property}"))
    if inside.saturation:
        con.print(Text("\ngate saturation (share of values < 0.1 / > 0.9):", style="bold"))
        for s in inside.saturation:
            con.print(Text(f"  layer {s['layer']} {short[s['direction']] if both else ''}{s['gate']:<7} "
                           f"{100 * s['below']:5.1f}% / {100 * s['above']:5.1f}%"))
    if grads is not None:
        heading = _gradients_heading(grads, direction, both, args.label is not None, neutralise)
        con.print(Text("\n" + heading, style="bold"))
        norms = grads.of(direction)
        top = max(float(norms[0]), 1e-30)
        for lag in [t for t in _LAGS if t < len(norms)]:
            g = float(norms[lag])
            decades = math.log10(g / top) if g > 0 else -30.0
            bar = "#" * max(0, 30 + round(2 * decades))
            con.print(Text(f"  t = {lag:>3}  {g:9.2e}  {bar}"))


def _gradients_heading(grads, direction: str, both: bool, chosen: bool, neutralise) -> str:
    if grads.label is None:
        return "gradient of the last position's loss by hidden state t steps back (log scale):"
    state = f"the {direction} direction's hidden state" if both else "hidden state"
    back = " (it ends at the first position)" if direction == "backward" else ""
    which = "the chosen" if chosen else "the predicted"
    return (f"gradient of the loss of {which} label {neutralise(grads.label)} after {grads.tokens} tokens by "
            f"{state} t steps back{back} (log scale):")


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
