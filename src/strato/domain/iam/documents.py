"""Policy documents as IAM checks them before storing one (MalformedPolicyDocument otherwise).

Two kinds: a role's **trust policy** (``AssumeRolePolicyDocument``: who may assume the role;
each statement names a ``Principal`` and no ``Resource``) and an **inline policy**
(``PutRolePolicy``: what the role may do; an identity-based policy, which names no
``Principal`` and is evaluated by ``strato.domain.policy``). A document is kept as the text
the caller sent (GetRole and GetRolePolicy give it back as sent).

Messages are IAM's (https://docs.aws.amazon.com/IAM/latest/UserGuide/
troubleshoot_policies.html and responses recorded from IAM). An inline policy that IAM would
accept but strato cannot evaluate exactly (an operator such as ``ForAnyValue:StringLike``)
is refused too, saying so: a role must never be granted more, or less, than its policy says.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from strato.domain.iam.errors import MalformedPolicyDocument
from strato.domain.policy import IdentityPolicy, PolicyDocumentError

INVALID_JSON = "This policy contains invalid Json"
SYNTAX_ERRORS = "Syntax errors in policy."
#: The policy language versions IAM knows.
VERSIONS = frozenset({"2012-10-17", "2008-10-17"})
_EFFECTS = frozenset({"Allow", "Deny"})


def _document(text: str) -> Mapping[str, Any]:
    try:
        document = json.loads(text)
    except ValueError:
        raise MalformedPolicyDocument(INVALID_JSON) from None
    if not isinstance(document, dict):
        raise MalformedPolicyDocument(INVALID_JSON)
    version = document.get("Version")
    if version is not None and version not in VERSIONS:
        raise MalformedPolicyDocument("The policy failed legacy parsing")
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise MalformedPolicyDocument(SYNTAX_ERRORS)
    for statement in statements:
        if not isinstance(statement, dict):
            raise MalformedPolicyDocument(SYNTAX_ERRORS)
        if statement.get("Effect") not in _EFFECTS:
            raise MalformedPolicyDocument(SYNTAX_ERRORS)
        if "Action" not in statement and "NotAction" not in statement:
            raise MalformedPolicyDocument("Policy statement must contain actions.")
        for key in ("Action", "NotAction"):
            for action in _listed(statement.get(key)):
                if action != "*" and ":" not in action:
                    raise MalformedPolicyDocument(
                        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")
    return document


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def check_trust_policy(text: str) -> Mapping[str, Any]:
    """The trust policy ``text`` parsed; MalformedPolicyDocument unless IAM would take it."""
    document = _document(text)
    for statement in _listed(document["Statement"]):
        if "Resource" in statement or "NotResource" in statement:
            raise MalformedPolicyDocument("Has prohibited field Resource")
        if "Principal" not in statement and "NotPrincipal" not in statement:
            raise MalformedPolicyDocument("AssumeRolepolicy contained an invalid principal: "
                                          "Statement must contain a principal.")
    return document


def check_inline_policy(text: str) -> Mapping[str, Any]:
    """The inline (identity-based) policy ``text`` parsed; MalformedPolicyDocument unless IAM
    would take it and strato can evaluate it."""
    document = _document(text)
    for statement in _listed(document["Statement"]):
        if "Principal" in statement or "NotPrincipal" in statement:
            raise MalformedPolicyDocument("Policy document should not specify a principal.")
        if "Resource" not in statement and "NotResource" not in statement:
            raise MalformedPolicyDocument("Policy statement must contain resources.")
    try:
        IdentityPolicy.parse(document)
    except PolicyDocumentError as e:
        raise MalformedPolicyDocument(f"strato cannot evaluate this policy: {e}") from e
    return document
