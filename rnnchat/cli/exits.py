"""The exit codes of every ``rnnchat`` command, in a module of their own so that the parser and the command
modules import them from here and never from the package that imports them."""

EXIT_FAILED = 1         # the work itself failed (a save, a training run that stopped on an error, a bug)
EXIT_USAGE = 2          # what the user gave was wrong: argparse's own code for usage errors
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl+C
