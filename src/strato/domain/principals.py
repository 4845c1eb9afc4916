"""Who is calling: the principal a verified request acts as.

Authentication (``strato.auth``) turns a signed request into a ``Principal``; authorisation
(``strato.services.authorization``) decides what that principal may do, from its identity
policy and, for invocations, the function's resource policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: The identity policy of an administrator: every Lambda action on every resource.
ADMIN_POLICY: Mapping[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


@dataclass(frozen=True)
class Principal:
    """A caller of the API.

    ``arn`` is an IAM-style ARN (``arn:aws:iam::<account_id>:user/<name>``); ``policy`` is its
    identity policy in IAM's JSON form (``Statement`` of ``Effect``/``Action``/``Resource``,
    wildcards allowed). A principal whose ``account_id`` differs from the platform's account is
    a cross-account caller: it can act on a function only where the function's resource policy
    also allows it.
    """

    access_key_id: str
    account_id: str
    arn: str
    policy: Mapping[str, Any] = field(default_factory=lambda: ADMIN_POLICY)


def anonymous_admin(account_id: str) -> Principal:
    """An administrator of ``account_id``: what requests act as when authentication is off."""
    return Principal("", account_id, f"arn:aws:iam::{account_id}:root", ADMIN_POLICY)
