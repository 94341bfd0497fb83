"""The Chat tab: the pane (``pane.py``), its replies as the torch thread makes them (``replies.py``: the
run's session, retrieval or the model, the messages that report back) and where they come from
(``source.py``: the toolbar's choice, the user's or the pane's). Nothing is imported here: the headless
test walks these packages without textual."""
