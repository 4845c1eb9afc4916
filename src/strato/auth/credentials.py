"""strato's own credentials: an access key pair bound to a principal.

A credential is what ``strato credentials create`` issues and what SigV4 requests are signed
with: an access key id (``AKIA`` and 16 upper-case letters or digits, as AWS's), a 40-character
secret access key, and the ``Principal`` the requests act as (account, IAM-style user ARN,
identity policy). Keys given by the operator (``STRATO_ADMIN_CREDENTIALS=test:test``) need not
look like AWS's: only what would break the ``Authorization`` header is refused.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from strato.domain.policy import IdentityPolicy, PolicyDocumentError
from strato.domain.principals import ADMIN_POLICY, Principal

_KEY_ID_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
#: Characters that cannot appear in an access key id: the Credential component is split on
#: ``/`` and the Authorization header on commas and whitespace.
_BAD_KEY_ID = re.compile(r"[/,=\s]")
_ACCOUNT = re.compile(r"\d{12}")
_USER_NAME = re.compile(r"[\w+=,.@-]{1,64}")


class CredentialError(ValueError):
    """A credential (or the text describing one) that strato cannot accept."""


@dataclass(frozen=True)
class Credential:
    """An access key pair and the principal its signed requests act as.

    ``principal.access_key_id`` is ``access_key_id``. ``created`` is an ISO 8601 UTC time.
    """

    access_key_id: str
    secret_access_key: str
    principal: Principal
    created: str

    @property
    def is_admin(self) -> bool:
        return self.principal.policy is ADMIN_POLICY


def new_access_key_id() -> str:
    """A random access key id in AWS's format for long-term user keys."""
    return "AKIA" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))


def new_secret_access_key() -> str:
    """A random 40-character secret access key (about 238 bits)."""
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def user_arn(account_id: str, name: str) -> str:
    return f"arn:aws:iam::{account_id}:user/{name}"


def shared_policy(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """The policy object a principal holds: ``ADMIN_POLICY`` itself when ``document`` equals
    it (the authorizer's fast path is an identity check), else a read-only copy."""
    if document == ADMIN_POLICY:
        return ADMIN_POLICY
    return MappingProxyType(dict(document))


def check_policy(document: object) -> Mapping[str, Any]:
    """``document`` if it is an identity policy strato can evaluate; CredentialError if not."""
    if not isinstance(document, Mapping):
        raise CredentialError("a policy is a JSON object")
    try:
        IdentityPolicy.parse(document)
    except PolicyDocumentError as e:
        raise CredentialError(f"the policy cannot be used: {e}") from e
    return document


def check_key_pair(access_key_id: str, secret_access_key: str) -> None:
    """Raise CredentialError for a key pair that could not be used in a signed request."""
    if not access_key_id or _BAD_KEY_ID.search(access_key_id):
        raise CredentialError(
            "an access key id is not empty and has no '/', ',', '=' or whitespace"
        )
    if not secret_access_key:
        raise CredentialError("a secret access key is not empty")


def make_credential(
    access_key_id: str,
    secret_access_key: str,
    *,
    account_id: str,
    name: str,
    policy: Mapping[str, Any] = ADMIN_POLICY,
    created: str | None = None,
) -> Credential:
    """A credential for user ``name`` of ``account_id``, checked (CredentialError if not)."""
    check_key_pair(access_key_id, secret_access_key)
    if not _ACCOUNT.fullmatch(account_id):
        raise CredentialError(f"an account id is 12 digits, not {account_id!r}")
    if not _USER_NAME.fullmatch(name):
        raise CredentialError(
            f"a user name is 1 to 64 letters, digits or '+=,.@_-', not {name!r}"
        )
    principal = Principal(
        access_key_id, account_id, user_arn(account_id, name), shared_policy(check_policy(policy))
    )
    stamp = created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return Credential(access_key_id, secret_access_key, principal, stamp)


def generate(*, account_id: str, name: str, policy: Mapping[str, Any] = ADMIN_POLICY) -> Credential:
    """A credential with a fresh random key pair."""
    return make_credential(
        new_access_key_id(), new_secret_access_key(), account_id=account_id, name=name,
        policy=policy,
    )


def parse_key_pair(text: str) -> tuple[str, str]:
    """``ACCESS_KEY_ID:SECRET`` (as in ``STRATO_ADMIN_CREDENTIALS``) → the pair; the secret
    is everything after the first colon. CredentialError when malformed."""
    access_key_id, colon, secret = text.partition(":")
    if not colon:
        raise CredentialError("expected ACCESS_KEY_ID:SECRET_ACCESS_KEY")
    check_key_pair(access_key_id, secret)
    return access_key_id, secret


def to_json(credential: Credential) -> dict[str, Any]:
    """The stored form of a credential (secret included)."""
    principal = credential.principal
    return {
        "accessKeyId": credential.access_key_id,
        "secretAccessKey": credential.secret_access_key,
        "accountId": principal.account_id,
        "arn": principal.arn,
        "policy": dict(principal.policy),
        "created": credential.created,
    }


def from_json(item: Mapping[str, Any]) -> Credential:
    """A credential from its stored form; CredentialError if the entry is malformed."""
    try:
        access_key_id = str(item["accessKeyId"])
        secret = str(item["secretAccessKey"])
        account_id = str(item["accountId"])
        arn = str(item["arn"])
        policy = item["policy"]
        created = str(item.get("created", ""))
    except (KeyError, TypeError) as e:
        raise CredentialError(f"a stored credential lacks {e}") from e
    check_key_pair(access_key_id, secret)
    principal = Principal(access_key_id, account_id, arn, shared_policy(check_policy(policy)))
    return Credential(access_key_id, secret, principal, created)
