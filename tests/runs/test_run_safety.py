"""Run directories under stress (issue 11, items 5 and 7-10): one trainer per run, saves that survive a kill at
any point or a full disk, untrusted folders refused, and the CUDA generator restored on resume."""

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from rnnchat import events as ev
from rnnchat.config import TrainConfig
from rnnchat.errors import CheckpointError, ConfigError
from rnnchat.lm.config import ModelConfig
from rnnchat.runs import checkpoints as c
from rnnchat.runs import rundir, state
from rnnchat.runs.checkpoints import load_checkpoint, save_checkpoint
from rnnchat.runs.opened import open_language_model
from rnnchat.train.loop import Trainer

RNNCHAT = str(Path(sys.executable).parent / "rnnchat")
TINY = ModelConfig(layers=1, hidden=32, embed=8, dropout=0.0)


def quick(**kw) -> TrainConfig:
    base = dict(seq_len=16, batch_size=8, max_steps=6, eval_every=3, sample_length=0, precision="fp32", device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def cli(*args, preexec_fn=None, timeout=120):
    return subprocess.run([RNNCHAT, *args], capture_output=True, text=True, timeout=timeout, preexec_fn=preexec_fn,
                          env={**os.environ, "COLUMNS": "100", "OMP_NUM_THREADS": "1"})


@pytest.fixture
def trained(play_file):
    trainer = Trainer(str(play_file), TINY, quick(), name="safe")
    list(trainer.run())
    return trainer.run_dir


# ---- item 7: one trainer per run ----------------------------------------------------------------

def test_a_run_in_use_is_refused_to_a_second_trainer(trained):
    first = Trainer(resume="safe", overrides={"max_steps": 1000})
    events = first.run()
    assert isinstance(next(e for e in events if isinstance(e, ev.Started)), ev.Started)   # holds the run now
    with pytest.raises(ConfigError, match="run 'safe' is in use by another training"):
        list(Trainer(resume="safe", overrides={"max_steps": 2000}).run())
    # The real command, from another process: one line, exit 2.
    res = cli("train", "--resume", "safe", "--max-steps", "2000")
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "run 'safe' is in use" in res.stderr and f"process {os.getpid()}" in res.stderr
    events.close()                                  # released when the training ends
    assert not (trained / ".lock").exists()
    done = list(Trainer(resume="safe", overrides={"max_steps": 9}).run())[-1]
    assert done.reason == "max_steps" and done.step == 9


def test_a_run_in_use_cannot_be_deleted(trained):
    """Before: the app's Delete removed a run while it trained."""
    from rnnchat.runs.rundir import delete_run

    events = Trainer(resume="safe", overrides={"max_steps": 1000}).run()
    next(e for e in events if isinstance(e, ev.Started))
    with pytest.raises(ConfigError, match="in use"):
        delete_run("safe")
    assert (trained / "run.json").exists()
    events.close()
    delete_run("safe")
    assert not trained.exists()


@pytest.mark.parametrize("name", ["x" * 300, "a\u202eb", "tab\there", "zero\u200bwidth"])
def test_unusable_run_names_are_one_line(play_file, name):
    """Before: an over-long name was 'internal error: OSError: File name too long'; a NUL one 'embedded null
    byte'; bidi and zero-width characters went into the folder name."""
    res = cli("train", str(play_file), "--max-steps", "1", "--name", name)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "--name" in res.stderr and "Traceback" not in res.stderr


def test_a_lock_left_by_a_dead_process_does_not_block(trained):
    script = (f"from pathlib import Path; import os; from rnnchat.runs import rundir; "
              f"rundir.lock(Path({str(trained)!r})); os._exit(9)")
    assert subprocess.run([sys.executable, "-c", script]).returncode == 9
    assert (trained / ".lock").exists()
    done = list(Trainer(resume="safe", overrides={"max_steps": 9}).run())[-1]
    assert done.reason == "max_steps" and done.step == 9


def test_a_folder_without_run_json_is_not_reused(play_file, isolated_paths):
    stale = isolated_paths / "checkpoints" / "old"
    (stale / "last").mkdir(parents=True)
    (stale / "metrics.jsonl").write_text('{"step": 999}\n')
    with pytest.raises(ConfigError, match="holds no run"):
        list(Trainer(str(play_file), TINY, quick(), name="old").run())
    assert (stale / "metrics.jsonl").read_text() == '{"step": 999}\n'
    assert not (stale / "tokenizer.json").exists()


def test_default_names_are_unique_even_in_the_same_second(play_file, monkeypatch):
    monkeypatch.setattr(rundir, "default_name", lambda *a: "same-second")
    dirs = []
    for _ in range(3):
        trainer = Trainer(str(play_file), TINY, quick(max_steps=3))
        list(trainer.run())
        dirs.append(trainer.run_dir.name)
    assert dirs == ["same-second", "same-second-2", "same-second-3"]
    with pytest.raises(ConfigError, match="already exists"):
        list(Trainer(str(play_file), TINY, quick(), name="same-second").run())


# ---- item 8: a kill at any point of a save ------------------------------------------------------

_COUNTED = ("rename", "replace", "fsync", "unlink", "rmdir", "mkdir")


def _save_dying_at(run: Path, k: int, step: int) -> bool:
    """A forked child saves ``step`` and dies (os._exit, no cleanup) at its k-th file-system call;
    True when the save finished first."""
    weights = {"w": torch.full((256,), float(step))}   # made before the fork: the child runs no torch kernels
    pid = os.fork()
    if pid == 0:
        try:
            calls = [0]

            def counting(fn):
                def wrapper(*a, **kw):
                    calls[0] += 1
                    if calls[0] == k:
                        os._exit(9)
                    return fn(*a, **kw)
                return wrapper
            for name in _COUNTED:
                setattr(os, name, counting(getattr(os, name)))
            for name in ("write_file", "save_file"):   # the file writer (save_file before issue 11)
                if hasattr(c, name):
                    setattr(c, name, counting(getattr(c, name)))
            save_checkpoint(run, "last", weights, {}, {"step": step})
            os._exit(0)
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, 9), code
    return code == 0


def test_a_kill_at_any_point_of_a_save_leaves_a_checkpoint_that_loads(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    save_checkpoint(run, "last", {"w": torch.full((256,), 1.0)}, {}, {"step": 1})
    saved = {1}
    for k in range(1, 200):
        step = 100 + k
        finished = _save_dying_at(run, k, step)
        saved.add(step)
        loaded = load_checkpoint(run, "last")       # every kill so far leaves one that loads...
        assert loaded.trainer["step"] in saved, (k, loaded.trainer)
        assert torch.equal(loaded.model["w"], torch.full((256,), float(loaded.trainer["step"])))   # ...whole
        if finished:
            break
    else:
        pytest.fail("the save never finished")
    assert k > 10 and loaded.trainer["step"] == step
    # The next save clears what the dead savers left behind.
    save_checkpoint(run, "last", {"w": torch.full((256,), 7.0)}, {}, {"step": 7})
    assert {p.name for p in run.iterdir()} == {"last", ".last.old"}
    assert load_checkpoint(run, "last").trainer["step"] == 7


# ---- item 9: a full disk ------------------------------------------------------------------------

def test_a_save_on_a_full_disk_says_so_and_keeps_the_last_checkpoint(play_file, isolated_paths):
    model = ["--layers", "1", "--hidden", "128", "--embed", "16", "--seq-len", "16", "--batch-size", "8",
             "--sample-length", "0", "--precision", "fp32", "--device", "cpu"]
    first = cli("train", str(play_file), *model, "--max-steps", "4", "--eval-every", "4", "--name", "full")
    assert first.returncode == 0, first.stderr
    run = isolated_paths / "checkpoints" / "full"
    assert (run / "last" / "model.safetensors").stat().st_size > 200_000

    def small_files():            # like `ulimit -f`: a write past 100 kB fails with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    res = cli("train", "--resume", "full", "--max-steps", "8", "--eval-every", "4", preexec_fn=small_files)
    assert res.returncode == 1, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and "the disk is full" in lines[0] and "internal error" not in lines[0], res.stderr
    assert f"{run / 'last'} (step 4) is intact" in lines[0]
    assert not [p.name for p in run.iterdir() if ".tmp-" in p.name]
    assert load_checkpoint(run, "last").trainer["step"] == 4


# ---- item 10: untrusted run directories ---------------------------------------------------------

def test_metrics_are_never_appended_through_a_link(trained, tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious\n")
    (trained / "metrics.jsonl").unlink()
    (trained / "metrics.jsonl").symlink_to(target)
    event = ev.Eval(step=1, val_loss=1.0, bits_per_char=1.0, perplexity=2.7, train_loss=1.0, best=True)
    with pytest.raises(CheckpointError, match="symbolic link"):
        rundir.append_metrics(trained, event)
    with pytest.raises(CheckpointError, match="symbolic link"):
        list(Trainer(resume="safe", overrides={"max_steps": 9}).run())
    assert target.read_text() == "precious\n"


@pytest.mark.parametrize("name", ["run.json", "tokenizer.json", "last", "best", "metrics.jsonl"])
def test_links_anywhere_in_a_run_are_refused(trained, tmp_path, name):
    path = trained / name
    moved = tmp_path / f"moved-{name}"
    path.rename(moved)
    path.symlink_to(moved)                          # the same content, reached through a link
    with pytest.raises(CheckpointError, match="symbolic link"):
        open_language_model(str(trained), "last")


def test_a_tokenizer_linked_to_dev_zero_is_refused_at_once(trained):
    """Read in a child with 1 GB of address space: before the fix, reading /dev/zero never ends."""
    (trained / "tokenizer.json").unlink()
    (trained / "tokenizer.json").symlink_to("/dev/zero")
    script = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from rnnchat.text.tokenizers import load_tokenizer
        try:
            load_tokenizer({str(trained)!r})
        except Exception as exc:
            print(type(exc).__name__, exc)
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert res.stdout.startswith("CheckpointError") and "symbolic link" in res.stdout, res.stdout + res.stderr


def test_a_run_json_asking_for_a_huge_model_is_refused_before_building_it(trained):
    """Hidden 8192 x 16 layers is 34 GB; in a child with 2 GB of address space nothing that size may be tried."""
    meta = json.loads((trained / "run.json").read_text())
    meta["model"].update(hidden=8192, embed=8192, layers=16)
    (trained / "run.json").write_text(json.dumps(meta))
    script = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        from rnnchat.runs.opened import open_language_model
        from rnnchat.train.loop import Trainer
        for attempt in (lambda: open_language_model({str(trained)!r}),
                        lambda: list(Trainer(resume={str(trained)!r}, overrides={{"max_steps": 99}}).run())):
            try:
                attempt()
            except Exception as exc:
                print(type(exc).__name__, exc)
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    lines = res.stdout.splitlines()
    assert len(lines) == 2, res.stdout + res.stderr
    for line in lines:
        assert line.startswith("CheckpointError") and "parameters but its weights file holds" in line, line


def test_runs_saved_without_tokenizer_entries_still_load(trained):
    for which in ("last", "best", ".last.old", ".best.old"):
        manifest = trained / which / "manifest.json"
        if manifest.exists():
            data = json.loads(manifest.read_text())
            del data["run_files"]
            manifest.write_text(json.dumps(data))
    assert open_language_model(str(trained)).model is not None


# ---- item 5: the CUDA generator -----------------------------------------------------------------

def test_the_cuda_generator_state_is_saved_and_restored(trained, monkeypatch):
    """On a CPU-only machine the CUDA calls are stand-ins: what is saved comes back, device by device."""
    states = [torch.arange(16, dtype=torch.uint8), torch.arange(16, 32, dtype=torch.uint8)]
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: states)
    model = open_language_model(str(trained), "last").model
    opt = torch.optim.AdamW(model.parameters())
    state.save(trained, "last", model, opt, state.Progress(step=5), None, 0.0)
    restored = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, i: restored.append((i, s.tolist())))
    state.restore(load_checkpoint(trained, "last", with_optimizer=True), model, opt, torch.device("cuda"), "safe")
    assert restored == [(0, list(range(16))), (1, list(range(16, 32)))]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_run_stopped_and_resumed_on_the_gpu_follows_the_same_curve(play_file):
    cfg = TrainConfig(seq_len=32, batch_size=16, lr=1e-2, warmup_steps=5, max_steps=40, eval_every=1000,
                      sample_length=0, log_every=5, precision="fp32", device="cuda")
    model = ModelConfig(layers=2, hidden=32, embed=16, dropout=0.3)   # dropout draws from the CUDA generator
    full = {e.step: e.loss for e in Trainer(str(play_file), model, cfg, name="straight").run()
            if isinstance(e, ev.Step)}
    stopped = Trainer(str(play_file), model, cfg, name="stopped")
    for event in stopped.run():
        if isinstance(event, ev.Step) and event.step == 20:
            stopped.stop()
    assert event.reason == "interrupted" and event.step == 20
    second = {e.step: e.loss for e in Trainer(resume="stopped").run() if isinstance(e, ev.Step)}
    for step in (25, 30, 40):
        assert second[step] == pytest.approx(full[step], abs=1e-4), step
