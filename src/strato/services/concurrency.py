"""The concurrency service: reserved concurrency of functions and provisioned concurrency of
versions and aliases, as Lambda's API manages them.

Reserved concurrency (Put/Get/DeleteFunctionConcurrency) carves a function's share out of the
account's limit; the unreserved pool that every other function shares keeps at least
``MIN_UNRESERVED`` (100, as on AWS). Provisioned concurrency
(Put/Get/Delete/ListProvisionedConcurrencyConfigs) asks for environments kept initialised for
a published version or an alias. Both are stored, then announced through ``on_change(name)``:
the application applies them to the environment pool from the function's registry entry.
The live state of a provisioned configuration (allocated, available, status) is the pool's,
read through ``status``. Messages are AWS's. Runs on the control-plane thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from strato.domain.arns import FunctionRef, Scope
from strato.domain.errors import (
    InvalidParameterValueException,
    ProvisionedConcurrencyConfigNotFoundException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from strato.domain.models import LATEST, ProvisionedConcurrencyConfig, utcnow
from strato.domain.validation import require_unqualified
from strato.errors import NotFoundError
from strato.store.base import AliasStore, FunctionStore, ProvisionedConcurrencyStore

#: The unreserved concurrency AWS always leaves to functions without a reservation.
MIN_UNRESERVED = 100

_NO_CONFIG = "No Provisioned Concurrency Config found for this function"


@dataclass(frozen=True)
class ProvisionedState:
    """What the environment pool reports of one provisioned configuration."""

    allocated: int
    available: int
    status: str
    reason: str | None = None


#: ``status(function, qualifier)`` → the pool's view of a configuration (None: not applied yet).
StatusOf = Callable[[str, str], ProvisionedState | None]


@dataclass(frozen=True)
class ProvisionedView:
    config: ProvisionedConcurrencyConfig
    state: ProvisionedState


class ConcurrencyService:
    def __init__(self, functions: FunctionStore, aliases: AliasStore,
                 provisioned: ProvisionedConcurrencyStore, account_limit: int,
                 on_change: Callable[[str], None], status: StatusOf) -> None:
        self._functions = functions
        self._aliases = aliases
        self._provisioned = provisioned
        self._account_limit = account_limit
        self._on_change = on_change
        self._status = status

    # reserved --------------------------------------------------------------------------
    def unreserved(self) -> int:
        """The account's concurrency not reserved by any function."""
        return self._account_limit - sum(self._functions.reserved_concurrency().values())

    def put_reserved(self, ref: FunctionRef, value: int, scope: Scope) -> int:
        require_unqualified(ref)
        self._require_function(ref.name, scope, LATEST)
        others = {k: v for k, v in self._functions.reserved_concurrency().items() if k != ref.name}
        if self._account_limit - sum(others.values()) - value < MIN_UNRESERVED:
            raise InvalidParameterValueException(
                "Specified ReservedConcurrentExecutions for function decreases account's "
                f"UnreservedConcurrentExecution below its minimum value of [{MIN_UNRESERVED}]."
            )
        self._write_reserved(ref.name, value, scope)
        return value

    def get_reserved(self, ref: FunctionRef, scope: Scope) -> int | None:
        require_unqualified(ref)
        self._require_function(ref.name, scope)
        return self._functions.get_reserved_concurrency(ref.name)

    def delete_reserved(self, ref: FunctionRef, scope: Scope) -> None:
        require_unqualified(ref)
        self._require_function(ref.name, scope)
        self._write_reserved(ref.name, None, scope)

    def _write_reserved(self, name: str, value: int | None, scope: Scope) -> None:
        try:
            self._functions.put_reserved_concurrency(name, value)
        except NotFoundError as exc:
            raise ResourceNotFoundException(f"Function not found: {scope.function_arn(name)}") from exc
        self._on_change(name)

    # provisioned -----------------------------------------------------------------------
    def put_provisioned(self, ref: FunctionRef, requested: int, scope: Scope) -> ProvisionedView:
        qualifier = self._qualifier(ref)
        if qualifier == LATEST:
            raise InvalidParameterValueException(
                "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
            )
        self._require_function(ref.name, scope, qualifier)
        self._require_qualifier(ref.name, qualifier, scope)
        self._check_overlap(ref.name, qualifier)
        others = sum(c.requested for c in self._provisioned.list_provisioned(ref.name)
                     if c.qualifier != qualifier)
        reserved = self._functions.get_reserved_concurrency(ref.name)
        if reserved is not None and others + requested > reserved:
            raise InvalidParameterValueException(
                "Requested Provisioned Concurrency should not be greater than the "
                "reservedConcurrentExecution for function"
            )
        if reserved is None and self.unreserved() - others - requested < MIN_UNRESERVED:
            raise InvalidParameterValueException(
                "Specified ConcurrentExecutions for function decreases account's "
                f"UnreservedConcurrentExecution below its minimum value of [{MIN_UNRESERVED}]."
            )
        config = ProvisionedConcurrencyConfig(ref.name, qualifier, requested, utcnow())
        try:
            self._provisioned.put_provisioned(config)
        except NotFoundError as exc:
            raise ResourceNotFoundException(
                f"Function not found: {scope.function_arn(ref.name, qualifier)}"
            ) from exc
        self._on_change(ref.name)
        return ProvisionedView(config, ProvisionedState(0, 0, "IN_PROGRESS"))

    def get_provisioned(self, ref: FunctionRef, scope: Scope) -> ProvisionedView:
        qualifier = self._qualifier(ref)
        self._require_function(ref.name, scope, qualifier)
        config = self._provisioned.get_provisioned(ref.name, qualifier)
        if config is None:
            raise ProvisionedConcurrencyConfigNotFoundException(_NO_CONFIG)
        return self._view(config)

    def delete_provisioned(self, ref: FunctionRef, scope: Scope) -> None:
        qualifier = self._qualifier(ref)
        self._require_function(ref.name, scope, qualifier)
        if not self._provisioned.delete_provisioned(ref.name, qualifier):
            raise ProvisionedConcurrencyConfigNotFoundException(_NO_CONFIG)
        self._on_change(ref.name)

    def list_provisioned(self, ref: FunctionRef, marker: str | None, max_items: int | None,
                         scope: Scope) -> tuple[list[ProvisionedView], str | None]:
        require_unqualified(ref)
        self._require_function(ref.name, scope)
        configs = [c for c in self._provisioned.list_provisioned(ref.name)
                   if marker is None or c.qualifier > marker]
        limit = min(max_items or 50, 50)
        marker_out = None
        if len(configs) > limit:
            configs, marker_out = configs[:limit], configs[limit - 1].qualifier
        return [self._view(c) for c in configs], marker_out

    def qualifier_deleted(self, function: str, qualifier: str) -> None:
        """A version or alias was deleted: its configuration goes with it."""
        if self._provisioned.delete_provisioned(function, qualifier):
            self._on_change(function)

    # rules -----------------------------------------------------------------------------
    def _view(self, config: ProvisionedConcurrencyConfig) -> ProvisionedView:
        state = self._status(config.function_name, config.qualifier)
        return ProvisionedView(config, state or ProvisionedState(0, 0, "IN_PROGRESS"))

    @staticmethod
    def _qualifier(ref: FunctionRef) -> str:
        if ref.qualifier is None:
            raise InvalidParameterValueException(
                "The qualifier is required for provisioned concurrency configurations."
            )
        return ref.qualifier

    def _require_function(self, name: str, scope: Scope, qualifier: str | None = None) -> None:
        if self._functions.get_version(name, LATEST) is None:
            raise ResourceNotFoundException(
                f"Function not found: {scope.function_arn(name, qualifier)}"
            )

    def _require_qualifier(self, name: str, qualifier: str, scope: Scope) -> None:
        if qualifier.isdigit():
            if self._functions.get_version(name, qualifier) is None:
                raise ResourceNotFoundException(
                    f"Function not found: {scope.function_arn(name, qualifier)}"
                )
        elif self._aliases.get_alias(name, qualifier) is None:
            raise ResourceNotFoundException(
                f"Cannot find alias arn: {scope.function_arn(name, qualifier)}"
            )

    def _check_overlap(self, name: str, qualifier: str) -> None:
        """A version is provisioned directly or through an alias, never both (AWS's rule)."""
        configured = {c.qualifier for c in self._provisioned.list_provisioned(name)} - {qualifier}
        if not qualifier.isdigit():
            alias = self._aliases.get_alias(name, qualifier)
            if alias is not None and alias.function_version in configured:
                raise ResourceConflictException(
                    "Alias can't be used for Provisioned Concurrency configuration on an already "
                    "Provisioned version"
                )
            return
        for alias in self._aliases.list_aliases(name):
            if alias.function_version == qualifier and alias.name in configured:
                raise ResourceConflictException(
                    "Version is pointed by a Provisioned Concurrency alias"
                )
