"""The alias service: CreateAlias, GetAlias, ListAliases, UpdateAlias, DeleteAlias.

An alias points at a published version or ``$LATEST`` and may send a share of invocations to
one other published version (``RoutingConfig.AdditionalVersionWeights``). The model checks the
alias name (not all digits), the weights' range and that weighted keys are version numbers;
the rest of AWS's rules and messages (recorded from the real service) are here. Runs on the
control-plane thread; every change is announced through ``on_change(name)``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping

from strato.domain.arns import FunctionRef, Scope
from strato.domain.errors import (
    InvalidParameterValueException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from strato.domain.models import LATEST, Alias
from strato.domain.validation import revision_mismatch
from strato.errors import AlreadyExistsError, NotFoundError, RevisionMismatchError
from strato.store.base import AliasStore, FunctionStore


class AliasService:
    def __init__(self, functions: FunctionStore, aliases: AliasStore,
                 on_change: Callable[[str], None],
                 on_delete: Callable[[str, str], None] | None = None) -> None:
        self._functions = functions
        self._aliases = aliases
        self._on_change = on_change
        #: Called with (function, alias) after an alias was deleted.
        self._on_delete = on_delete

    def create(self, ref: FunctionRef, name: str, version: str, description: str | None,
               weights: Mapping[str, float] | None, scope: Scope) -> Alias:
        if self._functions.get_version(ref.name, LATEST) is None:
            raise ResourceNotFoundException(
                f"Function not found: {scope.function_arn(ref.name, version)}"
            )
        self._check_target(ref.name, version, weights or {}, scope)
        alias = Alias(ref.name, name, version, str(uuid.uuid4()), description or "",
                      dict(weights or {}))
        try:
            self._aliases.create_alias(alias)
        except AlreadyExistsError as exc:
            raise ResourceConflictException(
                f"Alias already exists: {scope.function_arn(ref.name, name)}"
            ) from exc
        except NotFoundError as exc:
            raise ResourceNotFoundException(
                f"Function not found: {scope.function_arn(ref.name, version)}"
            ) from exc
        self._on_change(ref.name)
        return alias

    def get(self, ref: FunctionRef, name: str, scope: Scope) -> Alias:
        alias = self._aliases.get_alias(ref.name, name)
        if alias is None:
            raise ResourceNotFoundException(
                f"Cannot find alias arn: {scope.function_arn(ref.name, name)}"
            )
        return alias

    def list_aliases(self, ref: FunctionRef, version: str | None, marker: str | None,
             max_items: int | None, scope: Scope) -> tuple[list[Alias], str | None]:
        if self._functions.get_version(ref.name, LATEST) is None:
            raise ResourceNotFoundException(f"Function not found: {scope.function_arn(ref.name)}")
        aliases = [a for a in self._aliases.list_aliases(ref.name)
                   if (version is None or a.function_version == version)
                   and (marker is None or a.name > marker)]
        limit = min(max_items or 50, 50)
        if len(aliases) > limit:
            return aliases[:limit], aliases[limit - 1].name
        return aliases, None

    def update(self, ref: FunctionRef, name: str, version: str | None, description: str | None,
               weights: Mapping[str, float] | None, revision_id: str | None,
               scope: Scope) -> Alias:
        """``None`` leaves a member as it is; ``weights`` empty removes the routing."""
        current = self._aliases.get_alias(ref.name, name)
        if current is None:
            raise ResourceNotFoundException(
                f"Alias not found: {scope.function_arn(ref.name, name)}"
            )
        if revision_id is not None and revision_id != current.revision_id:
            raise revision_mismatch()
        target = current.function_version if version is None else version
        routing = current.additional_weights if weights is None else weights
        self._check_target(ref.name, target, routing, scope)
        updated = current.replace(
            function_version=target,
            description=current.description if description is None else description,
            additional_weights=dict(routing),
            revision_id=str(uuid.uuid4()),
        )
        try:
            self._aliases.put_alias(updated, expected_revision=current.revision_id)
        except RevisionMismatchError as exc:
            raise revision_mismatch() from exc
        except NotFoundError as exc:
            raise ResourceNotFoundException(
                f"Alias not found: {scope.function_arn(ref.name, name)}"
            ) from exc
        self._on_change(ref.name)
        return updated

    def delete(self, ref: FunctionRef, name: str) -> None:
        """Idempotent, as on AWS (deleting an alias that does not exist answers 204)."""
        if self._aliases.delete_alias(ref.name, name):
            if self._on_delete is not None:
                self._on_delete(ref.name, name)
            self._on_change(ref.name)

    # rules ---------------------------------------------------------------------------
    def _check_target(self, function: str, version: str, weights: Mapping[str, float],
                      scope: Scope) -> None:
        if len(weights) > 1:
            raise InvalidParameterValueException(
                "Number of items in AdditionalVersionWeights cannot be greater than 1"
            )
        if weights and version == LATEST:
            raise InvalidParameterValueException(
                "$LATEST is not supported for an alias pointing to more than 1 version"
            )
        for extra in weights:
            if extra == version:
                raise InvalidParameterValueException(
                    f"Invalid function version {extra}. Function version {extra} is already "
                    "included in routing configuration."
                )
        for wanted in (version, *weights):
            if self._functions.get_version(function, wanted) is None:
                raise ResourceNotFoundException(
                    f"Function not found: {scope.function_arn(function, wanted)}"
                )
