"""The core never imports textual: every module outside rnnchat.tui is imported in a fresh interpreter."""

import subprocess
import sys


def test_every_core_module_imports_without_textual():
    code = ("import pkgutil, sys, importlib, rnnchat\n"
            "names = [m.name for m in pkgutil.walk_packages(rnnchat.__path__, 'rnnchat.')\n"
            "         if m.name != 'rnnchat.tui' and not m.name.startswith('rnnchat.tui.')]\n"
            "for name in names:\n"
            "    importlib.import_module(name)\n"
            "bad = [m for m in sys.modules if m == 'textual' or m.startswith('textual.')]\n"
            "assert not bad, bad\n"
            "assert len(names) > 30, names\n"
            "print(len(names))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) > 30
