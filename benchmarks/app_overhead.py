"""Training speed inside the app against headless, same settings, measured side by side in one run.

Headless: iterate ``Trainer.run()`` as ``rnnchat train --json`` does. App: the real ``RnnchatApp``
(Textual's headless driver, which still lays out and renders every update) starting the same run
from its Train tab. Each side trains the same number of steps on Shakespeare with the default
(auto) preset, each in a fresh process (torch's thread pools from one side would slow the other
if they shared a process); rounds alternate the order. Reports chars/s (steady state: first log
interval dropped) and the ratio app / headless.

    python benchmarks/app_overhead.py [--steps 300] [--rounds 2] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile

from _common import machine_info, machine_line, today  # also puts the checkout on sys.path


def steady_rate(steps) -> float:
    """Characters per second over all but the first log interval (warm-up)."""
    steps = steps[1:] if len(steps) > 2 else steps
    return statistics.median(s.chars_per_s for s in steps)


def preset_shape(steps: int) -> str:
    """The model both sides train, in words: the auto preset's row for this machine and a step limit."""
    from rnnchat.device import device_class, pick_device
    from rnnchat.runs.kinds import assemble

    model, train = assemble("lm", None, train=dict(max_steps=steps))
    machine = device_class(pick_device(train.device), train.precision)
    return f"{model.cell.upper()} {model.layers}x{model.hidden}, {machine}"


def headless(steps: int) -> float:
    from rnnchat import events as ev
    from rnnchat.runs.kinds import assemble
    from rnnchat.train.loop import Trainer

    # The form's defaults: the auto preset, limited by steps (so its ten-minute row).
    model, train = assemble("lm", None, train=dict(max_steps=steps, eval_every=10**9, sample_length=0, log_every=5))
    trainer = Trainer("shakespeare", model, train)
    return steady_rate([e for e in trainer.run() if isinstance(e, ev.Step)])


async def in_app(steps: int) -> tuple[float, int]:
    from textual.widgets import Input

    from rnnchat import events as ev
    from rnnchat.tui import torch_thread
    from rnnchat.tui.app import RnnchatApp
    from rnnchat.tui.bridge import EventBatch

    seen: list = []

    def hook(message) -> None:
        if isinstance(message, EventBatch) and message.tag == "train":
            seen.extend(e for e in message.events if isinstance(e, ev.Step))

    app = RnnchatApp()
    async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
        await pilot.press("2")
        pane = await app.pane("train")          # made when its tab is first shown
        pane.query_one("#f-minutes", Input).value = ""
        pane.query_one("#f-max_steps", Input).value = str(steps)
        while not torch_thread.loaded():      # loaded after the first screen; a Start before it waits for it
            await pilot.pause(0.1)
        await pilot.pause(0.5)
        await pilot.press("ctrl+t")
        # Wait on the worker itself: polling with pilot.pause() would add the harness's own
        # per-widget message traffic to the app's cost.
        await pane.worker.wait()
        await pilot.pause(0.5)
        updates = pane.updates
    return steady_rate(seen), updates


def measure_side(side: str, steps: int) -> dict:
    """Run one side in a fresh interpreter and read its JSON answer."""
    import subprocess

    proc = subprocess.run([sys.executable, __file__, "--side", side, "--steps", str(steps)],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--side", choices=("headless", "app"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        work = tempfile.mkdtemp(prefix="rnnchat-bench-")
        os.environ["RNNCHAT_CHECKPOINTS"] = os.path.join(work, "checkpoints")
        os.chdir(work)
        if args.side == "headless":
            print(json.dumps({"rate": headless(args.steps)}))
        else:
            rate, updates = asyncio.run(in_app(args.steps))
            print(json.dumps({"rate": rate, "updates": updates}))
        return
    heads, apps, updates = [], [], []
    for r in range(args.rounds):
        order = ("headless", "app") if r % 2 == 0 else ("app", "headless")
        for side in order:
            result = measure_side(side, args.steps)
            (heads if side == "headless" else apps).append(result["rate"])
            if side == "app":
                updates.append(result["updates"])
            print(f"round {r + 1} {side:8s} {result['rate']:>10,.0f} chars/s", file=sys.stderr)
    h, a = statistics.median(heads), statistics.median(apps)
    result = {"date": today(), "machine": machine_line(machine_info("cpu")), "steps": args.steps,
              "headless_chars_per_s": round(h), "app_chars_per_s": round(a), "app_over_headless": round(a / h, 3),
              "ui_updates_per_run": statistics.median(updates), "runs": {"headless": heads, "app": apps}}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"date:    {result['date']}")
        print(f"machine: {result['machine']}")
        print(f"training {preset_shape(args.steps)} (the auto preset's row), Shakespeare, {args.steps} steps x "
              f"{args.rounds} rounds (median)")
        print(f"  headless   {h:>10,.0f} chars/s")
        updates = result["ui_updates_per_run"]
        print(f"  in the app {a:>10,.0f} chars/s   ratio {a / h:.3f}   ({updates:.0f} UI updates/run)")


if __name__ == "__main__":
    main()
