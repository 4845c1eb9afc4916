"""Roles: what a function acts as (its execution role), and the ARNs that name them.

A role has a name unique in the account regardless of case (IAM's rule), a path (``/`` by
default, else ``/…/``), an id (``AROA`` and 17 characters), a trust policy and any number of
inline policies. Its ARN is ``arn:aws:iam::<account>:role<path><name>``. A *role session*
is the role acting for one execution environment: its ARN is
``arn:aws:sts::<account>:assumed-role/<name>/<session name>``, the session being named after
the function, as on Lambda.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from dataclasses import dataclass

ROLE_ID_PREFIX = "AROA"
_ID_ALPHABET = string.ascii_uppercase + string.digits
#: A role ARN as Lambda's ``Role`` member accepts it (botocore's ``RoleArn`` pattern).
_ROLE_ARN = re.compile(r"arn:(aws[a-zA-Z-]*)?:iam::(\d{12}):role(/(?:[\w+=,.@-]+/)*)?([\w+=,.@-]+)")


@dataclass(frozen=True)
class Role:
    """A stored role. ``trust_policy`` is the document as the caller sent it; ``created`` an
    ISO 8601 UTC time."""

    name: str
    role_id: str
    path: str
    trust_policy: str
    created: str
    description: str | None = None
    max_session_duration: int = 3600

    def arn(self, account_id: str) -> str:
        return role_arn(account_id, self.path, self.name)


@dataclass(frozen=True)
class RolePolicy:
    """One inline policy of a role; ``document`` is the text as the caller sent it."""

    role_name: str
    policy_name: str
    document: str


@dataclass(frozen=True)
class RoleRef:
    """The parts of a role ARN."""

    account_id: str
    path: str
    name: str


def role_arn(account_id: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account_id}:role{path}{name}"


def parse_role_arn(arn: str) -> RoleRef | None:
    """The account, path and name of a role ARN; None when ``arn`` is not one."""
    match = _ROLE_ARN.fullmatch(arn)
    if match is None:
        return None
    return RoleRef(match[2], match[3] or "/", match[4])


def new_role_id() -> str:
    """A random role id in IAM's format (``AROA`` and 17 upper-case letters or digits)."""
    return ROLE_ID_PREFIX + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


def stable_role_id(arn: str) -> str:
    """The id strato reports for a role it does not store (one named by a function only):
    derived from its ARN, so that it is the same on every call."""
    digest = hashlib.sha256(arn.encode()).digest()
    return ROLE_ID_PREFIX + "".join(_ID_ALPHABET[b % len(_ID_ALPHABET)] for b in digest[:17])


def assumed_role_arn(account_id: str, role_name: str, session_name: str) -> str:
    return f"arn:aws:sts::{account_id}:assumed-role/{role_name}/{session_name}"


def name_key(name: str) -> str:
    """The key that makes role (and policy) names unique regardless of case."""
    return name.lower()
