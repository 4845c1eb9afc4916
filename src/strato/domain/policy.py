"""Policy evaluation: may this principal perform this action on this resource?

Pure functions over frozen values, following IAM's evaluation logic
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html)
for the two policy types strato has:

- the principal's **identity-based policy** (IAM JSON: ``Effect``, ``Action``/``NotAction``,
  ``Resource``/``NotResource``, ``Condition``), compiled once by ``IdentityPolicy.parse``;
- the function's **resource-based policy** (the statements of AddPermission).

``decide`` combines them: an explicit ``Deny`` in either wins; within the function's account a
request is allowed when the identity policy allows it or a resource policy statement names the
principal itself; a principal of another account needs both its identity policy and the
function's resource policy to allow it (a statement naming the caller's account root counts:
it delegates to that account's identity policies). Anything else is denied by default.

Matching rules (IAM's): actions case-insensitively, ARNs and condition strings
case-sensitively, ``*`` for any run of characters and ``?`` for one; ARN patterns are matched
component by component (``arn:partition:service:region:account:resource``), the last component
including any further colons. Condition keys are case-insensitive; several values under one key
match if any does, several keys and several operators must all hold; a key the request does not
carry makes a condition false unless the operator is a negated one, ends in ``IfExists`` or is
``Null``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from strato.domain.permissions import (
    Condition,
    Effect,
    PermissionStatement,
    PrincipalKind,
    StatementPrincipal,
    account_root_arn,
)

#: Operators strato evaluates (each also with the ``IfExists`` suffix).
_POSITIVE = frozenset({
    "StringEquals", "StringEqualsIgnoreCase", "StringLike",
    "ArnEquals", "ArnLike", "Bool",
})
_NEGATED = frozenset({
    "StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike",
})
_NULL = "Null"
_IF_EXISTS = "IfExists"


class PolicyDocumentError(ValueError):
    """An identity policy document strato cannot evaluate (malformed, or using a feature that
    strato does not evaluate, such as ``ForAnyValue:`` operators)."""


class Verdict(Enum):
    """What one policy says about a request."""

    ALLOWED = "allowed"
    EXPLICIT_DENY = "explicit deny"
    NOT_ALLOWED = "no statement allows"


class Denial(Enum):
    """Why a request is denied, in the words of AWS's AccessDenied messages
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html)."""

    IDENTITY_EXPLICIT_DENY = "with an explicit deny in an identity-based policy"
    RESOURCE_EXPLICIT_DENY = "with an explicit deny in a resource-based policy"
    NO_IDENTITY_ALLOW = "because no identity-based policy allows the {action} action"
    NO_RESOURCE_ALLOW = "because no resource-based policy allows the {action} action"

    def message(self, principal_arn: str, action: str, resource: str) -> str:
        """``User: <arn> is not authorized to perform: <action> on resource: <resource> ...``"""
        return (
            f"User: {principal_arn} is not authorized to perform: {action} on resource: "
            f"{resource} {self.value.format(action=action)}"
        )


# matching -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = ("." * len(p) if p.startswith("?") else ".*" if p.startswith("*") else re.escape(p)
             for p in re.findall(r"\*+|\?+|[^*?]+", pattern))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    """IAM action matching: case-insensitive, ``*`` and ``?`` wildcards (``lambda:Get*``)."""
    return pattern == "*" or _glob(pattern, True).fullmatch(action) is not None


def arn_matches(pattern: str, arn: str) -> bool:
    """IAM ARN matching: case-sensitive wildcards, component by component (a ``*`` in the
    region matches only the region); ``*`` alone matches anything."""
    if pattern == "*":
        return True
    wanted, actual = pattern.split(":", 5), arn.split(":", 5)
    if len(wanted) == len(actual) == 6:
        return all(_glob(w, False).fullmatch(a) is not None for w, a in zip(wanted, actual, strict=True))
    return _glob(pattern, False).fullmatch(arn) is not None


def _value_matches(base: str, wanted: str, actual: str) -> bool:
    if base in ("StringEquals", "StringNotEquals"):
        return wanted == actual
    if base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return wanted.casefold() == actual.casefold()
    if base in ("StringLike", "StringNotLike"):
        return _glob(wanted, False).fullmatch(actual) is not None
    if base == "Bool":
        return wanted.lower() == actual.lower()
    return arn_matches(wanted, actual)  # ArnEquals, ArnLike and their negations


def condition_holds(condition: Condition, context: Mapping[str, str]) -> bool:
    """Whether one condition holds for a request whose context keys are lower-case."""
    operator = condition.operator
    if_exists = operator.endswith(_IF_EXISTS) and operator != _IF_EXISTS
    base = operator[: -len(_IF_EXISTS)] if if_exists else operator
    actual = context.get(condition.key.lower())
    if base == _NULL:
        absent = actual is None
        return any((value.lower() == "true") == absent for value in condition.values)
    if actual is None:
        return if_exists or base in _NEGATED
    matched = any(_value_matches(base, wanted, actual) for wanted in condition.values)
    return not matched if base in _NEGATED else matched


def conditions_hold(conditions: Iterable[Condition], context: Mapping[str, str]) -> bool:
    return all(condition_holds(c, context) for c in conditions)


def context_of(principal_arn: str, principal_account: str,
               extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A request's condition context with lower-case keys: ``extra`` (for example
    ``AWS:SourceArn``) plus the global keys strato knows of every request."""
    context = {key.lower(): value for key, value in (extra or {}).items()}
    context["aws:principalarn"] = principal_arn
    context["aws:principalaccount"] = principal_account
    return context


# identity-based policies --------------------------------------------------------------------


@dataclass(frozen=True)
class IdentityStatement:
    effect: Effect
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_action: bool = False
    not_resource: bool = False
    conditions: tuple[Condition, ...] = ()

    def applies(self, action: str, resource: str, context: Mapping[str, str]) -> bool:
        action_hit = any(action_matches(p, action) for p in self.actions)
        resource_hit = any(arn_matches(p, resource) for p in self.resources)
        return (
            action_hit != self.not_action
            and resource_hit != self.not_resource
            and conditions_hold(self.conditions, context)
        )


@dataclass(frozen=True)
class IdentityPolicy:
    """A compiled identity-based policy. Build one with ``parse``; evaluating it is pure."""

    statements: tuple[IdentityStatement, ...]
    #: True when the policy allows every action on every resource whatever the context and
    #: denies nothing (an administrator's): a caller may skip evaluating it.
    allows_everything: bool = field(default=False, compare=False)
    #: True when no statement has a condition: its verdicts depend on action and resource only.
    unconditional: bool = field(default=True, compare=False)

    @classmethod
    def parse(cls, document: Mapping[str, Any]) -> IdentityPolicy:
        """Compile an IAM policy document; raises PolicyDocumentError if strato cannot
        evaluate it exactly."""
        if not isinstance(document, Mapping):
            raise PolicyDocumentError("a policy document is a JSON object")
        raw = document.get("Statement")
        if isinstance(raw, Mapping):
            raw = [raw]
        if not isinstance(raw, list):
            raise PolicyDocumentError("a policy document needs a Statement list")
        statements = tuple(_identity_statement(s, i) for i, s in enumerate(raw, start=1))
        allows_everything = not any(s.effect is Effect.DENY for s in statements) and any(
            s.effect is Effect.ALLOW and not s.not_action and not s.not_resource
            and not s.conditions and "*" in s.actions and "*" in s.resources
            for s in statements
        )
        unconditional = not any(s.conditions for s in statements)
        return cls(statements, allows_everything, unconditional)

    def evaluate(self, action: str, resource: str, context: Mapping[str, str]) -> Verdict:
        """An applicable Deny wins over any Allow; with neither, the request is not allowed."""
        allowed = False
        for statement in self.statements:
            if statement.applies(action, resource, context):
                if statement.effect is Effect.DENY:
                    return Verdict.EXPLICIT_DENY
                allowed = True
        return Verdict.ALLOWED if allowed else Verdict.NOT_ALLOWED


def _strings(value: Any, what: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise PolicyDocumentError(f"{what} must be a string or a non-empty list of strings")
    return tuple(items)


def _condition_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise PolicyDocumentError(f"a condition value must be a string, number or boolean, not {value!r}")


def _conditions(block: Any) -> tuple[Condition, ...]:
    if not isinstance(block, Mapping):
        raise PolicyDocumentError("Condition must be an object of operators")
    conditions: list[Condition] = []
    for operator, tests in block.items():
        base = operator.removesuffix(_IF_EXISTS) if operator != _IF_EXISTS else operator
        if base not in _POSITIVE and base not in _NEGATED and base != _NULL:
            raise PolicyDocumentError(f"strato cannot evaluate the condition operator {operator}")
        if not isinstance(tests, Mapping):
            raise PolicyDocumentError(f"Condition operator {operator} must map keys to values")
        for key, values in tests.items():
            listed = values if isinstance(values, list) else [values]
            if not listed:
                raise PolicyDocumentError(f"Condition {operator} {key} has no values")
            conditions.append(Condition(operator, str(key), tuple(_condition_value(v) for v in listed)))
    return tuple(conditions)


def _identity_statement(raw: Any, index: int) -> IdentityStatement:
    where = f"statement {index}"
    if not isinstance(raw, Mapping):
        raise PolicyDocumentError(f"{where} is not an object")
    if "Principal" in raw or "NotPrincipal" in raw:
        raise PolicyDocumentError(f"{where}: an identity-based policy names no Principal")
    try:
        effect = Effect(str(raw.get("Effect")))
    except ValueError:
        raise PolicyDocumentError(f"{where}: Effect must be Allow or Deny") from None
    if ("Action" in raw) == ("NotAction" in raw):
        raise PolicyDocumentError(f"{where} needs exactly one of Action and NotAction")
    if ("Resource" in raw) == ("NotResource" in raw):
        raise PolicyDocumentError(f"{where} needs exactly one of Resource and NotResource")
    not_action, not_resource = "NotAction" in raw, "NotResource" in raw
    return IdentityStatement(
        effect=effect,
        actions=_strings(raw["NotAction" if not_action else "Action"], f"{where}: Action"),
        resources=_strings(raw["NotResource" if not_resource else "Resource"], f"{where}: Resource"),
        not_action=not_action,
        not_resource=not_resource,
        conditions=_conditions(raw.get("Condition", {})),
    )


# resource-based policies --------------------------------------------------------------------


class PrincipalMatch(Enum):
    """How a statement's principal covers a caller."""

    NONE = 0
    #: Through the caller's account root: a grant to the account, which that account's
    #: identity policies pass on (it lets a same-account caller do nothing by itself).
    ACCOUNT = 1
    #: The caller itself, or everyone (``*``).
    DIRECT = 2


def principal_match(named: StatementPrincipal, principal_arn: str, principal_account: str) -> PrincipalMatch:
    if named.kind is PrincipalKind.ANY or (named.kind is PrincipalKind.AWS and named.value == "*"):
        return PrincipalMatch.DIRECT
    if named.kind is not PrincipalKind.AWS:
        return PrincipalMatch.NONE  # a service principal never signs strato's requests
    if named.value == principal_arn:
        return PrincipalMatch.DIRECT
    if named.value in (account_root_arn(principal_account), principal_account):
        return PrincipalMatch.ACCOUNT
    return PrincipalMatch.NONE


def evaluate_resource_policy(
    statements: Sequence[PermissionStatement],
    principal_arn: str,
    principal_account: str,
    action: str,
    context: Mapping[str, str],
    *,
    cross_account: bool,
) -> Verdict:
    """The resource policy's verdict for a caller. The statements are the policy of the
    resource asked for, so their ``Resource`` always matches. For a same-account caller only a
    statement naming the caller itself (or ``*``) allows; for a cross-account caller a grant to
    its account does too."""
    allowed = False
    for statement in statements:
        match = principal_match(statement.principal, principal_arn, principal_account)
        if (
            match is PrincipalMatch.NONE
            or not action_matches(statement.action, action)
            or not conditions_hold(statement.conditions, context)
        ):
            continue
        if statement.effect is Effect.DENY:
            return Verdict.EXPLICIT_DENY
        if match is PrincipalMatch.DIRECT or cross_account:
            allowed = True
    return Verdict.ALLOWED if allowed else Verdict.NOT_ALLOWED


# the decision -------------------------------------------------------------------------------


def decide(
    identity: Verdict,
    resource: Verdict,
    *,
    cross_account: bool,
) -> Denial | None:
    """Combine the two verdicts on one request; None means allowed.

    When several reasons apply, the message names one, as AWS's do: an explicit deny first
    (identity-based before resource-based), then for a cross-account caller the missing
    resource-based allow, then the missing identity-based allow.
    """
    if identity is Verdict.EXPLICIT_DENY:
        return Denial.IDENTITY_EXPLICIT_DENY
    if resource is Verdict.EXPLICIT_DENY:
        return Denial.RESOURCE_EXPLICIT_DENY
    if cross_account:
        if resource is not Verdict.ALLOWED:
            return Denial.NO_RESOURCE_ALLOW
        return None if identity is Verdict.ALLOWED else Denial.NO_IDENTITY_ALLOW
    if identity is Verdict.ALLOWED or resource is Verdict.ALLOWED:
        return None
    return Denial.NO_IDENTITY_ALLOW
