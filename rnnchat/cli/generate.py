"""``rnnchat generate RUN``: stream text from a language model, or one JSON object per sample."""

from __future__ import annotations

import json
import sys

from rnnchat.cli import EXIT_USAGE


def cmd_generate(args) -> int:
    from rnnchat.cli.console import err, warn
    from rnnchat.config import replace
    from rnnchat.events import SampleDone, Token
    from rnnchat.lm.config import SampleConfig
    from rnnchat.lm.generate import generate
    from rnnchat.runs.store import open_language_model
    from rnnchat.safetext import neutralise

    cfg = replace(SampleConfig(), length=args.length, temperature=args.temperature, top_k=args.top_k,
                  top_p=args.top_p, seed=args.seed, stop=tuple(args.stop))
    cfg.validate()
    if args.count < 1 or args.count > 10_000:
        err(f"--count must be from 1 to 10000; got {args.count}")
        return EXIT_USAGE
    run = open_language_model(args.run, args.checkpoint)
    prompt_ids = run.tokenizer.encode(args.prompt)
    unknown = run.tokenizer.count_unknown(prompt_ids)
    if 0 < unknown < len(prompt_ids):  # all unknown is refused by the sampler itself
        warn(f"{unknown} character(s) of the prompt are unknown to the model and were mapped to <unk>")
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
        if args.json:
            out.write(json.dumps({"sample": i, "text": "".join(pieces), **(done.to_dict() if done else {})},
                                 ensure_ascii=False) + "\n")
        else:
            out.write("\n")
        out.flush()
        if tty and done is not None and not args.json:
            rate = done.chars / done.seconds if done.seconds > 0 else 0.0
            sys.stderr.write(f"[{done.chars} chars in {done.seconds:.2f}s, {rate:,.0f} chars/s; {done.reason}]\n")
    return 0
