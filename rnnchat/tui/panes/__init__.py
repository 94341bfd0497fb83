"""The app's tabs, one pane each."""
