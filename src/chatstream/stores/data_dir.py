"""The data directory: the SQLite database, the generated JWT secret and the answer journal.

Only the server's own user may read any of it: the database holds password hashes and every
conversation, the secret signs everybody's tokens.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

# What the server keeps there. Only these are touched: CHATSTREAM_DATA_DIR may name a folder
# that holds other things too.
OURS = ("chatstream.db", "chatstream.db-wal", "chatstream.db-shm", "jwt-secret", "journal")


def make_private(directory: Path) -> None:
    """Creates the directory (0700) when missing, and takes every permission of group and others
    off it and off what the server keeps in it: an older version, or a permissive umask, may have
    left the database readable by every user of the machine. Symbolic links are left alone."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths = [directory, *(directory / name for name in OURS)]
    journal = directory / "journal"
    if journal.is_dir() and not journal.is_symlink():
        paths += journal.iterdir()
    for path in paths:
        with contextlib.suppress(FileNotFoundError):  # not there (yet), or gone meanwhile
            mode = path.lstat().st_mode
            if not stat.S_ISLNK(mode) and stat.S_IMODE(mode) & 0o077:
                os.chmod(path, stat.S_IMODE(mode) & ~0o077)
