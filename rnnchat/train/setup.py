"""A training run made ready, new or resumed: the run directory and its lock, the task (data and tokenizer),
the limits, device and precision, the model and optimizer, and run.json.

``prepare`` runs once before the first step. It is a generator of warnings whose return value is the
``Prepared`` run the loop steps; it names no model kind (each kind's rules are its row in runs/kinds.py).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generator

import torch

from rnnchat import events as ev
from rnnchat.config import DEFAULT_MINUTES, TrainConfig, likely_memorises
from rnnchat.device import pick_device, pick_precision
from rnnchat.errors import ConfigError
from rnnchat.runs import checkpoints as ckpt
from rnnchat.runs import rundir, warmstart
from rnnchat.runs.kinds import KINDS
from rnnchat.runs.meta import CorpusInfo, Origin, RunMeta, new_meta, read_meta, write_meta
from rnnchat.runs.opened import training_corpus
from rnnchat.runs.rundir import RunLock
from rnnchat.runs.state import Progress, restore
from rnnchat.text.corpus import Corpus
from rnnchat.text.load import load_corpus
from rnnchat.text.tokenizers import Tokenizer, load_tokenizer
from rnnchat.train import distributed
from rnnchat.train.guard import Guard
from rnnchat.train.optim import AdamW
from rnnchat.train.schedule import Limits

_LIMIT_KEYS = ("max_steps", "epochs", "minutes")
# Limits.reached's reasons: what was reached, in words, and the flag that lifts it.
_LIMITS_REACHED = {"max_steps": ("step limit", "--max-steps"), "epochs": ("epoch limit", "--epochs"),
                   "time": ("time budget", "--minutes")}


@dataclass(frozen=True)
class Request:
    """What a Trainer was asked to do, checked by its constructor."""
    corpus: str | Corpus | None
    model_cfg: Any
    cfg: TrainConfig
    name: str | None = None
    resume: str | Path | None = None
    overrides: dict = dataclasses.field(default_factory=dict)
    init_from: str | Path | None = None
    preset_note: str = ""           # runs.kinds.plan's line: which auto row, and why
    given: frozenset = frozenset()  # settings the user gave: what waits for the corpus never changes them


@dataclass
class Prepared:
    """Everything the loop steps with."""
    run_dir: Path
    lock: RunLock | None              # this process's hold of the run (rank 0's), released when the run ends
    meta: RunMeta | None              # run.json as last written (rank 0's)
    corpus: CorpusInfo
    task: Any
    model_cfg: Any
    cfg: TrainConfig
    limits: Limits
    guard: Guard
    device: torch.device
    precision: str
    model: Any
    optimizer: torch.optim.Optimizer
    progress: Progress
    state: Any                        # recurrent state carried across steps (carry_state)
    step_module: Any                  # the DDP wrapper of the task's loss, under torchrun


def make_task(corpus: Corpus, cfg: TrainConfig, model_cfg, tokenizer: Tokenizer | None = None):
    """The task object for ``cfg.task`` (see runs/kinds.py)."""
    return KINDS[cfg.task].task(corpus, cfg, model_cfg, tokenizer)


def prepare(req: Request, dist: distributed.Group | None) -> Generator[ev.Event, None, Prepared]:
    """Build or reopen the run (``dist``: the process group under torchrun); yields warnings, returns the
    Prepared run (its lock held)."""
    is_main = dist is None or dist.is_main
    held: list[RunLock] = []
    try:
        return (yield from _prepare(req, dist, is_main, held))
    except BaseException:
        for lock in held:
            lock.release()
            if req.resume is None:
                rundir.discard_unstarted(lock.path.parent)
        raise


def _prepare(req: Request, dist, is_main: bool, held: list) -> Generator[ev.Event, None, Prepared]:
    resumed, start, meta, tuned = None, None, None, ""
    cfg, model_cfg = req.cfg, req.model_cfg
    if req.resume is not None:
        run_dir = rundir.resolve_run(req.resume)
        if is_main:
            held.append(rundir.lock(run_dir))
        meta = read_meta(run_dir)
        model_cfg, cfg = meta.model, dataclasses.replace(meta.train, **req.overrides)
        cfg.validate()
        tokenizer = load_tokenizer(run_dir)
        if req.corpus is None:          # the run's own text, only when it is what the run recorded
            corpus = training_corpus(meta)
        else:                           # the text the user names to continue on
            corpus = req.corpus if isinstance(req.corpus, Corpus) else load_corpus(req.corpus)
            if corpus.content_hash() != meta.corpus.hash:
                yield ev.Warning(f"corpus '{corpus.name}' is not the text this run started on; "
                                 "continuing on it with the run's own vocabulary")
        resumed = ckpt.load_checkpoint(run_dir, "last", with_optimizer=True)
        ckpt.check_model_size(run_dir.name, meta, resumed)
        if resumed.note:
            yield ev.Warning(resumed.note)
        task = make_task(corpus, cfg, model_cfg, tokenizer)
    else:
        corpus = req.corpus if isinstance(req.corpus, Corpus) else load_corpus(req.corpus)
        if req.init_from is not None:
            start = warmstart.for_corpus(warmstart.open_start(req.init_from), model_cfg, corpus)
            model_cfg, cfg = warmstart.fit_configs(start, model_cfg, cfg)
            cfg, tuned = warmstart.fine_tune_schedule(start, model_cfg, cfg, req.given)
        if is_main:
            task = make_task(corpus, cfg, model_cfg, start and start.tokenizer)
            pick_precision(cfg.precision, pick_device(cfg.device))   # refuse before creating the run
            run_dir = rundir.create(req.name or rundir.default_name(corpus.name, cfg.level, model_cfg),
                                    task.tokenizer, unique=not req.name)
            held.append(rundir.lock(run_dir))
            if dist:
                dist.share(str(run_dir))
        else:   # wait for rank 0 to build the vocabulary and the run, then use both
            run_dir = Path(dist.share(None))
            task = make_task(corpus, cfg, model_cfg, load_tokenizer(run_dir))
        model_cfg = dataclasses.replace(model_cfg, vocab_size=task.tokenizer.vocab_size)
    kind = KINDS[cfg.task]
    preset_note = "; ".join(n for n in (req.preset_note, tuned) if n)
    if resumed is None:                 # settings that wait for the corpus (the kind's row says which)
        settled, why = kind.settle(model_cfg, task)
        settled, lower = warmstart.fine_tune_dropout(start, model_cfg, settled, req.given)
        why = "; ".join(n for n in (why, lower) if n)
        settled_cfg = kind.settle_train(cfg, settled, task) if kind.settle_train else cfg
        kept = _kept(req.given, (model_cfg, settled), (cfg, settled_cfg))
        if kept:
            why = f"{why} (but {', '.join(kept)} as given)" if why else ""
        model_cfg = dataclasses.replace(settled, **{k: getattr(model_cfg, k) for k in req.given
                                                    if hasattr(model_cfg, k) and k != "vocab_size"})
        cfg = dataclasses.replace(settled_cfg, **{k: getattr(cfg, k) for k in req.given if hasattr(cfg, k)})
        hint = warmstart.base_hint(model_cfg, task.tokenizer) if why and start is None else ""
        preset_note = "; ".join(n for n in (preset_note, why, hint) if n)
    for w in corpus.warnings() + task.warnings():
        yield ev.Warning(w)
    # The tokens are on disk now; keep what run.json needs, not the text (memory stays flat in
    # corpus size during training).
    corpus_info = CorpusInfo(corpus.name, corpus.source, corpus.content_hash(), corpus.chars)
    del corpus

    if not any(getattr(cfg, k) for k in _LIMIT_KEYS):
        cfg = dataclasses.replace(cfg, minutes=DEFAULT_MINUTES)
        yield ev.Warning(f"no --max-steps, --epochs or --minutes given: training for {DEFAULT_MINUTES:g} "
                         "minutes (Ctrl+C stops early and saves)")
    world = dist.world if dist else 1
    max_steps = cfg.max_steps
    if cfg.epochs:
        by_epochs = math.ceil(cfg.epochs * task.steps_per_epoch() / world)
        max_steps = min(max_steps, by_epochs) if max_steps else by_epochs
    limits = Limits(max_steps, cfg.minutes, bool(cfg.epochs and not cfg.max_steps))

    device = pick_device(cfg.device)
    if dist and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    precision = pick_precision(cfg.precision, device)
    torch.manual_seed(cfg.seed)
    model = task.build_model(model_cfg)
    if start is not None:
        warmstart.apply(start, model)
    model = model.to(device)
    optimizer = AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    progress, state = Progress(), None
    if resumed is not None:
        progress, state = restore(resumed, model, optimizer, device, run_dir.name, dist.rank if dist else 0)
        meta = dataclasses.replace(meta, train=cfg)
    elif is_main:
        meta = new_meta(kind=kind, model_cfg=model_cfg, train_cfg=cfg, tokenizer=task.tokenizer.kind,
                        parameters=model.num_parameters(), corpus=corpus_info, data=task.data_meta(),
                        summary=progress.summary(), preset=preset_note,
                        init_from=Origin(**start.record()) if start else None)
        write_meta(run_dir, meta)
    # With DDP the task's loss runs inside the wrapper, which averages gradients across processes.
    step_module = distributed.wrap(task, model, device) if dist else None
    params = model.num_parameters()
    advice = kind.memorise_advice(model_cfg)
    if likely_memorises(params, task.train_tokens) and advice:
        yield ev.Warning(f"the model has {params:,} parameters for {task.train_tokens:,} training tokens; "
                         f"it will memorise the corpus rather than learn its style ({advice})")
    reached = limits.reached(progress.step, progress.elapsed)
    if reached:
        what, flag = _LIMITS_REACHED[reached]
        raise ConfigError(f"run '{run_dir.name}' already reached its {what} (step {progress.step:,}, "
                          f"{progress.elapsed / 60:.1f} minutes trained); give a larger {flag} to train further")
    return Prepared(run_dir, held[0] if held else None, meta, corpus_info, task, model_cfg, cfg, limits,
                    Guard(task.spike_check, cfg.warmup_steps), device, precision, model, optimizer, progress,
                    state, step_module)


def _kept(given, *pairs) -> list[str]:
    """The settings given by the user that settling would have changed (they are kept)."""
    return [f"{k} {getattr(before, k)}" for before, after in pairs for k in sorted(given)
            if hasattr(before, k) and getattr(before, k) != getattr(after, k)]
