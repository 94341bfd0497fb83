"""``rnnchat train``: a new run from a corpus, or ``--resume RUN``; alone or as one process under torchrun.

The settings are put together by ``runs.kinds.assemble`` (task defaults, then the preset, then the
options given); this module keeps only the checks that are about the command line itself.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys

from rnnchat.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE

_MODEL_OPTIONS = ("cell", "layers", "hidden", "embed", "dropout", "tie", "attention", "bidirectional", "pooling",
                  "max_tokens", "balance")
_TRAIN_OPTIONS = ("level", "vocab_size", "val_fraction", "seq_len", "batch_size", "lr", "warmup_steps",
                  "weight_decay", "clip", "carry_state", "max_steps", "epochs", "minutes", "eval_every", "patience",
                  "eval_chars", "sample_length", "device", "precision", "seed", "context_turns",
                  "max_turn_chars", "teacher_forcing")


def cmd_train(args) -> int:
    from rnnchat.cli.console import err
    from rnnchat.errors import SaveError
    from rnnchat.train import distributed

    if not distributed.launched():
        try:
            return _train(args)
        except SaveError as exc:    # the input was fine: a failed save is exit 1, not a usage error
            err(str(exc))
            return EXIT_FAILED
    # Started by torchrun: every process trains; rank 0 alone writes the run and prints. A resume trains
    # on the run's own device unless told otherwise, so the backend must follow it.
    group = distributed.init(args.device or (args.resume and _saved_device(args.resume)) or "auto")
    watch = distributed.FailureWatch(group, err)
    try:
        return _train(args, quiet=not group.is_main)
    except (Exception, KeyboardInterrupt) as exc:
        rank, code, line = watch.fail(*_failure(exc))
        watch.announce(rank, line)
        if not group.is_main:   # rank 0 reports it; waiting on a teardown with a failed peer could hang
            sys.stdout.flush()
            os._exit(code)
        return code
    finally:
        watch.close()
        distributed.close()


def _saved_device(run: str) -> str | None:
    """The device a run was trained on (run.json), or None when it cannot be read (the trainer says why)."""
    from rnnchat.errors import RnnchatError
    from rnnchat.runs.meta import read_meta
    from rnnchat.runs.rundir import resolve_run

    try:
        return read_meta(resolve_run(run)).train.device
    except RnnchatError:
        return None


def _failure(exc: BaseException) -> tuple[int, str]:
    """A failure as the exit code and the one line ``rnnchat`` would print for it alone."""
    from rnnchat.errors import ConfigError, RnnchatError, SaveError

    if isinstance(exc, ConfigError):
        return EXIT_USAGE, exc.phrased("--" + exc.field.replace("_", "-")) if exc.field else str(exc)
    if isinstance(exc, SaveError):
        return EXIT_FAILED, str(exc)
    if isinstance(exc, RnnchatError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted"
    return EXIT_FAILED, f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _train(args, quiet: bool = False) -> int:
    from rnnchat.cli.console import console, err, print_json_events
    from rnnchat.cli.trainview import TrainView
    from rnnchat.config import RESUMABLE, TrainConfig
    from rnnchat.events import Done
    from rnnchat.runs.kinds import KINDS, plan
    from rnnchat.train import distributed
    from rnnchat.train.loop import Trainer

    model_opts = {k: getattr(args, k) for k in _MODEL_OPTIONS}
    train_opts = {k: getattr(args, k) for k in _TRAIN_OPTIONS}
    if args.resume:
        # A resumed run keeps everything that shapes its data, split and model (config.RESUMABLE).
        fixed = (*_MODEL_OPTIONS, "preset", "task", "init_from", *(k for k in _TRAIN_OPTIONS if k not in RESUMABLE))
        changed = [k for k in fixed if getattr(args, k) is not None]
        if changed:
            err("when resuming, the data, split and model settings come from the run; drop "
                + ", ".join("--" + c.replace("_", "-") for c in changed))
            return EXIT_USAGE
        trainer = Trainer(args.corpus, resume=args.resume, overrides={k: train_opts[k] for k in RESUMABLE})
    else:
        kind = KINDS[args.task or TrainConfig.task]
        fields = {f.name for f in dataclasses.fields(kind.model_config)}
        # The model options one kind lacks are refused in the words of the other kind.
        if "cell" not in fields:
            if args.cell not in (None, "lstm"):
                err("chat models use LSTM cells; drop --cell")
                return EXIT_USAGE
            del model_opts["cell"]
        if "attention" not in fields and args.attention is not None:
            err("--attention is for chat models; add --task chat")
            return EXIT_USAGE
        if args.init_from:
            from rnnchat.runs.kinds import INHERITED

            given = [k for k in ("preset", *INHERITED) if getattr(args, k) is not None]
            if given:
                err("with --init-from the vocabulary and the model's shape come from the language model; drop "
                    + ", ".join("--" + k.replace("_", "-") for k in given))
                return EXIT_USAGE
        model_cfg, train_cfg, note = plan(kind.name, args.preset, model_opts, train_opts)
        given = {k for k, v in {**model_opts, **train_opts}.items() if v is not None}
        trainer = Trainer(args.corpus, model_cfg, train_cfg, name=args.name, init_from=args.init_from,
                          preset_note="" if args.init_from else note, given=given)

    def on_signal(signum, frame):
        trainer.stop()
        # A second Ctrl+C aborts at once; the last checkpoint on disk stays whole either way. Not under
        # torchrun: it passes the terminal's Ctrl+C on to every process a second time by itself.
        if not distributed.launched():
            signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # Past a file-size limit (ulimit -f) a write then fails with EFBIG, a clean SaveError, instead of killing us.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    events = trainer.run()
    if quiet:
        done = None
        for event in events:
            done = event if isinstance(event, Done) else done
    else:
        done = print_json_events(events) if args.json else TrainView(console(sys.stdout)).run(events)
    if done is None:
        return EXIT_FAILED
    return {"interrupted": EXIT_INTERRUPTED, "failed": EXIT_FAILED}.get(done.reason, 0)
