"""The training loop: one iterator of events that every view (CLI, JSON, the app) consumes.

``Trainer(...).run()`` yields Started, then Step / Eval / Sample / Checkpoint / Warning events, and
ends with Done. ``Trainer.stop()`` (from a signal handler or another thread) makes the loop save a
checkpoint and finish at the next step. A stopped run resumed with ``resume=`` follows the same loss
curve as one never stopped: each step's batch depends only on (seed, step), and the optimizer, RNG
and carried state are all restored. What differs between tasks (language model, chat) is the task
object's (``lm/task.py``, ``chat/task.py``); ``setup.py`` builds or reopens the run before the first
step, and ``runs/`` owns its directory.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator

import torch

from rnnchat import events as ev
from rnnchat.config import RESUMABLE, TrainConfig
from rnnchat.device import autocast, describe
from rnnchat.errors import ConfigError, RnnchatError
from rnnchat.runs.kinds import KINDS
from rnnchat.runs.meta import RunMeta, write_meta
from rnnchat.runs.rundir import RunLock, append_metrics
from rnnchat.runs.state import Progress, rank_state, save
from rnnchat.text.corpus import Corpus
from rnnchat.train import distributed
from rnnchat.train.guard import Guard
from rnnchat.train.schedule import Limits, learning_rate
from rnnchat.train.setup import Request, prepare


def _unset(value) -> bool:
    """A setting left for the corpus to settle (the chat's dropout None, the classifier's labels ())."""
    return value is None or (isinstance(value, (tuple, str)) and not value)


_SNAPSHOT_EVERY = 100         # steps between in-memory copies of the last known-good state
_EVAL_FIELDS = ("val_loss", "bits_per_char", "distinct1", "distinct2")   # the figures Eval names itself


class Trainer:
    """Train a new run on ``corpus``, or continue ``resume`` (a run name or directory).

    ``train.task`` picks what is trained: "lm" (``model`` is a ModelConfig) or "chat" (a Seq2SeqConfig;
    the corpus is read as dialogue pairs). The loop, events, checkpoints and resume are the same.

    When resuming, the model and training settings come from the run; ``overrides`` may change its
    limits (max_steps, epochs, minutes: totals for the whole run) and eval/device settings.

    ``given`` names the settings the user chose (the rest came from defaults or a preset): settings that
    wait for the corpus (a kind's ``settle``) never change those. None: every setting the configs hold.
    """

    def __init__(self, corpus: str | Corpus | None = None, model=None, train: TrainConfig | None = None, *,
                 name: str | None = None, resume: str | Path | None = None, overrides: dict | None = None,
                 init_from: str | Path | None = None, preset_note: str = "", given: Iterable[str] | None = None):
        if resume is None and corpus is None:
            raise ConfigError("give a corpus to train on, or --resume RUN to continue a run")
        self.cfg = train or TrainConfig()
        self.cfg.validate()
        wanted = KINDS[self.cfg.task].model_config
        self.model_cfg = model or wanted()
        if not isinstance(self.model_cfg, wanted):
            raise ConfigError(f"task {self.cfg.task!r} needs a {wanted.__name__}, got {type(self.model_cfg).__name__}")
        self.model_cfg.validate()
        if init_from is not None and resume is not None:
            raise ConfigError("starts a new run from another; a resumed run keeps where it started (drop one of "
                              "--init-from and --resume)", "init_from")
        if init_from is not None and not KINDS[self.cfg.task].starts_from:
            raise ConfigError(f"{KINDS[self.cfg.task].what} cannot start from another run", "init_from")
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        for key in overrides:
            if key not in RESUMABLE:
                raise ConfigError("cannot change when resuming: a run keeps its data, split and model "
                                  "settings (only the limits, the eval cadence and the device may change)", key)
        if given is None:           # configs built by the caller: every setting they set is the caller's
            given = {f.name for cfg in (self.model_cfg, self.cfg) for f in dataclasses.fields(cfg)
                     if not _unset(getattr(cfg, f.name))}
        self.request = Request(corpus, self.model_cfg, self.cfg, name, resume, overrides, init_from, preset_note,
                               frozenset(given))
        self._stop = threading.Event()
        self._lock: RunLock | None = None             # this process's hold of the run, until run() ends
        # Set up by setup.prepare() when run() starts:
        self.dist: distributed.Group | None = None      # the process group, when launched by torchrun
        self.run_dir: Path | None = None
        self.meta: RunMeta | None = None
        self.task = None
        self.model = None
        self.optimizer = None
        self.step_module = None                        # the DDP wrapper of the task's loss
        self.device = torch.device("cpu")
        self.precision = "fp32"
        self.limits = Limits(0, 0.0)
        self.progress = Progress()
        self.state = None                              # recurrent state carried across steps (carry_state)
        # Set by the loop:
        self.train_loss: float | None = None           # mean training loss of the last log interval
        self.guard = Guard(spike_check=True, warmup_steps=self.cfg.warmup_steps)
        self._agreed_elapsed = 0.0
        self._saved_step = -1                          # the step of the last "last" checkpoint written

    def stop(self) -> None:
        """Ask the loop to save a checkpoint and finish; safe from signal handlers and other threads."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def step(self) -> int:
        return self.progress.step

    @property
    def is_main(self) -> bool:
        """The process that writes the run and reports (the only one unless launched by torchrun)."""
        return self.dist is None or self.dist.is_main

    @property
    def world(self) -> int:
        return self.dist.world if self.dist else 1

    # ---- the loop ------------------------------------------------------------------------------

    def run(self) -> Iterator[ev.Event]:
        """The run's events; the run is closed (its lock released) before Done is handed out, so nothing
        is left for the consumer to clean up, whether it reads on or closes the iterator."""
        try:
            for event in self._run():
                if isinstance(event, ev.Done):
                    self.close()
                yield event
        finally:
            self.close()

    def close(self) -> None:
        """Release the run (its lock); safe to call more than once."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "Trainer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _run(self) -> Iterator[ev.Event]:
        self.dist = distributed.current()
        run = yield from prepare(self.request, self.dist)
        self._lock, self.run_dir, self.meta, self.task = run.lock, run.run_dir, run.meta, run.task
        self.model_cfg, self.cfg = run.model_cfg, run.cfg
        self.limits, self.guard, self.device, self.precision = run.limits, run.guard, run.device, run.precision
        self.model, self.optimizer, self.progress, self.state = run.model, run.optimizer, run.progress, run.state
        self.step_module = run.step_module
        origin = self.meta.init_from if self.meta else None
        yield ev.Started(
            run=self.run_dir.name, run_dir=str(self.run_dir), corpus=run.corpus.name,
            level=self.cfg.level,
            vocab_size=self.task.tokenizer.vocab_size, parameters=self.model.num_parameters(),
            train_tokens=self.task.train_tokens, val_tokens=self.task.val_tokens,
            device=describe(self.device), precision=self.precision, step=self.step,
            max_steps=self.limits.max_steps, minutes=self.cfg.minutes, resumed=self.request.resume is not None,
            processes=self.world, started_from=origin.describe() if origin else "",
            preset=self.meta.preset if self.meta else "")
        try:
            yield from self._loop()
        except GeneratorExit:           # the consumer closed the stream: keep steps not yet saved, once
            if self.step != self._saved_step:
                self._save_on_crash()
            raise
        except BaseException:
            self._save_on_crash()
            raise

    def _loop(self) -> Iterator[ev.Event]:
        cfg, model, opt, task, progress = self.cfg, self.model, self.optimizer, self.task, self.progress
        params = list(model.parameters())
        chars_per_token = task.train_chars_per_token
        # On the CPU every step is checked before the optimizer applies it (reading the loss costs
        # nothing). On a GPU reading it would stall the pipeline, so figures stay on the device and
        # are checked every log interval; a bad interval rolls back to the last good snapshot.
        check_every = self._check_interval()
        self.guard.keep(model, opt, self.step)
        ema = None
        acc_loss = torch.zeros((), device=self.device)
        acc_norm = torch.zeros((), device=self.device)
        acc_steps = 0
        interval_loss, interval_steps, interval_norm, interval_tokens = 0.0, 0, 0.0, 0
        last_log_time, last_log_step = time.perf_counter(), self.step
        start_time = time.perf_counter() - progress.elapsed
        shard = (self.dist.rank, self.dist.world) if self.dist else (0, 1)
        forward = self.step_module or (lambda batch, state: task.loss(model, batch, state))
        model.train()
        while True:
            # Alone, a stop request is acted on at once; with several processes it is agreed at the
            # next check so that every process stops after the same step.
            if self._stop.is_set() and self.dist is None:
                yield from self._interrupted()
                return
            done_share = self.limits.progress(self.step, progress.elapsed)
            lr = learning_rate(cfg.lr, self.step, cfg.warmup_steps, done_share, cfg.min_lr_ratio) * progress.lr_scale
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
                loss_v, verdict = yield from self._check(loss.item(), norm.item(), ema, start_time)
                if verdict == "retry":
                    continue
                if verdict == "end":
                    return
            opt.step()
            self.state = carried
            progress.step += 1
            interval_tokens += tokens
            acc_loss += loss_v if check_every == 1 else loss.detach()
            acc_norm = torch.maximum(acc_norm, norm.detach())
            acc_steps += 1
            # Checked every interval, and at any step that ends the run or evaluates, so both happen at the
            # exact step asked for even when the interval is longer (on a GPU).
            due = self.step == self.limits.max_steps or self.step % cfg.eval_every == 0
            if self.step % check_every and not due:
                continue
            loss_v, norm_v, steps = acc_loss.item() / acc_steps, acc_norm.item(), acc_steps
            acc_loss.zero_()
            acc_norm.zero_()
            acc_steps = 0
            if check_every > 1:
                loss_v, verdict = yield from self._check(loss_v, norm_v, ema, start_time)
                if verdict == "retry":
                    continue
                if verdict == "end":
                    return
            ema = loss_v if ema is None else 0.98 * ema + 0.02 * loss_v
            interval_loss += loss_v * steps
            interval_norm = max(interval_norm, norm_v)
            interval_steps += steps
            # Every process must see the same clock, or they would stop after different steps.
            progress.elapsed = self._agreed_elapsed if self.dist else time.perf_counter() - start_time
            if self.step % _SNAPSHOT_EVERY == 0:
                self.guard.keep(model, opt, self.step)

            if self.step % cfg.log_every == 0:
                seconds = max(1e-9, time.perf_counter() - last_log_time)
                tok_s = interval_tokens * self.world / seconds
                self.train_loss = interval_loss / interval_steps
                yield ev.Step(step=self.step, loss=self.train_loss, lr=lr, grad_norm=interval_norm,
                              tokens_per_s=tok_s, chars_per_s=tok_s * chars_per_token, elapsed=progress.elapsed,
                              progress=max(0.0, self.limits.progress(self.step, progress.elapsed)),
                              eta=self.limits.eta(self.step, progress.elapsed,
                                                  seconds / max(1, self.step - last_log_step)))
                interval_loss, interval_steps, interval_norm, interval_tokens = 0.0, 0, 0.0, 0
                last_log_time, last_log_step = time.perf_counter(), self.step

            reason = self.limits.reached(self.step, progress.elapsed)
            if reason or self.step % cfg.eval_every == 0:
                paused = time.perf_counter()
                if self.is_main:   # the others wait for it in _save, which takes every rank's state
                    yield from self._evaluate(ema)
                stalled = not reason and self._stalled()
                yield from self._save("last")
                if stalled:
                    yield self._done("stalled", f"held-out loss has not improved for {cfg.patience} evaluations; "
                                     f"the best checkpoint (step {progress.best_step:,}) is kept")
                    return
                if reason:
                    yield self._done(reason, "")
                    return
                # Evaluation time counts towards the budget but not towards throughput.
                last_log_time += time.perf_counter() - paused

    def _stalled(self) -> bool:
        """Whether held-out loss has not improved for ``patience`` evaluations (rank 0 decides for all)."""
        p = self.progress
        stalled = bool(self.cfg.patience) and self.step - p.best_step >= self.cfg.patience * self.cfg.eval_every
        return bool(self.dist.share(stalled)) if self.dist else stalled

    def _check(self, loss: float, norm: float, ema: float | None, start_time: float):
        """Agree with the other processes and vet a step's (or interval's) figures before applying them.
        Returns (the loss to record, verdict): "ok"; "retry" after a rollback; "end" when the run ended."""
        if self.dist:
            total, stops, elapsed = self.dist.agree(loss, float(self._stop.is_set()),
                                                    time.perf_counter() - start_time, device=self.device)
            loss, self._agreed_elapsed = total / self.world, elapsed / self.world
            if stops > 0:
                yield from self._interrupted()
                return loss, "end"
        bad = self.guard.badness(loss, norm, ema, self.step)
        if not bad:
            return loss, "ok"
        failed = yield from self._recover(bad)
        return loss, "end" if failed else "retry"

    def _check_interval(self) -> int:
        return 1 if self.device.type == "cpu" else self.cfg.log_every

    def _interrupted(self) -> Iterator[ev.Event]:
        yield from self._save("last")
        yield self._done("interrupted", f"stopped at step {self.step}; continue with "
                         f"rnnchat train --resume {self.run_dir.name}")

    def _recover(self, what: str):
        """Roll back to the last good state with half the learning rate; returns True when giving up."""
        self.progress.step, give_up = self.guard.roll_back(self.model, self.optimizer, self.step)
        self.state = None
        if give_up:
            yield from self._save("last")
            yield self._done("failed", self.guard.given_up(what))
            return True
        self.progress.lr_scale *= 0.5
        yield ev.Warning(f"{what}; went back to the last good state (step {self.step}) and halved the "
                         f"learning rate (now x{self.progress.lr_scale:g})")
        return False

    def _evaluate(self, ema: float | None) -> Iterator[ev.Event]:
        figures = self.task.evaluate(self.model, self.device, self.precision)
        val, bpc = figures["val_loss"], figures["bits_per_char"]
        best = val < self.progress.best_val
        if best:
            self.progress.best_val, self.progress.best_bpc, self.progress.best_step = val, bpc, self.step
        train_loss = self.train_loss if self.train_loss is not None else ema if ema is not None else math.nan
        event = ev.Eval(step=self.step, val_loss=val, bits_per_char=bpc, perplexity=math.exp(min(val, 50.0)),
                        train_loss=train_loss, best=best,
                        distinct1=figures.get("distinct1"), distinct2=figures.get("distinct2"),
                        figures=tuple((k, v) for k, v in figures.items() if k not in _EVAL_FIELDS))
        append_metrics(self.run_dir, event)
        yield event
        if self.cfg.sample_length:
            text = self.task.sample(self.model)
            copied = self.task.novelty(text)
            yield ev.Sample(step=self.step, text=text, longest_copy=copied and copied.longest_copy,
                            copied_share=copied and copied.copied_share)
        if best:
            yield from self._save("best")

    # ---- state ---------------------------------------------------------------------------------

    def _save(self, which: str, alone: bool = False) -> Iterator[ev.Event]:
        """Every rank calls this for "last" (its RNG and carried state go in too); "best" and ``alone``
        (after a crash, when the others may be gone) are rank 0's only."""
        ranks = None
        if self.dist and which == "last" and not alone:
            ranks = self.dist.gather(rank_state(self.state if self.cfg.carry_state else None))
        if not self.is_main:
            return
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            yield ev.Warning(f"not saving '{which}': the weights are not finite")
            return
        try:
            path = save(self.run_dir, which, self.model, self.optimizer, self.progress,
                        self.state if self.cfg.carry_state else None,
                        self.step / max(1e-9, self.task.steps_per_epoch()), ranks)
            self.meta = dataclasses.replace(self.meta, summary=self.progress.summary())
            write_meta(self.run_dir, self.meta)
        except OSError as exc:
            raise RnnchatError(f"could not save the checkpoint in {self.run_dir}: {exc}") from None
        if which == "last":
            self._saved_step = self.step
        yield ev.Checkpoint(step=self.step, path=str(path), which=which)

    def _save_on_crash(self) -> None:
        """Last resort on an unexpected error: keep the work done so far if the weights are sound."""
        if self.model is None or self.run_dir is None or self.step == 0 or not self.is_main:
            return
        try:
            for _ in self._save("last", alone=True):
                pass
        except Exception:  # noqa: BLE001 - the original error is the one to report
            pass

    def _done(self, reason: str, message: str) -> ev.Done:
        p = self.progress
        return ev.Done(step=self.step, reason=reason, best_val_loss=p.summary().best_val_loss,
                       best_bits_per_char=p.best_bpc, elapsed=p.elapsed, run_dir=str(self.run_dir),
                       message=message)
