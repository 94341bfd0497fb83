"""The core never imports textual: every module outside rnnchat.tui is imported in a fresh interpreter."""

import subprocess
import sys


def test_every_core_module_imports_without_textual():
    # Walked by hand: pkgutil.walk_packages would import rnnchat.tui's subpackages to find their modules.
    code = ("import pkgutil, sys, importlib, rnnchat\n"
            "def walk(path, prefix):\n"
            "    for m in pkgutil.iter_modules(path, prefix):\n"
            "        if m.name == 'rnnchat.tui':\n"
            "            continue\n"
            "        yield m.name\n"
            "        if m.ispkg:\n"
            "            yield from walk([f'{path[0]}/{m.name.rsplit(\".\", 1)[1]}'], m.name + '.')\n"
            "names = list(walk(rnnchat.__path__, 'rnnchat.'))\n"
            "for name in names:\n"
            "    importlib.import_module(name)\n"
            "bad = [m for m in sys.modules if m == 'textual' or m.startswith('textual.')]\n"
            "assert not bad, bad\n"
            "assert len(names) > 30, names\n"
            "print(len(names))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) > 30
