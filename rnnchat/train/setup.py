"""Setting up a training run, new or resumed: the run directory and its lock, the task (data and
tokenizer), the limits, device and precision, the model and optimizer, and run.json.

``RunSetup`` is the part of ``train.loop.Trainer`` that runs once before the first step; it holds no
state of its own (the attributes are the Trainer's, created in its ``__init__``).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Iterator

import torch

from rnnchat import events as ev
from rnnchat.chat.config import SMALL_CORPUS_DROPOUT, dropout_for
from rnnchat.config import DEFAULT_MINUTES, TrainConfig, likely_memorises
from rnnchat.device import pick_device, pick_precision
from rnnchat.errors import CheckpointError, ConfigError
from rnnchat.runs import checkpoints as ckpt
from rnnchat.runs import files, store, warmstart
from rnnchat.runs.kinds import KINDS, model_config_of, train_config_of
from rnnchat.text.corpus import Corpus
from rnnchat.text.load import load_corpus
from rnnchat.text.tokenizers import Tokenizer, load_tokenizer
from rnnchat.train import distributed, run_dir
from rnnchat.train.guard import Guard
from rnnchat.train.run_dir import CorpusInfo
from rnnchat.train.schedule import Limits

_LIMIT_KEYS = ("max_steps", "epochs", "minutes")


def make_task(corpus: Corpus, cfg: TrainConfig, tokenizer: Tokenizer | None = None):
    """The task object for ``cfg.task`` (see runs/kinds.py)."""
    return KINDS[cfg.task].task(corpus, cfg, tokenizer)


class RunSetup:
    """Trainer's setup: ``_setup`` yields warnings while it builds or reopens the run."""

    def _setup(self) -> Iterator[ev.Event]:
        resumed = None
        self.dist = distributed.current()
        if self.resume_from is not None:
            self.run_dir = store.resolve_run(self.resume_from)
            if self.is_main:
                self._lock = files.lock(self.run_dir)
            meta = store.read_run_meta(self.run_dir)
            try:
                self.model_cfg = model_config_of(meta)
                self.cfg = dataclasses.replace(train_config_of(meta), **self.overrides)
            except CheckpointError as exc:
                raise CheckpointError(f"run '{self.run_dir.name}': {exc}") from None
            self.cfg.validate()
            tokenizer = load_tokenizer(self.run_dir)
            corpus = self._load_corpus_of(meta)
            if corpus.content_hash() != meta["corpus"].get("hash"):
                yield ev.Warning(f"corpus '{corpus.name}' has changed since this run started; "
                                 "continuing with the run's own vocabulary")
            resumed = ckpt.load_checkpoint(self.run_dir, "last", with_optimizer=True)
            ckpt.check_model_size(self.run_dir.name, meta, resumed)
            if resumed.note:
                yield ev.Warning(resumed.note)
            self.task = make_task(corpus, self.cfg, tokenizer)
            self.meta = meta
        else:
            corpus = self.corpus_spec if isinstance(self.corpus_spec, Corpus) else load_corpus(self.corpus_spec)
            if self.init_from is not None:
                self.start = warmstart.open_start(self.init_from)
                self.model_cfg, self.cfg = warmstart.fit_configs(self.start, self.model_cfg, self.cfg)
            if self.is_main:
                self.task = make_task(corpus, self.cfg, self.start and self.start.tokenizer)
                pick_precision(self.cfg.precision, pick_device(self.cfg.device))   # refuse before creating the run
                self.run_dir = run_dir.create(self.name or run_dir.default_name(corpus.name, self.cfg.level,
                                                                                self.model_cfg),
                                              self.task.tokenizer, unique=not self.name)
                self._lock = files.lock(self.run_dir)
                if self.dist:
                    self.dist.share(str(self.run_dir))
            else:   # wait for rank 0 to build the vocabulary and the run, then use both
                self.run_dir = Path(self.dist.share(None))
                self.task = make_task(corpus, self.cfg, load_tokenizer(self.run_dir))
            self.model_cfg = dataclasses.replace(self.model_cfg, vocab_size=self.task.tokenizer.vocab_size)
            self._settle_dropout()
        for w in corpus.warnings() + self.task.warnings():
            yield ev.Warning(w)
        # The tokens are on disk now; keep what run.json needs, not the text (memory stays flat in
        # corpus size during training).
        self.corpus = CorpusInfo(corpus.name, corpus.source, corpus.content_hash(), corpus.chars)
        del corpus

        if not any(getattr(self.cfg, k) for k in _LIMIT_KEYS):
            self.cfg = dataclasses.replace(self.cfg, minutes=DEFAULT_MINUTES)
            yield ev.Warning(f"no --max-steps, --epochs or --minutes given: training for {DEFAULT_MINUTES:g} "
                             "minutes (Ctrl+C stops early and saves)")
        max_steps = self.cfg.max_steps
        if self.cfg.epochs:
            by_epochs = math.ceil(self.cfg.epochs * self.task.steps_per_epoch() / self.world)
            max_steps = min(max_steps, by_epochs) if max_steps else by_epochs
        self.limits = Limits(max_steps, self.cfg.minutes, bool(self.cfg.epochs and not self.cfg.max_steps))
        self.guard = Guard(self.task.spike_check, self.cfg.warmup_steps)

        self.device = pick_device(self.cfg.device)
        if self.dist and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self.precision = pick_precision(self.cfg.precision, self.device)
        torch.manual_seed(self.cfg.seed)
        self.model = self.task.build_model(self.model_cfg)
        if self.start is not None and resumed is None:
            warmstart.apply(self.start, self.model)
        self.model = self.model.to(self.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.cfg.lr,
                                           weight_decay=self.cfg.weight_decay, betas=(0.9, 0.99))
        if resumed is not None:
            self.progress, self.state = run_dir.restore(resumed, self.model, self.optimizer, self.device,
                                                        self.run_dir.name, self.dist.rank if self.dist else 0)
        elif self.is_main:
            self._write_meta()
        # With DDP the task's loss runs inside the wrapper, which averages gradients across processes.
        self.step_module = distributed.wrap(self.task, self.model, self.device) if self.dist else None
        params = self.model.num_parameters()
        chat = self.cfg.task == "chat"
        held_back = chat and self.model_cfg.dropout >= SMALL_CORPUS_DROPOUT     # measured enough for chat
        if likely_memorises(params, self.task.train_tokens) and not held_back:
            advice = f"try --dropout {SMALL_CORPUS_DROPOUT:g}" if chat else "try a smaller preset"
            yield ev.Warning(f"the model has {params:,} parameters for {self.task.train_tokens:,} training tokens; "
                             f"it will memorise the corpus rather than learn its style ({advice})")
        if self.limits.reached(self.step, self.progress.elapsed):
            raise ConfigError(f"run '{self.run_dir.name}' already reached its limit (step {self.step}); "
                              "give a larger --max-steps, --epochs or --minutes to train further")

    def _settle_dropout(self) -> None:
        """A chat model given no dropout takes one by its corpus's size; the line joins the preset's."""
        if getattr(self.model_cfg, "dropout", 0.0) is not None:
            return
        with torch.device("meta"):              # counts parameters without allocating them
            params = self.task.build_model(dataclasses.replace(self.model_cfg, dropout=0.0)).num_parameters()
        value, why = dropout_for(params, self.task.train_tokens)
        self.model_cfg = dataclasses.replace(self.model_cfg, dropout=value)
        self.preset_note = "; ".join(n for n in (self.preset_note, why) if n)

    def _load_corpus_of(self, meta: dict) -> Corpus:
        if self.corpus_spec is not None:
            spec = self.corpus_spec
        else:
            spec = str(meta["corpus"].get("source", "")).removeprefix("builtin:")
        return spec if isinstance(spec, Corpus) else load_corpus(spec)

    def _started_from(self) -> str:
        origin = self.start.record() if self.start else self.meta.get("init_from")
        return f"{origin['run']} ({origin['checkpoint']}, step {origin['step']:,})" if origin else ""

    def _write_meta(self) -> None:
        self.meta = run_dir.write_meta(
            self.run_dir, kind=self.task.kind, model_cfg=self.model_cfg, train_cfg=self.cfg,
            tokenizer=self.task.tokenizer, parameters=self.model.num_parameters(), corpus=self.corpus,
            data=self.task.data_meta(), progress=self.progress, created=self.meta.get("created"),
            init_from=self.start.record() if self.start else self.meta.get("init_from"),
            preset=self.preset_note or self.meta.get("preset"))
