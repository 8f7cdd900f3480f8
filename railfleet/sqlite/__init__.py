"""SQLite, with its writers queued on a file lock (see base.py)."""
