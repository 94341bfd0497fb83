"""`rnnchat generate` does at start-up only what it needs: no torch._dynamo (seconds to import), no app."""

from __future__ import annotations

import subprocess
import sys

from conftest import FAST

from rnnchat.cli import main

PROBE = """
import sys
from rnnchat.cli import main
code = main(["generate", "probe", "--length", "5", "--seed", "1"])
heavy = sorted(m for m in ("torch._dynamo", "textual", "rnnchat.tui") if m in sys.modules)
print("HEAVY", heavy, code)
"""


def test_generate_imports_neither_dynamo_nor_the_app(play_file):
    assert main(["train", str(play_file), *FAST, "--max-steps", "2", "--eval-every", "10", "--name", "probe",
                 "--json"]) == 0
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300).stdout
    assert "HEAVY [] 0" in out, out
