"""The package layering of docs/architecture.md, as the import-linter contracts in pyproject.toml state it."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "import-linter is part of the test extras: pip install -e '.[test]'"
    proc = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 kept, 0 broken" in proc.stdout


def test_contracts_catch_an_upward_import(tmp_path):
    """The contract is not vacuous: a text/ module importing train/ breaks it."""
    pkg = tmp_path / "rnnchat"
    shutil.copytree(ROOT / "rnnchat", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (pkg / "text" / "corpus.py").write_text((pkg / "text" / "corpus.py").read_text()
                                            + "\nfrom rnnchat.train import loop  # noqa\n")
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    proc = subprocess.run([exe, "--no-cache"], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode != 0
    assert "rnnchat.text.corpus -> rnnchat.train.loop" in proc.stdout
