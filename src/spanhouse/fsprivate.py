"""Directories for spans at rest (the embedded store, the sending queue), readable by their owner only."""

from __future__ import annotations

import os


def make_private_dirs(path: str) -> None:
    """Create `path` and every missing directory above it with mode 0700, whatever the umask grants
    beyond it (`os.makedirs` gives its mode to the last directory only: the queue under a new
    `./spanhouse-data` would leave the store's root 0755). Directories that exist keep their mode."""
    missing = []
    current = os.path.abspath(path)
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise
