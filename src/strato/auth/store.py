"""The credentials a running server knows, in memory, kept in step with the data dir's file.

``CredentialStore.lookup`` is on every request's path: a dict lookup, plus at most once a
second a ``stat`` of the file, which ``strato credentials`` may have changed; a changed file is
read again. A key created or deleted by the CLI therefore takes effect within about a second.
A file that cannot be read leaves the previous credentials in force (and is logged).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from strato.auth.credential_file import read_credentials, update_credentials
from strato.auth.credentials import Credential, CredentialError, generate, make_credential

log = logging.getLogger(__name__)

#: Seconds between two checks of the file for changes.
RECHECK_S = 1.0

_Stamp = tuple[int, int, int]


class CredentialStore:
    """``lookup(access_key_id)``: the credential, or None. Use from one thread (the loop's)."""

    def __init__(
        self, path: Path, *, clock: Callable[[], float] = time.monotonic, recheck_s: float = RECHECK_S
    ) -> None:
        self._path = path
        self._clock = clock
        self._recheck_s = recheck_s
        self._stamp: _Stamp | None = None
        self._by_key: dict[str, Credential] = {}
        self._next_check = 0.0
        self.refresh()

    def lookup(self, access_key_id: str) -> Credential | None:
        now = self._clock()
        if now >= self._next_check:
            self._next_check = now + self._recheck_s
            self.refresh()
        return self._by_key.get(access_key_id)

    def __len__(self) -> int:
        return len(self._by_key)

    def refresh(self) -> None:
        """Read the file again if it changed (inode, mtime or size) since it was last read."""
        try:
            info = os.stat(self._path)
            stamp: _Stamp | None = (info.st_ino, info.st_mtime_ns, info.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return
        try:
            credentials = read_credentials(self._path)
        except (CredentialError, OSError) as e:
            log.error("keeping the previous credentials: %s", e)
            self._stamp = stamp
            return
        if self._stamp is not None or stamp is None:
            log.info("credentials reloaded: %d access keys", len(credentials))
        self._stamp = stamp
        self._by_key = {c.access_key_id: c for c in credentials}


def ensure_admin(path: Path, account_id: str, seed: tuple[str, str] | None) -> Credential | None:
    """Make sure an administrator can sign in, at start-up.

    With ``seed`` (``STRATO_ADMIN_CREDENTIALS``), an administrator credential with exactly that
    key pair is stored (replacing one with the same access key id) and nothing is generated.
    Without it, when the file holds no credential at all, an administrator key pair is
    generated, stored, and returned so that the caller shows it (this once: only the file
    keeps it). Returns None when nothing was generated.
    """
    generated: Credential | None = None

    def change(current: list[Credential]) -> list[Credential] | None:
        nonlocal generated
        if seed is not None:
            access_key_id, secret = seed
            kept = [c for c in current if c.access_key_id == access_key_id]
            if kept and kept[0].secret_access_key == secret and kept[0].is_admin:
                return None
            admin = make_credential(access_key_id, secret, account_id=account_id, name="admin")
            return [c for c in current if c.access_key_id != access_key_id] + [admin]
        if current:
            return None
        generated = generate(account_id=account_id, name="admin")
        return [generated]

    update_credentials(path, change)
    return generated
