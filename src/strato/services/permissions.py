"""The permission service: a function's resource-based policy (AddPermission, GetPolicy,
RemovePermission).

Runs on the control-plane thread. Every change is written to the store first (a
compare-and-swap on the policy's revision), then recorded in the ``ResourcePolicyCache`` that
the authorizer reads, so that invocations see it without a database read. Errors are AWS's, in
AWS's words (recorded responses of the Lambda API).

Qualifiers: a policy belongs to the unqualified function (``$LATEST`` cannot have one of its
own), to a published version or to an alias. A version is found in the function store; an
alias through ``alias_revision`` (which also gives the RevisionId a first policy of the
alias is checked against, as on AWS). A policy goes with the version or alias it belongs to.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from strato.domain.arns import FunctionRef, Scope
from strato.domain.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from strato.domain.models import LATEST, FunctionVersion
from strato.domain.permissions import (
    PermissionGrant,
    PermissionStatement,
    ResourcePolicy,
    policy_qualifier,
)
from strato.errors import NotFoundError, RevisionMismatchError
from strato.services.authorization import ResourcePolicyCache
from strato.store.base import FunctionStore, PolicyStore

#: (function name, alias name) → the alias's RevisionId, or None when there is no such alias.
AliasRevision = Callable[[str, str], str | None]

_REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetPolicy API to retrieve the latest Revision Id"
)
_NO_SUCH_RESOURCE = "The resource you requested does not exist."


def _no_alias(function_name: str, alias: str) -> str | None:
    return None


class PermissionService:
    def __init__(
        self,
        store: PolicyStore,
        functions: FunctionStore,
        cache: ResourcePolicyCache,
        *,
        alias_revision: AliasRevision = _no_alias,
    ) -> None:
        self._store = store
        self._functions = functions
        self._cache = cache
        self._alias_revision = alias_revision

    # operations ---------------------------------------------------------------------------
    def add_permission(
        self, ref: FunctionRef, grant: PermissionGrant, revision_id: str | None, scope: Scope
    ) -> PermissionStatement:
        """Add a statement to the policy of ``ref`` (created with it); returns the statement.

        ``revision_id``, when given, must be the policy's current RevisionId (with no policy
        yet: the RevisionId of the function, version or alias, which is what AWS's policy
        shares).
        """
        latest = self._functions.get_version(ref.name, LATEST)
        if latest is None:
            raise ResourceNotFoundException(
                f"Function not found: {scope.function_arn(ref.name, ref.qualifier)}"
            )
        if ref.qualifier == LATEST:
            raise InvalidParameterValueException("We currently do not support adding policies for $LATEST.")
        target = self._target_or_raise(ref, latest, scope)
        statement = grant.to_statement()
        current = self._store.get_policy(ref.name, ref.qualifier)
        if revision_id is not None:
            expected = current.revision_id if current else target
            if revision_id != expected:
                raise PreconditionFailedException(_REVISION_MISMATCH)
        if current is not None and current.statement(statement.sid) is not None:
            raise ResourceConflictException(
                f"The statement id ({statement.sid}) provided already exists. Please provide a new "
                "statement id, or remove the existing statement."
            )
        policy = ResourcePolicy(
            function_name=ref.name,
            qualifier=ref.qualifier,
            statements=(*(current.statements if current else ()), statement),
            revision_id=str(uuid.uuid4()),
        )
        try:
            self._store.put_policy(policy, expected_revision=current.revision_id if current else None)
        except RevisionMismatchError as exc:
            raise PreconditionFailedException(_REVISION_MISMATCH) from exc
        except NotFoundError as exc:  # the function went between the check and the write
            raise ResourceNotFoundException(
                f"Function not found: {scope.function_arn(ref.name, ref.qualifier)}"
            ) from exc
        self._cache.put(policy)
        return statement

    def get_policy(self, ref: FunctionRef) -> ResourcePolicy:
        """The policy of ``ref`` (``$LATEST`` means the unqualified function's).

        A missing function, version, alias or policy are one error on AWS: "The resource you
        requested does not exist." (a policy outlives neither its function nor its qualifier).
        """
        policy = self._store.get_policy(ref.name, policy_qualifier(ref.qualifier))
        if policy is None:
            raise ResourceNotFoundException(_NO_SUCH_RESOURCE)
        return policy

    def remove_permission(
        self, ref: FunctionRef, statement_id: str, revision_id: str | None, scope: Scope
    ) -> None:
        """Remove one statement; the policy goes with its last statement."""
        qualifier = policy_qualifier(ref.qualifier)
        latest = self._functions.get_version(ref.name, LATEST)
        if latest is None or self._target(ref.name, qualifier, latest) is None:
            raise ResourceNotFoundException(
                f"No policy found for: {scope.function_arn(ref.name, qualifier)}"
            )
        current = self._store.get_policy(ref.name, qualifier)
        if current is None:
            raise ResourceNotFoundException("No policy is associated with the given resource.")
        if revision_id is not None and revision_id != current.revision_id:
            raise PreconditionFailedException(_REVISION_MISMATCH)
        if current.statement(statement_id) is None:
            raise ResourceNotFoundException(f"Statement {statement_id} is not found in resource policy.")
        remaining = tuple(s for s in current.statements if s.sid != statement_id)
        try:
            if not remaining:
                self._store.delete_policy(ref.name, qualifier, expected_revision=current.revision_id)
                self._cache.remove(ref.name, qualifier)
                return
            policy = ResourcePolicy(ref.name, qualifier, remaining, str(uuid.uuid4()))
            self._store.put_policy(policy, expected_revision=current.revision_id)
        except RevisionMismatchError as exc:
            raise PreconditionFailedException(_REVISION_MISMATCH) from exc
        self._cache.put(policy)

    # hooks ---------------------------------------------------------------------------------
    def function_deleted(self, function_name: str) -> None:
        """Drop every policy of a function that was just deleted (the function service's
        delete hook). Idempotent."""
        self._store.delete_policies(function_name)
        self._cache.drop_function(function_name)

    def qualifier_deleted(self, function_name: str, qualifier: str) -> None:
        """Drop the policy of a version or alias that was just deleted. Idempotent."""
        current = self._store.get_policy(function_name, qualifier)
        if current is None:
            return
        try:
            self._store.delete_policy(function_name, qualifier, expected_revision=current.revision_id)
        except RevisionMismatchError:
            return  # changed meanwhile: the next deletion hook or read sees it
        self._cache.remove(function_name, qualifier)

    # internals ---------------------------------------------------------------------------
    def _target(
        self, name: str, qualifier: str | None, latest: FunctionVersion
    ) -> FunctionVersion | str | None:
        """What a policy of (``name``, ``qualifier``) is attached to: the function's
        ``$LATEST`` record, a version's record, an alias's RevisionId, or None if it does not
        exist."""
        if qualifier is None:
            return latest
        if qualifier.isdigit():
            return self._functions.get_version(name, qualifier)
        return self._alias_revision(name, qualifier)

    def _target_or_raise(
        self, ref: FunctionRef, latest: FunctionVersion, scope: Scope
    ) -> str:
        """The RevisionId a first policy of ``ref`` shares (its function's, version's or
        alias's); raises AWS's not-found error for a version or alias that does not exist."""
        target = self._target(ref.name, ref.qualifier, latest)
        if target is None:
            arn = scope.function_arn(ref.name, ref.qualifier)
            if ref.qualifier is not None and ref.qualifier.isdigit():
                raise ResourceNotFoundException(f"Function not found: {arn}")
            raise ResourceNotFoundException(f"Cannot find alias arn: {arn}")
        return target.revision_id if isinstance(target, FunctionVersion) else target
