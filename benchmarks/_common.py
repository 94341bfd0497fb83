"""Helpers the benchmark scripts share: describing the machine, running one side in a fresh
interpreter, and printing results as plain text or as a markdown table for RESULTS.md.

Every benchmark measures rnnchat against a peer in the same run on the same machine. Each side runs in
its own subprocess (``run_side``) so torch's thread pools, allocator caches and imported modules of one
side cannot speed up or slow down the other; each child prints one JSON line last, which is its answer.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:          # run from a checkout without installing: import rnnchat from here
    sys.path.insert(0, str(ROOT))
if hasattr(sys.stdout, "reconfigure"):  # keep our lines in order with the children's stderr progress
    sys.stdout.reconfigure(line_buffering=True)


def machine_info(device: str = "cpu") -> dict:
    """CPU model, cores, memory, library versions and the device the figures were taken on."""
    import numpy as np
    import torch

    from rnnchat.device import cpu_features, cpu_model

    try:
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    except (ValueError, OSError, AttributeError):
        mem_gb = None
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and torch.cuda.is_available():
        device = f"cuda ({torch.cuda.get_device_name(0)})"
    return {
        "cpu": cpu_model(), "cpu_features": cpu_features(), "cores": os.cpu_count(), "memory_gb": mem_gb,
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "numpy": np.__version__,
        "python": platform.python_version(), "device": device,
    }


def machine_line(info: dict) -> str:
    mem = f", {info['memory_gb']} GB" if info.get("memory_gb") else ""
    return (f"{info['cpu']} ({info['cpu_features']}), {info['cores']} cores{mem}, torch {info['torch']} "
            f"({info['torch_threads']} threads), numpy {info['numpy']}, python {info['python']}, "
            f"device {info['device']}")


def header(title: str, device: str = "cpu") -> dict:
    """Print the date and the machine above a benchmark's output; returns the machine dict."""
    info = machine_info(device)
    print(f"date:    {today()}")
    print(f"machine: {machine_line(info)}")
    print(title)
    return info


def today() -> str:
    return time.strftime("%Y-%m-%d")


def proc_status_kb() -> dict:
    """This process's memory figures from /proc/self/status in KiB (VmRSS, RssAnon, RssFile, VmHWM); {} without it."""
    out = {}
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                    out[key] = int(rest.split()[0])
    except OSError:
        pass
    return out


def peak_rss_bytes() -> int:
    """This process's peak resident memory: VmHWM where /proc has it, since Linux carries ru_maxrss over from
    the parent across fork and exec (a child would report its parent's peak when that is larger)."""
    hwm = proc_status_kb().get("VmHWM")
    if hwm:
        return hwm * 1024
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss      # KiB on Linux, bytes on macOS
    return rss if sys.platform == "darwin" else rss * 1024


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (binary)."""
    return peak_rss_bytes() / 2**20


def run_side(script: str | Path, args: list[str], env: dict | None = None, echo: bool = True) -> dict:
    """Run ``python script args`` in a fresh interpreter and return the JSON object on its last stdout
    line. The child's stderr (progress lines) is passed through when ``echo``."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), full_env.get("PYTHONPATH")) if p)
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, str(script), *args], stdout=subprocess.PIPE,
                          stderr=None if echo else subprocess.PIPE, text=True, env=full_env)
    if proc.returncode != 0:
        raise SystemExit(f"{Path(script).name} {' '.join(args)} failed with exit code {proc.returncode}"
                         + (f":\n{proc.stderr}" if proc.stderr else ""))
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
    if not lines:
        raise SystemExit(f"{Path(script).name} {' '.join(args)} printed no result")
    return json.loads(lines[-1])


def answer(obj: dict) -> None:
    """A child's answer: one JSON line on stdout, last."""
    print(json.dumps(obj), flush=True)


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def markdown_table(headers: list[str], rows: list[list]) -> str:
    def cell(v) -> str:
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(headers: list[str], rows: list[list]) -> str:
    """A plain aligned table: the first column left-aligned, the others right-aligned."""
    cols = [[str(h)] + [str(r[i]) for r in rows] for i, h in enumerate(headers)]
    widths = [max(len(v) for v in col) for col in cols]
    out = []
    for r in [headers] + rows:
        cells = [str(v).ljust(widths[0]) if i == 0 else str(v).rjust(widths[i]) for i, v in enumerate(r)]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------ the peer
# "A plain PyTorch loop as a typical user writes it" (benchmarks/README.md, the protocol): nn.Embedding ->
# nn.LSTM/nn.GRU -> nn.Linear, Adam at 2e-3, gradient clipping at 5, batches of 64 random windows of 128
# characters, fp32. Written the obvious way and on purpose imports nothing from rnnchat.

def peer_device():
    """The GPU when there is one, as a typical user's script picks it."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def peer_encode(text: str):
    """Character vocabulary of ``text`` and the text as a LongTensor of ids: (chars, stoi, ids)."""
    import torch

    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    return chars, stoi, torch.tensor([stoi[c] for c in text], dtype=torch.long)


def peer_model(vocab: int, cell: str = "lstm", layers: int = 2, hidden: int = 256, embed: int = 64):
    import torch
    from torch import nn

    class CharRNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab, embed)
            rnn = nn.LSTM if cell == "lstm" else nn.GRU
            self.rnn = rnn(embed, hidden, num_layers=layers, batch_first=True)
            self.head = nn.Linear(hidden, vocab)

        def forward(self, x, state=None):
            out, state = self.rnn(self.embed(x), state)
            return self.head(out), state

    torch.manual_seed(1337)
    return CharRNN()


def peer_trainer(model, data, batch_size: int = 64, seq_len: int = 128, lr: float = 2e-3, clip: float = 5.0):
    """A function that runs one training step on a random batch and returns its loss (a float)."""
    import torch
    import torch.nn.functional as F

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(1337)

    def get_batch():
        ix = torch.randint(len(data) - seq_len - 1, (batch_size,), generator=gen)
        x = torch.stack([data[i:i + seq_len] for i in ix])
        y = torch.stack([data[i + 1:i + seq_len + 1] for i in ix])
        return x, y

    def step() -> float:
        model.train()
        x, y = get_batch()
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return loss.item()

    return step


def peer_mean_loss(model, ids, batch_size: int = 32, seq_len: int = 128) -> float:
    """Mean next-character loss (nats) over ``ids`` cut into contiguous lanes, state carried along each
    lane, so every character is scored with all the context before it in its lane (the same scheme as
    rnnchat.lm.evaluate.mean_loss)."""
    import torch
    import torch.nn.functional as F

    n = len(ids) - 1
    lanes = max(1, min(batch_size, n // seq_len))
    lane_len = n // lanes
    total, count, state = 0.0, 0, None
    model.eval()
    with torch.no_grad():
        for start in range(0, lane_len, seq_len):
            t = min(seq_len, lane_len - start)
            idx = ((torch.arange(lanes) * lane_len + start)[:, None] + torch.arange(t + 1)).to(ids.device)
            block = ids[idx]
            logits, state = model(block[:, :-1], state)
            total += F.cross_entropy(logits.reshape(-1, logits.size(-1)), block[:, 1:].reshape(-1),
                                     reduction="sum").item()
            count += block[:, 1:].numel()
    model.train()
    return total / max(1, count)


# ------------------------------------------------------------------------------------- FLOPs and ceiling
# How close a training step comes to the machine's limit: the model's matmul FLOPs per character, and
# the speed this machine reaches on exactly the matmuls of one step (same shapes, same precision).

_GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def step_matmuls(cell: str, layers: int, hidden: int, embed: int, vocab: int, batch: int, window: int):
    """(m, k, n, count) of every matmul in one training step of an embedding -> RNN -> linear model:
    the recurrent products run once per time step (forward, and backward for the state's gradient),
    the input projections, the head and every weight gradient once over all batch*window positions."""
    g, rows = _GATES[cell] * hidden, batch * window
    shapes = []
    for layer in range(layers):
        inp = embed if layer == 0 else hidden
        shapes += [(batch, hidden, g, window), (batch, g, hidden, window),          # h @ W_hh, dgates @ W_hh
                   (rows, inp, g, 1), (rows, g, inp, 1),                              # x @ W_ih, dgates @ W_ih
                   (g, rows, inp, 1), (g, rows, hidden, 1)]                           # dW_ih, dW_hh
    shapes += [(rows, hidden, vocab, 1), (rows, vocab, hidden, 1), (vocab, rows, hidden, 1)]   # the head
    return shapes


def train_flops_per_char(cell: str, layers: int, hidden: int, embed: int, vocab: int) -> float:
    """Matmul FLOPs of one training step per character: the forward's multiply-adds, three times over
    (the backward computes the gradients of the inputs and of the weights)."""
    shapes = step_matmuls(cell, layers, hidden, embed, vocab, 1, 1)
    return sum(2 * m * k * n * c for m, k, n, c in shapes)


def matmul_ceiling(cell: str, layers: int, hidden: int, embed: int, vocab: int, batch: int, window: int,
                   precision: str, repeats: int = 3) -> float:
    """FLOP/s this machine reaches on the matmuls of one training step alone, back to back in
    ``precision`` (the best of ``repeats`` passes): the speed a step could reach with nothing but them."""
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    shapes = step_matmuls(cell, layers, hidden, embed, vocab, batch, window)
    mats = [(torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype), c) for m, k, n, c in shapes]
    flops = sum(2 * a.shape[0] * a.shape[1] * b.shape[1] * c for a, b, c in mats)
    best = float("inf")
    for _ in range(repeats + 1):                 # the first pass warms the kernels and the caches
        start = time.perf_counter()
        for a, b, c in mats:
            for _ in range(c):
                torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return flops / best


def matmul_peak(precision: str, size: int = 2048, repeats: int = 3) -> float:
    """FLOP/s of one large square matmul in ``precision``: the most this machine's matmuls reach."""
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best
