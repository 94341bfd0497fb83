#!/usr/bin/env bash
# One command for a CUDA GPU (issue 26): the CUDA-only tests, 2 minutes of the auto preset's CUDA row against
# the plain loop (benchmarks/quality.py), batch-1 sampling speed of that row's shape (benchmarks/sampling.py),
# then one table. Estimated at 6-7 minutes on one GPU (not yet run on one; tests ~1, training 2+2 plus scoring,
# sampling ~1); exits non-zero on any failure, and at once, with one line, where
# there is no CUDA GPU.
#
#   bash benchmarks/gpu.sh            (from anywhere; it works in the repository root)
#
# Which Python: $PYTHON if set, else the active virtual environment's, else .venv's, else python3: the first
# that imports rnnchat, torch and pytest. With none, it makes .venv and runs the README's install
# (pip install -c constraints.txt -e ".[test]"). A CUDA build of torch is then needed: if that Python's torch
# is a CPU build (a local "+cpu" wheel, as CI machines keep, satisfies the pin), and the Python is a virtual
# environment, torch is reinstalled at the pinned version from $TORCH_INDEX_URL (default PyPI, whose Linux
# x86_64 wheels are CUDA builds; a driver older than that build's CUDA needs e.g.
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126), ignoring local wheels. Installing needs the network
# and is not counted in the 7 minutes.
#
# Results: the table on stdout; the raw JSON and the test log in $OUT if set (else a new temporary folder,
# named at the end).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "gpu.sh: $*" >&2; exit 1; }

if ! { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; } \
        && ! ls /proc/driver/nvidia/gpus/* >/dev/null 2>&1; then
    echo "gpu.sh: no CUDA GPU on this machine (nvidia-smi lists none): nothing to measure" >&2
    exit 3
fi

usable() { [ -n "$1" ] && command -v "$1" >/dev/null 2>&1 && "$1" -c 'import rnnchat, torch, pytest' 2>/dev/null; }
PY=""
for candidate in "${PYTHON:-}" "${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/python}" .venv/bin/python python3; do
    if usable "$candidate"; then PY="$candidate"; break; fi
done
if [ -z "$PY" ]; then
    echo "gpu.sh: rnnchat is not importable here; installing into .venv (pip install -c constraints.txt -e \".[test]\")"
    python3 -m venv .venv || fail "could not make .venv (python3 -m venv)"
    PY=.venv/bin/python
    "$PY" -m pip install -q -c constraints.txt -e ".[test]" || fail "pip install -c constraints.txt -e \".[test]\" failed"
fi
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.version.cuda else 1)'; then
    "$PY" -c 'import sys; sys.exit(0 if sys.prefix != sys.base_prefix else 1)' \
        || fail "$PY has a CPU build of torch and is not a virtual environment; set PYTHON to one with a CUDA build"
    pin=$(grep -E '^torch==' constraints.txt | head -1 | cut -d= -f3)
    echo "gpu.sh: $PY has a CPU build of torch; installing torch ${pin:-(unpinned)} from ${TORCH_INDEX_URL:-PyPI}"
    "$PY" -m pip uninstall -q -y torch
    env -u PIP_FIND_LINKS -u PIP_NO_INDEX "$PY" -m pip install -q --no-cache-dir "torch${pin:+==$pin}" \
        ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} || fail "could not install a CUDA build of torch"
fi
"$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' \
    || fail "$("$PY" -c 'import torch; print(f"torch {torch.__version__} (CUDA {torch.version.cuda})")') does not see" \
            "the GPU (a driver older than this build's CUDA? set TORCH_INDEX_URL to a matching build's index)"

RESULTS="${OUT:-$(mktemp -d -t rnnchat-gpu-XXXXXX)}"
mkdir -p "$RESULTS"
start=$SECONDS
stage() { echo; echo "== $1 ($((SECONDS - start)) s in)"; }

stage "the CUDA-only tests"
# The tests skipped without a GPU: every test function whose skipif names torch.cuda.is_available().
mapfile -t cuda_tests < <("$PY" - <<'EOF'
import ast, pathlib
for path in sorted(pathlib.Path("tests").rglob("test_*.py")):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef) and any("cuda.is_available" in ast.unparse(d) for d in node.decorator_list):
            print(f"{path}::{node.name}")
EOF
)
[ "${#cuda_tests[@]}" -gt 0 ] || fail "found no CUDA-only tests under tests/"
tests_ok=0
timeout 300 "$PY" -m pytest -q -rs -p no:cacheprovider "${cuda_tests[@]}" 2>&1 | tee "$RESULTS/cuda-tests.txt" || tests_ok=1
grep -qiE '[0-9]+ skipped' "$RESULTS/cuda-tests.txt" && tests_ok=1    # a skip here means the GPU was not used
[ "$tests_ok" -eq 0 ] || fail "the CUDA-only tests failed or skipped (log: $RESULTS/cuda-tests.txt)"

stage "2 minutes of the auto preset's CUDA row against the plain LSTM loop (benchmarks/quality.py)"
timeout 420 "$PY" benchmarks/quality.py --minutes 2 --marks 1 --peer-cell lstm --json > "$RESULTS/quality.out" \
    || fail "benchmarks/quality.py failed (output: $RESULTS/quality.out)"

stage "sampling at batch 1, the CUDA row's shape (benchmarks/sampling.py; sampling runs on the CPU)"
shape=$("$PY" -c 'from rnnchat.runs import auto; s = auto.choose("cuda", 5, None).settings
print(s["cell"], s["layers"], s["hidden"])')
read -r cell layers hidden <<< "$shape"
timeout 180 "$PY" benchmarks/sampling.py --cell "$cell" --layers "$layers" --hidden "$hidden" --json \
    > "$RESULTS/sampling.json" || fail "benchmarks/sampling.py failed (output: $RESULTS/sampling.json)"

stage "the table"
"$PY" - "$RESULTS" "${#cuda_tests[@]}" $((SECONDS - start)) <<'EOF' | tee "$RESULTS/table.md"
import json, math, pathlib, re, sys
res, n_tests, seconds = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
raw = (res / "quality.out").read_text()
quality = json.loads(raw[raw.index("\n{") + 1:])          # the header lines, then one JSON object
samp = json.loads((res / "sampling.json").read_text())
log = (res / "cuda-tests.txt").read_text()
passed = re.search(r"(\d+) passed", log)
m = quality["machine"]
print(f"date {quality['date']}; {m['device']}; CPU {m['cpu']} ({m['cores']} cores); torch {m['torch']}; "
      f"{seconds} s in all\n")
rows = {r["side"]: r for r in quality["rows"]}
ours, peer = rows["rnnchat"], rows["peer"]
final = lambda r: r["curve"][-1]["val_loss"]
print("| figure | rnnchat | plain loop, same run | ratio |")
print("|---|---|---|---|")
print(f"| CUDA-only tests | {passed.group(1) if passed else 0} of {n_tests} passed | | |")
c = ours["config"]
row = f"{c['cell'].upper()} {c['layers']}x{c['hidden']}, batch {c['batch_size']}, window {c['seq_len']}"
print(f"| training chars/s (rnnchat: {row}; loop: LSTM 2x256, batch 64) | {ours['chars_per_s']:,.0f} | "
      f"{peer['chars_per_s']:,.0f} | {ours['chars_per_s'] / peer['chars_per_s']:.2f}x |")
print(f"| model TFLOP/s | {ours['flops'] / 1e12:.3g} | {peer['flops'] / 1e12:.3g} | |")
print(f"| val loss after {quality['minutes']:g} min, nats/char (bits/char) | {final(ours):.4f} ({final(ours) / math.log(2):.3f}) | "
      f"{final(peer):.4f} ({final(peer) / math.log(2):.3f}) | {final(ours) / final(peer):.3f} |")
mo = samp["model"]
shape = f"{mo['cell'].upper()} {mo['layers']}x{mo['hidden']}"
print(f"| sampling chars/s, batch 1, {shape} (on the CPU; {samp['auto_weights']} weights chosen) | "
      f"{samp['ours']['chars_per_s']:,.0f} | naive {samp['naive']['chars_per_s']:,.0f} | "
      f"{samp['speedup_ours_over_naive']:.1f}x |")
print(f"| same, float32 (--exact); first char | {samp['ours_exact']['chars_per_s']:,.0f}; "
      f"{samp['ours']['first_char_ms']:.2f} ms | | |")
print(f"\nrnnchat's row: {ours['preset']}")
EOF
echo
echo "gpu.sh: done in $((SECONDS - start)) s; raw results in $RESULTS"
