"""Shared test helpers: building deployment packages in memory; each session's temporary
directory."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest

#: Parent of every session's temporary directory: traversable by the other uids fallback-tier
#: environments run as. pytest's own ``pytest-of-<user>`` is made 0700 again by each session
#: that starts, which would cut off the environments of a session already running.
SESSIONS_DIR = Path(tempfile.gettempdir()) / "strato-test-sessions"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pytest_configure(config: pytest.Config) -> None:
    """Give the session a ``--basetemp`` of its own below ``SESSIONS_DIR`` (unless one was
    given), and remove those of sessions that have ended."""
    if config.option.basetemp:
        return
    SESSIONS_DIR.mkdir(exist_ok=True)
    SESSIONS_DIR.chmod(0o711)
    for entry in SESSIONS_DIR.iterdir():
        if entry.name.isdigit() and not _alive(int(entry.name)):
            with contextlib.suppress(OSError):
                shutil.rmtree(entry)
    config.option.basetemp = str(SESSIONS_DIR / str(os.getpid()))


def make_zip(files: Mapping[str, str | bytes], *, modes: Mapping[str, int] | None = None) -> bytes:
    """A zip of ``files`` (name → content); ``modes`` sets Unix permission bits per name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = ((modes or {}).get(name, 0o644) | 0o100000) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()
