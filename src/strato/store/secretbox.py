"""Secrets at rest: a master key in the data dir and the box that seals records under it.

What is sealed: the environment variables of every function version, wherever the store
writes them (the SQLite file, its WAL, a backup of it, later a PostgreSQL server on another
host). The master key never goes into the store; it is a 32-byte file, ``master.key`` in the
data dir, made on first start with mode 0600. It guards the store's files when they travel
without the key (a backup or copy of ``state.db``, a database on another host); whoever holds
the whole data dir, key included, can open them.

Where they are opened: when a record is read from the store, in the store's codec, so the
``FunctionVersion`` every layer sees carries the variables in plaintext. The other design,
keeping the sealed blob in the model and opening it only at a cold start and in
GetFunctionConfiguration, was weighed and not taken:

- It protects memory, not disk, and the process that holds the blob also holds the key, so
  whoever can read that memory (a core dump, ptrace) gets both either way.
- It would carry a key-dependent type through the domain model, the services, the rendering
  of the API and the scheduler, and give each of them a way to fail on a bad ciphertext,
  where now one backend layer owns the key and the one error.
- The invoke path stays free of cryptography either way: the registry holds opened records,
  a cold start reads ``version.environment``, and only control-plane reads of the store
  (start-up load, Get/List/Update) pay one AES-GCM open per record, microseconds each.

The in-memory store keeps records as they are (it is not at rest) and never sees a key.

On their way into an environment the variables are in no argv and no file: the platform sends
them to the zygote in a spawn request over a socketpair, and the forked child takes them as
its environment (``execve``'s envp, or ``os.environ`` for the built-in runtime).

Sealed format (``seal``)::

    version (1 byte, 0x01) | nonce (12 bytes, random) | AES-256-GCM ciphertext and 16-byte tag

The version byte is also authenticated (it prefixes the associated data), so it cannot be
rewritten to make an old reader misread a newer format. A random 96-bit nonce per seal is
safe for far more seals than a store makes (NIST SP 800-38D allows 2^32 under one key).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from strato.errors import ConfigError, SealedSecretError
from strato.store.aes_gcm import AesGcm

#: The master key's file name in the data dir.
MASTER_KEY_FILE = "master.key"
KEY_BYTES = 32
_VERSION = b"\x01"
_NONCE_BYTES = 12
_TAG_BYTES = 16


class SecretBox:
    """AES-256-GCM (``store.aes_gcm``: the OpenSSL the interpreter links) under one master
    key. Safe to share between threads (it holds no state beyond the key). Raises ValueError
    unless ``key`` is 32 bytes, ConfigError if the host has no libcrypto."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a master key is {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AesGcm(key)

    def seal(self, plaintext: bytes, associated_data: bytes) -> bytes:
        """``plaintext`` encrypted and authenticated together with ``associated_data``, which
        is not stored: ``open`` needs the same bytes (name what the secret belongs to)."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, _VERSION + associated_data)

    def open(self, sealed: bytes, associated_data: bytes) -> bytes:
        """The plaintext ``seal`` was given. Raises SealedSecretError if ``sealed`` is of an
        unknown version, truncated, altered, sealed under another key or with other
        ``associated_data``; never returns anything but the original plaintext."""
        if sealed[:1] != _VERSION:
            raise SealedSecretError(f"unknown sealed format version {sealed[:1].hex() or 'none'}")
        if len(sealed) < 1 + _NONCE_BYTES + _TAG_BYTES:
            raise SealedSecretError(f"sealed secret is truncated ({len(sealed)} bytes)")
        nonce, ciphertext = sealed[1:1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, ciphertext, _VERSION + associated_data)
        except SealedSecretError as e:
            raise SealedSecretError(
                "sealed secret failed authentication: it was altered, sealed under another "
                "master key, or belongs to another record"
            ) from e


def master_key(path: Path) -> bytes:
    """The master key in ``path``, created first (32 random bytes, mode 0600) if absent.

    Creation is atomic: the key is written to a temporary file and linked into place, so a
    reader never sees a partial key and two processes starting together agree on one key.
    Raises ConfigError if the file is not a regular file, is open to group or others, is
    not 32 bytes, or cannot be read: strato refuses to start rather than use or replace it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        try:
            _create(path)
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as e:
            raise ConfigError(f"cannot create the master key {path}: {e.strerror}") from e
    except OSError as e:
        raise ConfigError(f"cannot read the master key {path}: {e.strerror}") from e
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"the master key {path} is not a regular file")
        if info.st_mode & 0o077:
            raise ConfigError(
                f"the master key {path} has mode {stat.S_IMODE(info.st_mode):04o}: group or "
                f"others may use it; it must be 0600 (chmod 600 {path})"
            )
        key = os.read(fd, KEY_BYTES + 1) if info.st_size == KEY_BYTES else b""
    finally:
        os.close(fd)
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"the master key {path} is {info.st_size} bytes, not {KEY_BYTES}; restore the "
            "original (a new key cannot open what the old one sealed)"
        )
    return key


def _create(path: Path) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), 0o600)  # whatever the umask left
            file.write(secrets.token_bytes(KEY_BYTES))
            file.flush()
            os.fsync(file.fileno())
        # link, unlike rename, never replaces a key another process made meanwhile
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
