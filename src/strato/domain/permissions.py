"""Resource-based policies of functions: the statements AddPermission adds, as frozen records.

A function has one policy per qualifier: ``qualifier`` None is the unqualified function (which
is also what ``$LATEST`` answers to), a version number or alias name its own policy, as on
Lambda ("resource-based policies apply to a single function, version, alias, or layer
version": https://docs.aws.amazon.com/lambda/latest/dg/access-control-resource-based.html).

``PermissionGrant`` is what an AddPermission request asks for; ``grant.to_statement()``
checks the principal and turns the optional members into the statement's conditions, the way
AWS writes them (recorded responses of AddPermission):

=========================  =============================================================
member                     statement
=========================  =============================================================
Principal ``*``            ``"Principal": "*"``
Principal ``123456789012`` ``"Principal": {"AWS": "arn:aws:iam::123456789012:root"}``
Principal IAM/STS ARN      ``"Principal": {"AWS": "<arn>"}``
Principal ``s3.amazonaws.com``  ``"Principal": {"Service": "s3.amazonaws.com"}``
SourceArn                  ``ArnLike`` ``AWS:SourceArn``
SourceAccount              ``StringEquals`` ``AWS:SourceAccount``
PrincipalOrgID             ``StringEquals`` ``aws:PrincipalOrgID``
FunctionUrlAuthType        ``StringEquals`` ``lambda:FunctionUrlAuthType``
EventSourceToken           ``StringEquals`` ``lambda:EventSourceToken``
InvokedViaFunctionUrl      ``Bool`` ``lambda:InvokedViaFunctionUrl``
=========================  =============================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from strato.domain.errors import InvalidParameterValueException
from strato.domain.models import LATEST

POLICY_VERSION = "2012-10-17"
POLICY_ID = "default"

_INVALID_PRINCIPAL = "The provided principal was invalid. Please check the principal and try again."
_ACCOUNT_ID = re.compile(r"\d{12}")
_IAM_ARN = re.compile(r"arn:aws[a-zA-Z-]*:(?:iam|sts)::\d{12}:\S+")
_SERVICE = re.compile(r"[a-z0-9][a-z0-9.-]*\.(?:amazonaws\.com(?:\.cn)?|amazon\.com)")


class Effect(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"


class PrincipalKind(StrEnum):
    """How a statement names who it applies to (the key under ``Principal``)."""

    ANY = "*"
    AWS = "AWS"
    SERVICE = "Service"


@dataclass(frozen=True)
class StatementPrincipal:
    """``kind`` ANY has ``value`` ``*``; AWS an IAM or STS ARN; SERVICE a service host name."""

    kind: PrincipalKind
    value: str

    @classmethod
    def parse(cls, principal: str) -> StatementPrincipal:
        """The principal of an AddPermission request, normalised as AWS stores it.

        Raises InvalidParameterValueException (AWS's text) for anything that is not ``*``, an
        account id, an IAM/STS ARN or an AWS service principal.
        """
        if principal == "*":
            return cls(PrincipalKind.ANY, "*")
        if _ACCOUNT_ID.fullmatch(principal):
            return cls(PrincipalKind.AWS, account_root_arn(principal))
        if _IAM_ARN.fullmatch(principal):
            return cls(PrincipalKind.AWS, principal)
        if _SERVICE.fullmatch(principal):
            return cls(PrincipalKind.SERVICE, principal)
        raise InvalidParameterValueException(_INVALID_PRINCIPAL)


@dataclass(frozen=True)
class Condition:
    """One test of a statement's ``Condition`` block: ``operator`` (``StringEquals``,
    ``ArnLike``, ... optionally ending in ``IfExists``) applied to the request's value of
    ``key``; it holds when any of ``values`` matches."""

    operator: str
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class PermissionStatement:
    """One statement of a function's resource-based policy. Its ``Resource`` is the ARN of the
    function (qualified when the policy is a version's or an alias's), so it is not stored."""

    sid: str
    action: str
    principal: StatementPrincipal
    conditions: tuple[Condition, ...] = ()
    effect: Effect = Effect.ALLOW


@dataclass(frozen=True)
class ResourcePolicy:
    """The statements of one (function, qualifier), in the order they were added.

    ``revision_id`` changes on every change of the statements. It is the policy's own: on AWS
    the policy shares the RevisionId of its function, version or alias, which strato does not
    bump for a permission change (that would retire the function's warm environments).
    """

    function_name: str
    qualifier: str | None
    statements: tuple[PermissionStatement, ...]
    revision_id: str

    def statement(self, sid: str) -> PermissionStatement | None:
        return next((s for s in self.statements if s.sid == sid), None)


@dataclass(frozen=True)
class PermissionGrant:
    """The members of an AddPermission request (after the model's own constraints)."""

    statement_id: str
    action: str
    principal: str
    source_arn: str | None = None
    source_account: str | None = None
    principal_org_id: str | None = None
    function_url_auth_type: str | None = None
    event_source_token: str | None = None
    invoked_via_function_url: bool | None = None

    def to_statement(self) -> PermissionStatement:
        """The statement AWS would store; raises InvalidParameterValueException for an
        invalid principal."""
        principal = StatementPrincipal.parse(self.principal)
        conditions: list[Condition] = []
        if self.source_arn is not None:
            conditions.append(Condition("ArnLike", "AWS:SourceArn", (self.source_arn,)))
        for key, value in (
            ("AWS:SourceAccount", self.source_account),
            ("aws:PrincipalOrgID", self.principal_org_id),
            ("lambda:FunctionUrlAuthType", self.function_url_auth_type),
            ("lambda:EventSourceToken", self.event_source_token),
        ):
            if value is not None:
                conditions.append(Condition("StringEquals", key, (value,)))
        if self.invoked_via_function_url:
            conditions.append(Condition("Bool", "lambda:InvokedViaFunctionUrl", ("true",)))
        return PermissionStatement(self.statement_id, self.action, principal, tuple(conditions))


def account_root_arn(account_id: str) -> str:
    """The ARN that stands for a whole account in a policy's ``Principal``."""
    return f"arn:aws:iam::{account_id}:root"


def policy_qualifier(qualifier: str | None) -> str | None:
    """The qualifier whose policy applies to a request made with ``qualifier``: ``$LATEST``
    and no qualifier both mean the unqualified function's policy."""
    return None if qualifier in (None, LATEST) else qualifier
