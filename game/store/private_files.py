"""Files only their owner can read: the database, the cookie-signing key, scene pictures.

The process umask would make them readable by every user of the machine (0644); players'
stories and the key that signs their cookies are not for them.
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> None:
    """Create the folder readable by its owner only. A folder that exists is left as it is:
    it may be shared (a database in /tmp); the files in it are private anyway."""
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=DIR_MODE, exist_ok=True)


def private_database(path: Path) -> None:
    """Create the SQLite file empty if missing; make it and its companions owner-only.

    SQLite gives new -wal and -shm files the database file's mode; ones left from before are
    tightened here too.
    """
    private_dir(path.parent)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE))
    for suffix in ("", "-wal", "-shm", "-journal"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.chmod(FILE_MODE)


def write_private(path: Path, data: bytes) -> None:
    """Write a new file (replacing any) readable by its owner only."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
