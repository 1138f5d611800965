"""Directories and files for spans at rest (the embedded store, the sending queue, exported files), readable
by their owner only."""

from __future__ import annotations

import logging
import os
import stat

log = logging.getLogger(__name__)
_warned: set[str] = set()


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


def warn_if_shared(path: str, what: str) -> None:
    """Log a warning, once per directory, when other users of the machine may read `path`: an existing
    directory keeps the mode it has, and a store made by an earlier spanhouse may be 0755."""
    real = os.path.realpath(path)
    try:
        mode = os.stat(real).st_mode
    except OSError:
        return
    if real in _warned or not stat.S_ISDIR(mode) or not mode & 0o077:
        return
    _warned.add(real)
    log.warning("%s %s can be read by other users of this machine (mode %o), and it holds prompts and "
                "completions: run `chmod 700 %s` (spanhouse creates such directories 0700 but leaves an existing "
                "one as it finds it)", what, path, stat.S_IMODE(mode), path)


def open_private_file(path: str, truncate: bool) -> int:
    """A descriptor on `path` for appending, created with mode 0600 (and its missing directories 0700);
    `truncate` empties an existing file. An existing file keeps its mode."""
    make_private_dirs(os.path.dirname(os.path.abspath(path)))
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if truncate else 0)
    return os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o600)
