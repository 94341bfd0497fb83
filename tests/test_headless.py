import subprocess
import sys


def test_core_imports_without_textual():
    code = ("import sys\n"
            "import rnnchat, rnnchat.cli, rnnchat.train, rnnchat.sampling, rnnchat.checkpoints, rnnchat.corpus\n"
            "import rnnchat.console, rnnchat.evaluate\n"
            "bad = [m for m in sys.modules if m == 'textual' or m.startswith('textual.')]\n"
            "assert not bad, bad\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
