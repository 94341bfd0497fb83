"""The app's tests. A package, so that their conftest.py imports as ``tui.conftest`` and the top-level
``conftest`` the other folders import from stays the one in tests/."""
