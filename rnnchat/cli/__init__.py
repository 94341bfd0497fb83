"""The ``rnnchat`` command: the app with no arguments, else one subcommand (train, generate, chat, eval,
corpus), each in its own module here and built into the parser by ``cli/parser.py``. Exit codes live in
``cli/exits.py``: no module of the package imports this one.

Errors in what the user gave (files, names, option values) print one line on stderr and exit 2;
nothing the user can cause prints a traceback (set RNNCHAT_DEBUG=1 to see one for a real bug).
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

from rnnchat.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE
from rnnchat.cli.parser import build_parser
from rnnchat.errors import ConfigError, RnnchatError


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is None:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            _err("the app needs a terminal; for scripts use the subcommands (see 'rnnchat --help')")
            return EXIT_USAGE
        from rnnchat.tui.app import run_app  # textual is imported only here: the core stays headless

        return run_app()
    try:
        return args.func(args)
    except ConfigError as exc:
        _err(exc.phrased("--" + exc.field.replace("_", "-")) if exc.field else str(exc))
        return EXIT_USAGE
    except RnnchatError as exc:
        _err(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("rnnchat: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `rnnchat generate RUN | head`): not an error.
        sys.stderr.close()
        return 0
    except Exception as exc:  # noqa: BLE001 - a bug; say so in one line unless debugging
        if os.environ.get("RNNCHAT_DEBUG"):
            raise
        _err(f"internal error: {type(exc).__name__}: {exc} (set RNNCHAT_DEBUG=1 for details; please report it)")
        return EXIT_FAILED


def _err(message: str) -> None:
    from rnnchat.cli.console import err

    err(message)
