"""Temporary credentials of role sessions: what an execution environment signs with.

``RoleSessions.issue`` gives an environment an access key id (``ASIA`` and 16 characters, as
AWS's temporary keys), a secret access key and a session token that expire together after
``lifetime_s``. Nothing is stored: the token carries the key id, the role ARN, the session
name and the expiry, authenticated with an HMAC under a key that lives in this process's
memory only, and the secret is an HMAC of the key id under the same key. So credentials of
one server run are refused by the next, which no environment outlives.

``resolve`` is called by the SigV4 verifier for a key id it does not know, with the request's
``X-Amz-Security-Token``: it returns the ``Credential`` (secret and principal) to verify the
signature with, None for a token that is not one of this server's (or not this key's), or
raises ExpiredTokenException past the expiry. The principal is the role session
(``arn:aws:sts::<account>:assumed-role/<role>/<session>``) holding its role's inline policies
as they are *now* (``RoleDirectory``): a change to them applies to the next request. A role
strato does not store (a function may name any role ARN) gets ``unknown_role_policy``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from strato.auth.credentials import Credential
from strato.domain.iam.errors import ExpiredTokenException
from strato.domain.iam.roles import assumed_role_arn, parse_role_arn
from strato.domain.principals import ADMIN_POLICY, Principal

TEMPORARY_KEY_PREFIX = "ASIA"
#: The identity policy that allows nothing (no statement allows; none denies either).
NO_ACCESS: Mapping[str, Any] = {"Version": "2012-10-17", "Statement": []}
_KEY_ALPHABET = string.ascii_uppercase + "234567"


class RoleEntryLike(Protocol):
    @property
    def policy(self) -> Mapping[str, Any]: ...


class RolePolicies(Protocol):
    """Where a session finds its role's current policy (``services.roles.RoleDirectory``)."""

    def by_arn(self, arn: str) -> RoleEntryLike | None: ...


@dataclass(frozen=True)
class SessionCredentials:
    """One session's credentials; ``expiration`` is seconds since the epoch."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class RoleSessions:
    """Issues and resolves role session credentials. ``issue`` is legal from any thread;
    ``resolve`` reads the directory, which any thread may read."""

    def __init__(self, account_id: str, roles: RolePolicies, *, lifetime_s: float,
                 trust_unknown_roles: bool = False,
                 clock: Callable[[], float] = time.time, key: bytes | None = None) -> None:
        """``trust_unknown_roles`` gives sessions of roles strato does not store an
        administrator's policy instead of ``NO_ACCESS`` (``--trust-unknown-roles``)."""
        self._account = account_id
        self._roles = roles
        self.lifetime_s = lifetime_s
        self._unknown_policy = ADMIN_POLICY if trust_unknown_roles else NO_ACCESS
        self._clock = clock
        self._key = key or secrets.token_bytes(32)

    def _mac(self, purpose: bytes, data: bytes) -> bytes:
        return hmac.new(self._key, purpose + b"\0" + data, hashlib.sha256).digest()

    def _secret(self, access_key_id: str) -> str:
        return base64.b64encode(self._mac(b"secret", access_key_id.encode())).decode()[:40]

    def issue(self, role_arn: str, session_name: str) -> SessionCredentials:
        """Fresh credentials of ``role_arn`` for the session ``session_name``."""
        access_key_id = TEMPORARY_KEY_PREFIX + "".join(
            secrets.choice(_KEY_ALPHABET) for _ in range(16))
        expiration = self._clock() + self.lifetime_s
        payload = json.dumps({"k": access_key_id, "r": role_arn, "s": session_name,
                              "e": expiration}, separators=(",", ":")).encode()
        token = f"{_b64(payload)}.{_b64(self._mac(b'token', payload))}"
        return SessionCredentials(access_key_id, self._secret(access_key_id), token, expiration)

    def resolve(self, access_key_id: str, token: str) -> Credential | None:
        """The credential of a session key, or None; ExpiredTokenException once expired."""
        encoded, dot, mac = token.partition(".")
        if not dot or not access_key_id.startswith(TEMPORARY_KEY_PREFIX):
            return None
        try:
            payload = _unb64(encoded)
            given = _unb64(mac)
        except ValueError:
            return None
        if not hmac.compare_digest(given, self._mac(b"token", payload)):
            return None
        claims = json.loads(payload)
        if claims["k"] != access_key_id:
            return None
        if self._clock() >= claims["e"]:
            raise ExpiredTokenException()
        role_arn, session = str(claims["r"]), str(claims["s"])
        entry = self._roles.by_arn(role_arn)
        policy = entry.policy if entry is not None else self._unknown_policy
        ref = parse_role_arn(role_arn)
        role_name = ref.name if ref is not None else role_arn.rpartition("/")[2]
        principal = Principal(access_key_id, self._account,
                              assumed_role_arn(self._account, role_name, session), policy)
        return Credential(access_key_id, self._secret(access_key_id), principal, "")
