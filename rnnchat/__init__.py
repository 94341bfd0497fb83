"""rnnchat: recurrent language models you train on your own corpus, headless core.

The core (everything outside ``rnnchat.tui``) never imports textual.
"""

__version__ = "0.1.0"

# Bumped when the on-disk checkpoint layout changes in a way older code cannot read.
CHECKPOINT_FORMAT = 1
