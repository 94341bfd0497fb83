"""``rnnchat generate RUN``: stream text from a language model, or one JSON object per sample."""

from __future__ import annotations

import json
import sys

from rnnchat.cli.exits import EXIT_USAGE


def cmd_generate(args) -> int:
    from rnnchat.cli.console import err, open_run, warn
    from rnnchat.config import replace
    from rnnchat.events import SampleDone, Token
    from rnnchat.lm.config import SampleConfig
    from rnnchat.lm.generate import generate
    from rnnchat.runs.opened import copy_index
    from rnnchat.safetext import neutralise

    cfg = replace(SampleConfig(), length=args.length, temperature=args.temperature, top_k=args.top_k,
                  top_p=args.top_p, seed=args.seed, stop=tuple(args.stop), exact=args.exact)
    cfg.validate()
    if args.count < 1 or args.count > 10_000:
        err(f"--count must be from 1 to 10000; got {args.count}")
        return EXIT_USAGE
    run = open_run(args.run, args.checkpoint, "lm")
    prompt_ids = run.tokenizer.encode(args.prompt)
    unknown = run.tokenizer.count_unknown(prompt_ids)
    if 0 < unknown < len(prompt_ids):  # all unknown is refused by the sampler itself
        warn(f"{unknown} character(s) of the prompt are unknown to the model and were mapped to <unk>")
    if args.interactive:
        return _interactive(run, cfg, args.prompt, args.choices)
    index = None
    if not args.no_novelty:
        index, note = copy_index(run.meta, args.corpus)
        if note:
            warn(note)
    tty = sys.stdout.isatty()
    out = sys.stdout
    for i in range(args.count):
        sample_cfg = replace(cfg, seed=None if cfg.seed is None else cfg.seed + i)
        pieces, done = [], None
        if tty and args.count > 1 and not args.json:
            out.write(f"\n--- sample {i + 1} of {args.count} ---\n")
        if tty and args.prompt and not args.json:  # on a terminal the text reads on from the prompt
            out.write("\x1b[2m" + neutralise(args.prompt) + "\x1b[0m")
        for event in generate(run.model, run.tokenizer, sample_cfg, prompt=args.prompt):
            if isinstance(event, Token):
                pieces.append(event.text)
                if not args.json:
                    out.write(neutralise(event.text) if tty else event.text)
                    out.flush()
            elif isinstance(event, SampleDone):
                done = event
        copied = index.measure("".join(pieces)) if index is not None else None
        if args.json:
            record = {"sample": i, "text": "".join(pieces), **(done.to_dict() if done else {}),
                      **(copied.to_dict() if copied else {})}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            out.write("\n")
        out.flush()
        if tty and done is not None and not args.json:
            rate = done.chars / done.seconds if done.seconds > 0 else 0.0
            weights = "; int8 weights (--exact for float32)" if done.weights == "int8" else ""
            sys.stderr.write(f"[{done.chars} chars in {done.seconds:.2f}s, {rate:,.0f} chars/s; "
                             f"{done.reason}{weights}]\n")
        if copied is not None and not args.json:
            sys.stderr.write(f"[copied from the training text: longest span {copied.longest_copy} chars, "
                             f"{100 * copied.copied_share:.0f}% of {copied.windows} 20-char windows]\n")
    return 0


def _interactive(run, cfg, prompt: str, k: int) -> int:
    """Pick the next token: the top ``k`` are listed with their probabilities; a number takes one, an empty
    line lets the model sample it, q stops. With piped input, one choice per line (EOF stops), so it can be
    scripted; the text goes to stdout as it grows (on a terminal) or once at the end (piped)."""
    from rnnchat.cli.console import err
    from rnnchat.lm.generate import Picker
    from rnnchat.safetext import neutralise, visible_token

    if not 1 <= k <= 50:
        err(f"--choices must be from 1 to 50; got {k}")
        return EXIT_USAGE
    picker = Picker(run.model, run.tokenizer, cfg, prompt)
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    for _ in range(cfg.length):
        options = picker.options(k)
        if tty:
            sys.stdout.write("\n" + neutralise(prompt + picker.text) + "\n")
            sys.stdout.write("   ".join(f"{n}) {visible_token(text)} {100 * p:.0f}%"
                                        for n, (_, text, p) in enumerate(options, 1)))
            sys.stdout.write("   [Enter: the model picks, q: stop] > ")
            sys.stdout.flush()
        line = sys.stdin.readline()
        if not line or line.strip().lower() in ("q", "quit"):
            break
        choice = line.strip()
        if not choice:
            picker.auto()
        elif choice.isdigit() and 1 <= int(choice) <= len(options):
            picker.take(options[int(choice) - 1][0])
        else:
            sys.stderr.write(f"rnnchat: choose 1 to {len(options)}, Enter for the model's pick, or q; "
                             f"got {neutralise(choice)!r}\n")
            if not tty:
                return EXIT_USAGE
    sys.stdout.write(("\n" if tty else "") + (neutralise(picker.text) if tty else picker.text) + "\n")
    return 0


