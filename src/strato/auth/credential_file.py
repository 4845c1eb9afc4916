"""The credentials file of a data dir (``credentials.json``): secrets at rest, mode 0600.

The file is the one place credentials live. The server reads it (``store.CredentialStore``);
``strato credentials`` and the first start change it. Every change is a read-modify-write under
an exclusive ``flock`` of ``credentials.json.lock`` and replaces the file atomically (a new
file written, flushed and renamed over the old one), so a reader sees the whole old or the whole
new content, never a part. The file and its lock are created with mode 0600 whatever the
umask: they are never group- or world-readable.

Format: ``{"credentials": [{"accessKeyId", "secretAccessKey", "accountId", "arn", "policy",
"created"}, ...]}``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from strato.auth.credentials import Credential, CredentialError, from_json, to_json

log = logging.getLogger(__name__)

CREDENTIALS_FILE = "credentials.json"
_MODE = 0o600


def credentials_path(data_dir: Path) -> Path:
    return data_dir / CREDENTIALS_FILE


def read_credentials(path: Path) -> list[Credential]:
    """Every credential in the file, in order; an absent file holds none.

    Raises CredentialError when the file is not a credentials file (the caller keeps what it
    had rather than losing every key). A file readable by others is reported, not refused.
    """
    try:
        with open(path, "rb") as source:
            mode = os.fstat(source.fileno()).st_mode
            text = source.read()
    except FileNotFoundError:
        return []
    if mode & 0o077:
        log.warning("%s is readable by other users (mode %o): chmod 600 it", path, mode & 0o777)
    try:
        document = json.loads(text)
        items = document["credentials"]
        if not isinstance(items, list):
            raise TypeError("credentials is not a list")
    except (ValueError, KeyError, TypeError) as e:
        raise CredentialError(f"{path} is not a strato credentials file: {e}") from e
    return [from_json(item) for item in items]


def write_credentials(path: Path, credentials: list[Credential]) -> None:
    """Replace the file's content atomically with ``credentials`` (mode 0600).

    The caller holds ``locked(path)`` when the new content derives from the old.
    """
    document = {"credentials": [to_json(c) for c in credentials]}
    data = (json.dumps(document, indent=2) + "\n").encode()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, _MODE)
    try:
        os.fchmod(fd, _MODE)  # O_CREAT's mode only applies to a new file, and after umask
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``path``'s credentials (blocks until it is free)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, _MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def update_credentials(
    path: Path, change: Callable[[list[Credential]], list[Credential] | None]
) -> list[Credential]:
    """Read, ``change`` and write back under the lock; ``change`` returns the new list, or
    None to leave the file untouched. Returns what the file holds afterwards."""
    with locked(path):
        current = read_credentials(path)
        changed = change(list(current))
        if changed is None:
            return current
        write_credentials(path, changed)
        return changed


def add_credential(path: Path, credential: Credential) -> None:
    """Store a new credential; CredentialError if its access key id is taken."""

    def add(current: list[Credential]) -> list[Credential]:
        if any(c.access_key_id == credential.access_key_id for c in current):
            raise CredentialError(f"the access key id {credential.access_key_id} exists already")
        return [*current, credential]

    update_credentials(path, add)


def delete_credential(path: Path, access_key_id: str) -> bool:
    """Remove the credential of ``access_key_id``; False if there was none."""
    found = False

    def remove(current: list[Credential]) -> list[Credential] | None:
        nonlocal found
        kept = [c for c in current if c.access_key_id != access_key_id]
        found = len(kept) != len(current)
        return kept if found else None

    update_credentials(path, remove)
    return found
