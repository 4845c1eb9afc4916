"""Authorisation: may a principal perform an action on a resource? Answered from memory.

``Authorizer`` is called by the API edge for every authenticated request, Invoke included, so
it reads no database: the functions' resource-based policies live in a
``ResourcePolicyCache``, loaded from the store at start and kept current by the permission
service (which updates it right after each committed change, and when a function is deleted).
The decision itself is ``strato.domain.policy``'s.

The common case costs an identity check: a principal of strato's account holding the shared
``ADMIN_POLICY`` object (or any identity policy that allows everything) is allowed at once,
without looking at resource policies: these hold only the Allow statements AddPermission
writes, so they cannot take away what the identity policy grants. Other identity policies are
compiled once per policy object (principals of one credential should share theirs) and, when
they have no conditions, their verdicts are memoised per (action, resource).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from strato.domain.errors import AccessDeniedException
from strato.domain.permissions import PermissionStatement, ResourcePolicy, policy_qualifier
from strato.domain.policy import (
    IdentityPolicy,
    PolicyDocumentError,
    Verdict,
    context_of,
    decide,
    evaluate_resource_policy,
)
from strato.domain.principals import ADMIN_POLICY, Principal

#: A function ARN, possibly qualified (what ``Scope.function_arn`` builds).
_FUNCTION_ARN = re.compile(
    r"arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]*:(?P<account>\d{12}):function:(?P<name>[^:]+)(?::(?P<qualifier>[^:]+))?"
)
#: Account-level actions that act on the caller's own account, whichever account the server
#: hosts: on AWS a principal of any account lists its own account's functions, and its
#: identity policy alone decides whether it may. (The edge answers such a caller of another
#: account with an empty listing: strato hosts none of that account's functions.)
CALLER_ACCOUNT_ACTIONS = frozenset({"lambda:ListFunctions", "lambda:ListLayers"})
#: A layer or layer version ARN. Its identity policy alone decides at the edge: whether another
#: account's layer version is shared with the caller is its layer version policy's, which the
#: layer service applies (``services.layers``).
_LAYER_ARN = re.compile(r"arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]*:\d{12}:layer:")
_POLICIES_CACHED = 256
_VERDICTS_CACHED = 1024
_NO_STATEMENTS: tuple[PermissionStatement, ...] = ()


class ResourcePolicyCache:
    """The resource-based policies of every function, by name and then qualifier.

    Written by one thread (the control plane) and read by any: each write replaces a whole
    immutable entry, so a reader sees a function's policies either before or after a change.
    """

    def __init__(self, policies: Iterable[ResourcePolicy] = ()) -> None:
        self._by_function: dict[str, Mapping[str | None, ResourcePolicy]] = {}
        for policy in policies:
            self.put(policy)

    def get(self, function_name: str, qualifier: str | None) -> ResourcePolicy | None:
        return self._by_function.get(function_name, {}).get(qualifier)

    def statements(self, function_name: str, qualifier: str | None) -> tuple[PermissionStatement, ...]:
        policy = self._by_function.get(function_name, {}).get(qualifier)
        return _NO_STATEMENTS if policy is None else policy.statements

    def put(self, policy: ResourcePolicy) -> None:
        """Record a committed policy (replacing the one of its function and qualifier)."""
        current = self._by_function.get(policy.function_name, {})
        self._by_function[policy.function_name] = MappingProxyType(
            {**current, policy.qualifier: policy}
        )

    def remove(self, function_name: str, qualifier: str | None) -> None:
        """Forget one policy (its last statement was removed). Idempotent."""
        current = self._by_function.get(function_name)
        if current is None or qualifier not in current:
            return
        remaining = {q: p for q, p in current.items() if q != qualifier}
        if remaining:
            self._by_function[function_name] = MappingProxyType(remaining)
        else:
            self._by_function.pop(function_name, None)

    def drop_function(self, function_name: str) -> None:
        """Forget every policy of a deleted function. Idempotent."""
        self._by_function.pop(function_name, None)


class _CompiledIdentity:
    """An identity policy compiled, with memoised verdicts when it has no conditions."""

    __slots__ = ("document", "policy", "verdicts")

    def __init__(self, document: Mapping[str, Any], policy: IdentityPolicy | None) -> None:
        self.document = document  # held so that its id() is not reused while cached
        self.policy = policy  # None: the document cannot be evaluated, so it allows nothing
        self.verdicts: dict[tuple[str, str], Verdict] = {}

    def evaluate(self, action: str, resource: str, context: Mapping[str, str]) -> Verdict:
        policy = self.policy
        if policy is None:
            return Verdict.NOT_ALLOWED
        if not policy.unconditional:
            return policy.evaluate(action, resource, context)
        key = (action, resource)
        verdict = self.verdicts.get(key)
        if verdict is None:
            if len(self.verdicts) >= _VERDICTS_CACHED:
                self.verdicts.clear()
            verdict = self.verdicts[key] = policy.evaluate(action, resource, context)
        return verdict


class Authorizer:
    """``authorizer(principal, action, resource_arn)`` returns if the request is allowed and
    raises AccessDeniedException (AWS's message) if not.

    ``action`` is IAM's (``lambda:InvokeFunction``, ``lambda:GetFunction``, ``logs:...``);
    ``resource_arn`` a function ARN, possibly qualified, or ``*`` for actions on no particular
    resource. ``context`` carries condition keys of the request (``AWS:SourceArn``,
    ``AWS:SourceAccount``, ``lambda:FunctionUrlAuthType``) for the resource policy's
    conditions. Safe to call from any thread.
    """

    def __init__(self, account_id: str, policies: ResourcePolicyCache) -> None:
        self._account = account_id
        self._policies = policies
        self._compiled: dict[int, _CompiledIdentity] = {}
        self._lock = threading.Lock()

    def __call__(
        self,
        principal: Principal,
        action: str,
        resource_arn: str,
        context: Mapping[str, str] | None = None,
    ) -> None:
        if principal.policy is ADMIN_POLICY and principal.account_id == self._account:
            return
        identity = self._identity(principal.policy)
        resource_account = self._account
        if (resource_arn == "*" and action in CALLER_ACCOUNT_ACTIONS) or _LAYER_ARN.match(resource_arn):
            resource_account = principal.account_id
        statements = _NO_STATEMENTS
        match = _FUNCTION_ARN.fullmatch(resource_arn)
        if match is not None:
            resource_account = match["account"]
            if resource_account == self._account:
                statements = self._policies.statements(match["name"], policy_qualifier(match["qualifier"]))
        cross_account = principal.account_id != resource_account
        if not cross_account and identity.policy is not None and identity.policy.allows_everything:
            return
        request_context = context_of(principal.arn, principal.account_id, context)
        denial = decide(
            identity.evaluate(action, resource_arn, request_context),
            evaluate_resource_policy(
                statements, principal.arn, principal.account_id, action, request_context,
                cross_account=cross_account,
            ),
            cross_account=cross_account,
        )
        if denial is not None:
            raise AccessDeniedException(denial.message(principal.arn, action, resource_arn))

    def _identity(self, document: Mapping[str, Any]) -> _CompiledIdentity:
        compiled = self._compiled.get(id(document))
        if compiled is not None and compiled.document is document:
            return compiled
        try:
            policy: IdentityPolicy | None = IdentityPolicy.parse(document)
        except PolicyDocumentError:
            policy = None  # credentials are checked when created; one that slipped by allows nothing
        compiled = _CompiledIdentity(document, policy)
        with self._lock:
            if len(self._compiled) >= _POLICIES_CACHED:
                self._compiled.clear()
            self._compiled[id(document)] = compiled
        return compiled
