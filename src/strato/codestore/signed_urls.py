"""Presigned URLs of code packages: what ``GetFunction`` returns as ``Code.Location``.

Like Lambda's (an S3 URL valid for ten minutes,
https://docs.aws.amazon.com/lambda/latest/api/API_FunctionCodeLocation.html), a URL names one
package by its SHA-256 and carries its expiry and an HMAC-SHA256 of both under a key of this
server's (``code-url.key`` in the data dir, 0600, made on first start). Anyone holding the
URL may fetch the package until it expires; nobody can make one without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

#: How long a URL stays valid (Lambda's presigned URLs: 10 minutes).
CODE_URL_TTL_S = 600
#: The path under which the API server serves packages (``api.code_download``).
CODE_PATH = "/_strato/code/"


def load_key(path: Path) -> bytes:
    """The signing key kept at ``path`` (mode 0600), created with 32 random bytes on first
    call. Not safe against two processes creating it at once (one server owns a data dir)."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))
    return path.read_bytes()


class CodeUrlSigner:
    """Makes and checks code URLs under one key; thread-safe (holds no mutable state)."""

    def __init__(self, key: bytes, ttl_s: int = CODE_URL_TTL_S) -> None:
        self._key = key
        self._ttl_s = ttl_s

    def _signature(self, sha256_hex: str, expires: str) -> str:
        return hmac.new(self._key, f"{sha256_hex}:{expires}".encode(), hashlib.sha256).hexdigest()

    def url(self, sha256_hex: str, base_url: str) -> str:
        """The URL, under ``base_url``, of the package ``sha256_hex``, valid for the TTL."""
        expires = str(int(time.time()) + self._ttl_s)
        signature = self._signature(sha256_hex, expires)
        return f"{base_url}{CODE_PATH}{sha256_hex}.zip?expires={expires}&signature={signature}"

    def valid(self, sha256_hex: str, expires: str, signature: str) -> bool:
        """Whether ``signature`` is this key's for ``sha256_hex`` and ``expires`` (as given in
        the URL) and ``expires`` is not past. Compares in constant time."""
        wanted = self._signature(sha256_hex, expires)
        return (expires.isdigit() and int(expires) >= time.time()
                and hmac.compare_digest(signature, wanted))
