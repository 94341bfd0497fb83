"""The Inspect tab: the pane (``pane.py``) and the gradients through time it shows (``gradients.py``: what
they are measured on, and the ``GradientView`` the pane owns). Nothing is imported here: the headless test
walks these packages without textual."""
