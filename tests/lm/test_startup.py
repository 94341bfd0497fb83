"""`rnnchat generate` does at start-up only what it needs: no torch._dynamo (seconds to import), no app, no rich
(its output is plain lines), and none of the model kinds' training tasks (they import every corpus reader)."""

from __future__ import annotations

import subprocess
import sys

from conftest import FAST, write_x_or_z

from rnnchat.cli import main

PROBE = """
import sys
from rnnchat.cli import main
code = main(["generate", "probe", "--length", "5", "--seed", "1"])
heavy = sorted(m for m in ("torch._dynamo", "textual", "rnnchat.tui", "rich", "rnnchat.lm.task", "rnnchat.chat.task",
                           "rnnchat.classify.task", "rnnchat.text.load") if m in sys.modules)
print("HEAVY", heavy, code)
"""


def test_generate_imports_neither_dynamo_nor_the_app(play_file):
    assert main(["train", str(play_file), *FAST, "--max-steps", "2", "--eval-every", "10", "--name", "probe",
                 "--json"]) == 0
    # The first generate may build the copy index from the corpus (reading it); the second finds it cached.
    subprocess.run([sys.executable, "-m", "rnnchat", "generate", "probe", "--length", "2"], capture_output=True,
                   timeout=300, check=True)
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300).stdout
    assert "HEAVY [] 0" in out, out


def test_a_kind_imports_its_task_only_when_a_run_trains():
    code = ("import sys; from rnnchat.runs.kinds import KINDS\n"
            "before = sorted(m for m in sys.modules if m.endswith('.task'))\n"
            "names = [KINDS[k].task.__name__ for k in ('lm', 'chat', 'classify')]\n"
            "print(before, names)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[] ['LMTask', 'ChatTask', 'ClassifyTask']", out.stdout + out.stderr


def test_run_tables_configs_and_device_flags_import_no_torch():
    """What the app's first screen reads (kinds, presets, run lists, run.json, the CPU's flags) needs no torch;
    a kind's model class comes with torch when asked for."""
    code = ("import sys\n"
            "from rnnchat.runs.kinds import KINDS, plan\n"
            "import rnnchat.runs.rundir, rnnchat.runs.meta, rnnchat.runs.opened, rnnchat.device, rnnchat.text.load\n"
            "model, train, note = plan('lm', 'auto', train={'device': 'cpu'})\n"
            "before = 'torch' in sys.modules\n"
            "name = KINDS['lm'].model.__name__\n"
            "print(before, name, 'torch' in sys.modules, model.hidden > 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False RNNLM True True", out.stdout + out.stderr


TRAINS = """
import sys
from rnnchat.cli import main
small = ["--layers", "1", "--hidden", "16", "--embed", "8", "--batch-size", "8", "--precision", "fp32",
         "--eval-every", "2", "--sample-length", "2", "--json"]
codes = [main(["train", *args]) for args in (
    [sys.argv[1], "--max-steps", "2", "--eval-every", "2", "--sample-length", "2", "--name", "lm", "--json"],
    ["--resume", "lm", "--max-steps", "3", "--json"],
    [sys.argv[2], "--task", "chat", *small, "--max-steps", "2", "--name", "chatty"],
    [sys.argv[3], "--task", "classify", *small, "--max-steps", "2", "--name", "sorter"])]
print("DYNAMO", "torch._dynamo" in sys.modules, codes)
"""


def test_train_and_resume_of_each_kind_import_no_dynamo(play_file, tmp_path):
    """A train start sizes its model on the meta device and steps AdamW: neither imports torch._dynamo (~2 s);
    the language model trains at its default size, which the small-corpus rule counts."""
    chat = tmp_path / "chat.tsv"
    chat.write_text("prompt\treply\n" + "".join(f"hello {i}\tworld {i}\n" for i in range(60)), encoding="utf-8")
    labelled = write_x_or_z(tmp_path / "two.tsv", 120)
    out = subprocess.run([sys.executable, "-c", TRAINS, str(play_file), str(chat), str(labelled)],
                         capture_output=True, text=True, timeout=300)
    assert "DYNAMO False [0, 0, 0, 0]" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
