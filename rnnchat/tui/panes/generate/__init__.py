"""The Generate tab: the pane (``pane.py``), what one generation is and how its samplers run
(``generation.py``), and the pick-a-token mode the pane owns (``pick.py``). Nothing is imported here: the
headless test walks these packages without textual."""
