"""No module of ``rnnchat.cli`` imports the package itself: the exit codes live in ``cli/exits.py``."""

import ast
from pathlib import Path

import rnnchat.cli


def test_no_cli_module_imports_the_cli_package():
    offenders = [path.name for path in sorted(Path(rnnchat.cli.__file__).parent.glob("*.py"))
                 for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                 if isinstance(node, ast.ImportFrom) and node.module == "rnnchat.cli"]
    assert offenders == [], "exit codes come from rnnchat.cli.exits, never from the package"
