"""The training loop: one iterator of events that every view (CLI, JSON, the app) consumes.

``Trainer(...).run()`` yields Started, then Step / Eval / Sample / Checkpoint / Warning events, and
ends with Done. ``Trainer.stop()`` (from a signal handler or another thread) makes the loop save a
checkpoint and finish at the next step. A stopped run resumed with ``resume=`` follows the same loss
curve as one never stopped: each step's batch depends only on (seed, step), and the optimizer, RNG
and carried state are all restored.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import math
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Iterator

import torch

from rnnchat import CHECKPOINT_FORMAT, __version__
from rnnchat import events as ev
from rnnchat.chat.config import Seq2SeqConfig
from rnnchat.config import DEFAULT_MINUTES, TrainConfig
from rnnchat.device import autocast, describe, pick_device, pick_precision
from rnnchat.errors import ConfigError, RnnchatError
from rnnchat.lm.config import ModelConfig
from rnnchat.paths import checkpoints_dir
from rnnchat.runs import checkpoints as ckpt
from rnnchat.runs.kinds import KINDS, model_config_of, train_config_of
from rnnchat.text.corpus import Corpus
from rnnchat.text.load import load_corpus
from rnnchat.text.tokenizers import Tokenizer, load_tokenizer
from rnnchat.train import distributed
from rnnchat.train.schedule import learning_rate

_SNAPSHOT_EVERY = 100         # steps between in-memory copies of the last known-good state
_MAX_FAILURES = 5             # bad steps (NaN, inf, explosion) within _FAILURE_WINDOW before giving up
_FAILURE_WINDOW = 500
_LIMIT_KEYS = ("max_steps", "epochs", "minutes")


def make_task(corpus: Corpus, cfg: TrainConfig, tokenizer: Tokenizer | None = None):
    """The task object for ``cfg.task`` (see runs/kinds.py)."""
    return KINDS[cfg.task].task(corpus, cfg, tokenizer)


class Trainer:
    """Train a new run on ``corpus``, or continue ``resume`` (a run name or directory).

    ``train.task`` picks what is trained: "lm" (``model`` is a ModelConfig) or "chat" (a Seq2SeqConfig;
    the corpus is read as dialogue pairs). The loop, events, checkpoints and resume are the same.

    When resuming, the model and training settings come from the run; ``overrides`` may change its
    limits (max_steps, epochs, minutes: totals for the whole run) and eval/device settings.
    """

    def __init__(self, corpus: str | Corpus | None = None, model: ModelConfig | Seq2SeqConfig | None = None,
                 train: TrainConfig | None = None, *, name: str | None = None,
                 resume: str | Path | None = None, overrides: dict | None = None):
        self.corpus_spec = corpus
        self.cfg = train or TrainConfig()
        wanted = KINDS[self.cfg.task].model_config if self.cfg.task in KINDS else ModelConfig
        self.model_cfg = model or wanted()
        if not isinstance(self.model_cfg, wanted):
            raise ConfigError(f"task {self.cfg.task!r} needs a {wanted.__name__}, got {type(self.model_cfg).__name__}")
        self.name = name
        self.resume_from = resume
        self.overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        self._stop = threading.Event()
        self.dist: distributed.Group | None = None      # set in _setup when launched by torchrun
        if resume is None and corpus is None:
            raise ConfigError("give a corpus to train on, or --resume RUN to continue a run")
        self.cfg.validate()
        self.model_cfg.validate()

    def stop(self) -> None:
        """Ask the loop to save a checkpoint and finish; safe from signal handlers and other threads."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    # ---- setup ---------------------------------------------------------------------------------

    @property
    def is_main(self) -> bool:
        """The process that writes the run and reports (the only one unless launched by torchrun)."""
        return self.dist is None or self.dist.is_main

    def _setup(self) -> Iterator[ev.Event]:
        resumed = None
        self.dist = distributed.current()
        if self.resume_from is not None:
            self.run_dir = ckpt.resolve_run(self.resume_from)
            meta = ckpt.read_run_meta(self.run_dir)
            try:
                self.model_cfg = model_config_of(meta)
                self.cfg = dataclasses.replace(train_config_of(meta), **self.overrides)
            except ckpt.CheckpointError as exc:
                raise ckpt.CheckpointError(f"run '{self.run_dir.name}': {exc}") from None
            self.cfg.validate()
            self.model_cfg.validate()
            tokenizer = load_tokenizer(self.run_dir)
            self.corpus = self._load_corpus_of(meta)
            if self.corpus.content_hash() != meta["corpus"].get("hash"):
                yield ev.Warning(f"corpus '{self.corpus.name}' has changed since this run started; "
                                 "continuing with the run's own vocabulary")
            resumed = ckpt.load_checkpoint(self.run_dir, "last", with_optimizer=True)
            self.task = make_task(self.corpus, self.cfg, tokenizer)
            self.meta = meta
        else:
            self.corpus = self.corpus_spec if isinstance(self.corpus_spec, Corpus) else load_corpus(self.corpus_spec)
            if self.is_main:
                self.task = make_task(self.corpus, self.cfg)
                pick_precision(self.cfg.precision, pick_device(self.cfg.device))   # refuse before creating the run
                self.run_dir = self._new_run_dir()
                if self.dist:
                    self.dist.share(str(self.run_dir))
            else:   # wait for rank 0 to build the vocabulary and the run, then use both
                self.run_dir = Path(self.dist.share(None))
                self.task = make_task(self.corpus, self.cfg, load_tokenizer(self.run_dir))
            self.model_cfg = dataclasses.replace(self.model_cfg, vocab_size=self.task.tokenizer.vocab_size)
        for w in self.corpus.warnings() + self.task.warnings():
            yield ev.Warning(w)
        # The tokens are on disk now; keep what run.json needs, not the text (memory stays flat in
        # corpus size during training).
        self.corpus = _CorpusInfo(self.corpus.name, self.corpus.source, self.corpus.content_hash(), self.corpus.chars)

        if not any(getattr(self.cfg, k) for k in _LIMIT_KEYS):
            self.cfg = dataclasses.replace(self.cfg, minutes=DEFAULT_MINUTES)
            yield ev.Warning(f"no --max-steps, --epochs or --minutes given: training for {DEFAULT_MINUTES:g} "
                             "minutes (Ctrl+C stops early and saves)")
        self.max_steps = self.cfg.max_steps
        if self.cfg.epochs:
            by_epochs = math.ceil(self.cfg.epochs * self.task.steps_per_epoch() / self.world)
            self.max_steps = min(self.max_steps, by_epochs) if self.max_steps else by_epochs

        self.device = pick_device(self.cfg.device)
        if self.dist and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self.precision = pick_precision(self.cfg.precision, self.device)
        torch.manual_seed(self.cfg.seed)
        self.model = self.task.build_model(self.model_cfg).to(self.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.cfg.lr,
                                           weight_decay=self.cfg.weight_decay, betas=(0.9, 0.99))
        self.state = None
        self.step = 0
        self.elapsed = 0.0
        self.best_val = math.inf
        self.best_bpc: float | None = None
        self.lr_scale = 1.0
        if resumed is not None:
            self._restore(resumed)
        elif self.is_main:
            self._write_run_meta()
        # With DDP the task's loss runs inside the wrapper, which averages gradients across processes.
        self.step_module = distributed.wrap(self.task, self.model, self.device) if self.dist else None
        params = self.model.num_parameters()
        if params > 2 * self.task.train_tokens:
            yield ev.Warning(f"the model has {params:,} parameters for {self.task.train_tokens:,} training tokens; "
                             "it will memorise the corpus rather than learn its style (try a smaller preset)")
        if self.max_steps and self.step >= self.max_steps or self.cfg.minutes and self.elapsed >= self.cfg.minutes * 60:
            raise ConfigError(f"run '{self.run_dir.name}' already reached its limit (step {self.step}); "
                              "give a larger --max-steps, --epochs or --minutes to train further")

    @property
    def world(self) -> int:
        return self.dist.world if self.dist else 1

    def _load_corpus_of(self, meta: dict) -> Corpus:
        source = meta["corpus"].get("source", "")
        spec = source.removeprefix("builtin:")
        if self.corpus_spec is not None:
            spec = self.corpus_spec
        return spec if isinstance(spec, Corpus) else load_corpus(spec)

    def _new_run_dir(self) -> Path:
        root = checkpoints_dir()
        cell = getattr(self.model_cfg, "cell", "chat")
        name = self.name or "{}-{}-{}{}x{}-{}".format(
            _slug(self.corpus.name), self.cfg.level, cell, self.model_cfg.layers,
            self.model_cfg.hidden, datetime.now().strftime("%Y%m%d-%H%M%S"))
        if "/" in name or name.startswith(".") or not name.strip():
            raise ConfigError(f"--name {name!r} is not a usable run name (no slashes, not hidden)")
        run_dir = root / name
        if (run_dir / "run.json").exists():
            raise ConfigError(f"run '{name}' already exists; continue it with --resume {name} or pick another --name")
        run_dir.mkdir(parents=True, exist_ok=True)
        self.task.tokenizer.save(run_dir)
        return run_dir

    def _write_run_meta(self, summary: dict | None = None) -> None:
        self.meta = {
            "format": CHECKPOINT_FORMAT, "kind": self.task.kind,
            "model": dataclasses.asdict(self.model_cfg), "train": dataclasses.asdict(self.cfg),
            "tokenizer": self.task.tokenizer.kind, "parameters": self.model.num_parameters(),
            "corpus": {"name": self.corpus.name, "source": self.corpus.source,
                       "hash": self.corpus.hash, "chars": self.corpus.chars},
            "data": self.task.data_meta(),
            "versions": {"rnnchat": __version__, "torch": torch.__version__},
            "created": getattr(self, "meta", {}).get("created") or datetime.now().isoformat(timespec="seconds"),
            "summary": summary or {"step": 0, "best_val_loss": None, "best_bits_per_char": None},
        }
        ckpt.write_json_atomic(self.run_dir / "run.json", self.meta)

    def _restore(self, loaded: ckpt.LoadedCheckpoint) -> None:
        try:
            self.model.load_weights(loaded.model)
            t = loaded.trainer
            self.optimizer.load_state_dict(ckpt.optimizer_from_tensors(
                {k: v for k, v in loaded.optimizer.items() if not k.startswith("carry.")}, t["param_groups"]))
            self.step, self.elapsed = int(t["step"]), float(t["elapsed"])
            self.best_val = float(t["best_val"]) if t.get("best_val") is not None else math.inf
            self.best_bpc = t.get("best_bpc")
            self.lr_scale = float(t.get("lr_scale", 1.0))
            torch.set_rng_state(torch.frombuffer(bytearray(base64.b64decode(t["rng"])), dtype=torch.uint8))
            carry = [loaded.optimizer[k].to(self.device) for k in sorted(loaded.optimizer) if k.startswith("carry.")]
            if carry:
                self.state = tuple(carry) if len(carry) == 2 else carry[0]
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:
            raise ckpt.CheckpointError(f"checkpoint of '{self.run_dir.name}' does not fit its run: {exc}") from None

    # ---- the loop ------------------------------------------------------------------------------

    def run(self) -> Iterator[ev.Event]:
        yield from self._setup()
        cfg = self.cfg
        resumed = self.resume_from is not None
        yield ev.Started(
            run=self.run_dir.name, run_dir=str(self.run_dir), corpus=self.corpus.name, level=cfg.level,
            vocab_size=self.task.tokenizer.vocab_size, parameters=self.model.num_parameters(),
            train_tokens=self.task.train_tokens, val_tokens=self.task.val_tokens,
            device=describe(self.device), precision=self.precision, step=self.step,
            max_steps=self.max_steps, minutes=cfg.minutes, resumed=resumed, processes=self.world)
        try:
            yield from self._loop()
        except BaseException:
            self._save_on_crash()
            raise

    def _loop(self) -> Iterator[ev.Event]:
        cfg, model, opt = self.cfg, self.model, self.optimizer
        params = [p for p in model.parameters()]
        task = self.task
        chars_per_token = task.train_chars_per_token
        # On the CPU every step is checked before the optimizer applies it (reading the loss costs
        # nothing). On a GPU reading it would stall the pipeline, so figures stay on the device and
        # are checked every log interval; a bad interval rolls back to the last good snapshot.
        check_every = self._check_interval()
        self.good = self._snapshot()
        self.failures: list[int] = []
        ema = None
        acc_loss = torch.zeros((), device=self.device)
        acc_norm = torch.zeros((), device=self.device)
        acc_steps = 0
        interval_loss, interval_steps, interval_norm, interval_tokens = 0.0, 0, 0.0, 0
        last_log_time, last_log_step = time.perf_counter(), self.step
        start_time = time.perf_counter() - self.elapsed
        shard = (self.dist.rank, self.dist.world) if self.dist else (0, 1)
        forward = self.step_module or (lambda batch, state: task.loss(model, batch, state))
        model.train()
        while True:
            # Alone, a stop request is acted on at once; with several processes it is agreed at the
            # next check so that every process stops after the same step.
            if self._stop.is_set() and self.dist is None:
                yield from self._interrupted()
                return
            progress = self._progress()
            lr = learning_rate(cfg.lr, self.step, cfg.warmup_steps, progress, cfg.min_lr_ratio) * self.lr_scale
            for group in opt.param_groups:
                group["lr"] = lr
            batch = task.batch(self.step, self.device, *shard)
            try:
                with autocast(self.device, self.precision):
                    loss, carried, tokens = forward(batch, self.state)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                norm = torch.nn.utils.clip_grad_norm_(params, cfg.clip if cfg.clip > 0 else math.inf)
            except KeyboardInterrupt:
                self._stop.set()
                continue
            if check_every == 1:
                loss_v = loss.item()
                if self.dist:
                    loss_v, stopping, agreed_elapsed = self._agree(loss_v, start_time)
                    if stopping:
                        yield from self._interrupted()
                        return
                bad = self._badness(loss_v, norm.item(), ema)
                if bad:
                    failed = yield from self._recover(bad)
                    if failed:
                        return
                    continue
            opt.step()
            self.state = carried
            self.step += 1
            interval_tokens += tokens
            acc_loss += loss_v if self.dist and check_every == 1 else loss.detach()
            acc_norm = torch.maximum(acc_norm, norm.detach())
            acc_steps += 1
            if self.step % check_every:
                continue
            loss_v, norm_v = acc_loss.item() / acc_steps, acc_norm.item()
            acc_loss.zero_()
            acc_norm.zero_()
            acc_steps = 0
            if self.dist and check_every > 1:
                loss_v, stopping, agreed_elapsed = self._agree(loss_v, start_time)
                if stopping:
                    yield from self._interrupted()
                    return
            if check_every > 1:
                bad = self._badness(loss_v, norm_v, ema)
                if bad:
                    failed = yield from self._recover(bad)
                    if failed:
                        return
                    continue
            ema = loss_v if ema is None else 0.98 * ema + 0.02 * loss_v
            interval_loss += loss_v * check_every
            interval_norm = max(interval_norm, norm_v)
            interval_steps += check_every
            # Every process must see the same clock, or they would stop after different steps.
            self.elapsed = agreed_elapsed if self.dist else time.perf_counter() - start_time
            if self.step % _SNAPSHOT_EVERY == 0:
                self.good = self._snapshot()

            if self.step % cfg.log_every == 0:
                seconds = max(1e-9, time.perf_counter() - last_log_time)
                tok_s = interval_tokens * self.world / seconds
                self.train_loss = interval_loss / interval_steps
                yield ev.Step(step=self.step, loss=self.train_loss, lr=lr, grad_norm=interval_norm,
                              tokens_per_s=tok_s, chars_per_s=tok_s * chars_per_token, elapsed=self.elapsed,
                              progress=max(0.0, self._progress()),
                              eta=self._eta(seconds / max(1, self.step - last_log_step)))
                interval_loss, interval_steps, interval_norm, interval_tokens = 0.0, 0, 0.0, 0
                last_log_time, last_log_step = time.perf_counter(), self.step

            reason = self._finished()
            if reason or self.step % cfg.eval_every == 0:
                paused = time.perf_counter()
                if self.is_main:   # the others wait for it at the next gradient exchange
                    yield from self._evaluate(ema)
                    yield from self._save("last")
                if reason:
                    yield self._done(reason, "")
                    return
                # Evaluation time counts towards the budget but not towards throughput.
                last_log_time += time.perf_counter() - paused

    def _agree(self, loss: float, start_time: float) -> tuple[float, bool, float]:
        """(mean loss, whether any process was asked to stop, mean elapsed seconds) over all processes."""
        total, stops, elapsed = self.dist.agree(loss, float(self._stop.is_set()), time.perf_counter() - start_time,
                                                device=self.device)
        return total / self.world, stops > 0, elapsed / self.world

    def _interrupted(self) -> Iterator[ev.Event]:
        yield from self._save("last")
        yield self._done("interrupted", f"stopped at step {self.step}; continue with "
                         f"rnnchat train --resume {self.run_dir.name}")

    def _check_interval(self) -> int:
        return 1 if self.device.type == "cpu" else self.cfg.log_every

    def _badness(self, loss: float, norm: float, ema: float | None) -> str:
        """Why this loss or gradient norm must not be applied, or "" when it is fine."""
        if not math.isfinite(loss):
            return "non-finite loss"
        if not math.isfinite(norm):
            return "non-finite gradient"
        if (self.task.spike_check and ema is not None and self.step > self.cfg.warmup_steps
                and loss > max(2 * ema, ema + 1.0)):
            return f"loss spike to {loss:.2f}"
        return ""

    def _recover(self, what: str):
        """Roll back to the last good state with half the learning rate; returns True when giving up."""
        self.failures = [s for s in self.failures if self.step - s < _FAILURE_WINDOW] + [self.step]
        self._restore_snapshot(self.good)
        if len(self.failures) >= _MAX_FAILURES:
            yield from self._save("last")
            yield self._done("failed", f"training diverged ({what}) {len(self.failures)} times in "
                             f"{_FAILURE_WINDOW} steps; try a lower --lr or --clip")
            return True
        self.lr_scale *= 0.5
        yield ev.Warning(f"{what}; went back to the last good state (step {self.step}) and halved the "
                         f"learning rate (now x{self.lr_scale:g})")
        return False

    def _progress(self) -> float:
        parts = []
        if self.max_steps:
            parts.append(self.step / self.max_steps)
        if self.cfg.minutes:
            parts.append(self.elapsed / (self.cfg.minutes * 60))
        return max(parts) if parts else -1.0

    def _eta(self, seconds_per_step: float) -> float | None:
        etas = []
        if self.max_steps and seconds_per_step > 0:
            etas.append((self.max_steps - self.step) * seconds_per_step)
        if self.cfg.minutes:
            etas.append(max(0.0, self.cfg.minutes * 60 - self.elapsed))
        return min(etas) if etas else None

    def _finished(self) -> str:
        if self.max_steps and self.step >= self.max_steps:
            return "epochs" if self.cfg.epochs and not self.cfg.max_steps else "max_steps"
        if self.cfg.minutes and self.elapsed >= self.cfg.minutes * 60:
            return "time"
        return ""

    def evaluate(self) -> float:
        """Mean validation loss in nats per token."""
        return self.task.evaluate(self.model, self.device, self.precision)["val_loss"]

    def _evaluate(self, ema: float | None) -> Iterator[ev.Event]:
        figures = self.task.evaluate(self.model, self.device, self.precision)
        val = figures["val_loss"]
        bpc = val / self.task.chars_per_token / math.log(2)
        best = val < self.best_val
        if best:
            self.best_val, self.best_bpc = val, bpc
        event = ev.Eval(step=self.step, val_loss=val, bits_per_char=bpc, perplexity=math.exp(min(val, 50.0)),
                        train_loss=getattr(self, "train_loss", ema if ema is not None else float("nan")), best=best,
                        distinct1=figures.get("distinct1"), distinct2=figures.get("distinct2"))
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(event.to_dict()) + "\n")
        yield event
        if self.cfg.sample_length:
            yield ev.Sample(step=self.step, text=self.task.sample(self.model))
        if best:
            yield from self._save("best")

    # ---- state ---------------------------------------------------------------------------------

    def _snapshot(self) -> dict:
        return {"model": copy.deepcopy(self.model.state_dict()), "opt": copy.deepcopy(self.optimizer.state_dict()),
                "step": self.step}

    def _restore_snapshot(self, snap: dict) -> None:
        """Back to a known-good state; the steps since are trained again (same batches, lower rate)."""
        self.model.load_state_dict(snap["model"])
        self.optimizer.load_state_dict(copy.deepcopy(snap["opt"]))
        self.step = snap["step"]
        self.state = None

    def _trainer_state(self) -> tuple[dict, dict]:
        opt_tensors, groups = ckpt.optimizer_to_tensors(self.optimizer.state_dict())
        if self.cfg.carry_state and self.state is not None:
            parts = self.state if isinstance(self.state, tuple) else (self.state,)
            opt_tensors.update({f"carry.{i}": p for i, p in enumerate(parts)})
        state = {
            "step": self.step, "elapsed": self.elapsed,
            "best_val": None if math.isinf(self.best_val) else self.best_val, "best_bpc": self.best_bpc,
            "lr_scale": self.lr_scale, "param_groups": groups,
            "rng": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode("ascii"),
            "epoch": self.step / max(1e-9, self.task.steps_per_epoch()),
        }
        return opt_tensors, state

    def _save(self, which: str) -> Iterator[ev.Event]:
        if not self.is_main:
            return
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            yield ev.Warning(f"not saving '{which}': the weights are not finite")
            return
        opt_tensors, state = self._trainer_state()
        try:
            path = ckpt.save_checkpoint(self.run_dir, which, self.model.weights(), opt_tensors, state)
            self._write_run_meta({"step": self.step,
                                  "best_val_loss": None if math.isinf(self.best_val) else self.best_val,
                                  "best_bits_per_char": self.best_bpc})
        except OSError as exc:
            raise RnnchatError(f"could not save the checkpoint in {self.run_dir}: {exc}") from None
        yield ev.Checkpoint(step=self.step, path=str(path), which=which)

    def _save_on_crash(self) -> None:
        """Last resort on an unexpected error: keep the work done so far if the weights are sound."""
        if (getattr(self, "model", None) is None or not hasattr(self, "run_dir") or self.step == 0
                or not self.is_main):
            return
        try:
            for _ in self._save("last"):
                pass
        except Exception:  # noqa: BLE001 - the original error is the one to report
            pass

    def _done(self, reason: str, message: str) -> ev.Done:
        return ev.Done(step=self.step, reason=reason,
                       best_val_loss=None if math.isinf(self.best_val) else self.best_val,
                       best_bits_per_char=self.best_bpc, elapsed=self.elapsed, run_dir=str(self.run_dir),
                       message=message)


@dataclasses.dataclass(frozen=True)
class _CorpusInfo:
    name: str
    source: str
    hash: str
    chars: int


def _slug(name: str) -> str:
    out = "".join(c if c.isalnum() or c in "-_" else "-" for c in name.lower()).strip("-")
    return out[:40] or "corpus"
