"""Run kinds and run directories on disk."""
