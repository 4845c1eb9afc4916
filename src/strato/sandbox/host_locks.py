"""Host-wide claims between strato servers: an exclusive ``flock`` on a file of a shared
directory, held for as long as the returned fd stays open (so it dies with its process)."""

from __future__ import annotations

import fcntl
import os


def try_lock(path: str) -> int | None:
    """Create ``path`` (mode 0600) if needed and take its exclusive lock without waiting:
    the open fd that holds it, or None when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
