"""FunctionEventInvokeConfig: Put, Get, Update, Delete and List, per qualifier.

Runs on the control-plane thread. Every committed change is copied into an
``EventInvokeConfigCache``, which the asynchronous worker reads on the event loop without
touching the database. Put replaces a configuration (settings left out are removed); Update
merges the given settings into the existing one
(https://docs.aws.amazon.com/lambda/latest/api/API_PutFunctionEventInvokeConfig.html).
Messages and their order are AWS's, as recorded from the real service.

Destinations strato delivers to are other Lambda functions and SQS queues; other AWS services
(SNS, EventBridge, S3) are refused with a message saying so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from strato.domain.arns import FunctionRef, Scope
from strato.domain.errors import InvalidParameterValueException, ResourceNotFoundException
from strato.domain.event_invoke import Destinations, EventInvokeConfig
from strato.domain.models import LATEST, utcnow
from strato.errors import NotFoundError
from strato.store.base import AliasStore, EventInvokeConfigStore, FunctionStore

_NO_FUNCTION = "The function doesn't exist."
_NOTHING_GIVEN = "You must specify at least one of error handling or destination setting."
_SELF = "You can't specify the function as a destination for itself."
#: Services strato has no client for (AWS accepts them as destinations).
_UNDELIVERABLE = frozenset({"sns", "events", "s3"})


class EventInvokeConfigCache:
    """Every configuration by (function, qualifier). Written by one thread (the control
    plane), read by any: each write replaces a whole immutable mapping."""

    def __init__(self, configs: Iterable[EventInvokeConfig] = ()) -> None:
        self._configs: Mapping[tuple[str, str], EventInvokeConfig] = MappingProxyType(
            {(c.function_name, c.qualifier): c for c in configs})

    def get(self, function_name: str, qualifier: str) -> EventInvokeConfig | None:
        return self._configs.get((function_name, qualifier))

    def put(self, config: EventInvokeConfig) -> None:
        self._configs = MappingProxyType(
            {**self._configs, (config.function_name, config.qualifier): config})

    def remove(self, function_name: str, qualifier: str | None) -> None:
        """Forget one qualifier's configuration, or (None) every one of the function."""
        self._configs = MappingProxyType({
            key: config for key, config in self._configs.items()
            if key[0] != function_name or (qualifier is not None and key[1] != qualifier)
        })


@dataclass(frozen=True)
class EventInvokeConfigChanges:
    """Settings of a Put or Update; None means "not given". ``on_success`` and
    ``on_failure`` are None when not given and ``""`` when given without a destination."""

    maximum_retry_attempts: int | None = None
    maximum_event_age_s: int | None = None
    destinations_given: bool = False
    on_success: str | None = None
    on_failure: str | None = None

    @property
    def empty(self) -> bool:
        return (self.maximum_retry_attempts is None and self.maximum_event_age_s is None
                and not self.destinations_given)


def _service(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[2] if len(parts) >= 6 and parts[0] == "arn" else None


class EventInvokeConfigService:
    def __init__(self, store: EventInvokeConfigStore, functions: FunctionStore,
                 aliases: AliasStore, cache: EventInvokeConfigCache) -> None:
        self._store = store
        self._functions = functions
        self._aliases = aliases
        self._cache = cache

    # operations ---------------------------------------------------------------------------
    def put(self, ref: FunctionRef, changes: EventInvokeConfigChanges,
            scope: Scope) -> EventInvokeConfig:
        """PutFunctionEventInvokeConfig: create or replace."""
        if changes.empty:
            raise InvalidParameterValueException(_NOTHING_GIVEN)
        qualifier = self._require(ref)
        destinations = Destinations(changes.on_success or None, changes.on_failure or None)
        self._check_destinations(ref.name, destinations)
        config = EventInvokeConfig(ref.name, qualifier, utcnow(), changes.maximum_retry_attempts,
                                   changes.maximum_event_age_s, destinations)
        return self._write(config)

    def update(self, ref: FunctionRef, changes: EventInvokeConfigChanges,
               scope: Scope) -> EventInvokeConfig:
        """UpdateFunctionEventInvokeConfig: merge the given settings into the existing ones."""
        if changes.empty:
            raise InvalidParameterValueException(_NOTHING_GIVEN)
        qualifier = self._require(ref)
        current = self._store.get_config(ref.name, qualifier)
        if current is None:
            raise self._no_config(ref.name, qualifier, scope)
        destinations = current.destinations
        if changes.destinations_given:
            destinations = Destinations(
                destinations.on_success if changes.on_success is None else changes.on_success or None,
                destinations.on_failure if changes.on_failure is None else changes.on_failure or None,
            )
            self._check_destinations(ref.name, destinations)
        config = current.replace(
            last_modified=utcnow(),
            maximum_retry_attempts=current.maximum_retry_attempts
            if changes.maximum_retry_attempts is None else changes.maximum_retry_attempts,
            maximum_event_age_s=current.maximum_event_age_s
            if changes.maximum_event_age_s is None else changes.maximum_event_age_s,
            destinations=destinations,
        )
        return self._write(config)

    def get(self, ref: FunctionRef, scope: Scope) -> EventInvokeConfig:
        qualifier = ref.qualifier or LATEST
        config = self._store.get_config(ref.name, qualifier)
        if config is None:
            raise self._no_config(ref.name, qualifier, scope)
        return config

    def delete(self, ref: FunctionRef, scope: Scope) -> None:
        qualifier = ref.qualifier or LATEST
        if not self._store.delete_config(ref.name, qualifier):
            raise self._no_config(ref.name, qualifier, scope)
        self._cache.remove(ref.name, qualifier)

    def list_configs(self, ref: FunctionRef, marker: str | None, max_items: int | None,
                     scope: Scope) -> tuple[list[EventInvokeConfig], str | None]:
        """A page of the function's configurations by qualifier, after the qualifier
        ``marker``."""
        if self._functions.get_version(ref.name, LATEST) is None:
            raise ResourceNotFoundException(_NO_FUNCTION)
        configs = [c for c in self._store.list_configs(ref.name)
                   if marker is None or c.qualifier > marker]
        limit = min(max_items or 50, 50)
        if len(configs) > limit:
            return configs[:limit], configs[limit - 1].qualifier
        return configs, None

    # lifecycle of what configurations belong to ----------------------------------------------
    def qualifier_deleted(self, function_name: str, qualifier: str) -> None:
        """A version or alias was deleted: its configuration goes with it."""
        if self._store.delete_config(function_name, qualifier):
            self._cache.remove(function_name, qualifier)

    def function_deleted(self, function_name: str) -> None:
        self._store.delete_configs(function_name)
        self._cache.remove(function_name, None)

    # rules --------------------------------------------------------------------------------
    def _write(self, config: EventInvokeConfig) -> EventInvokeConfig:
        try:
            self._store.put_config(config)
        except NotFoundError as exc:
            raise ResourceNotFoundException(_NO_FUNCTION) from exc
        self._cache.put(config)
        return config

    def _require(self, ref: FunctionRef) -> str:
        """The qualifier a Put or Update configures; raises unless the function and the
        qualifier exist."""
        if self._functions.get_version(ref.name, LATEST) is None:
            raise ResourceNotFoundException(_NO_FUNCTION)
        qualifier = ref.qualifier or LATEST
        if qualifier == LATEST:
            return qualifier
        if qualifier.isdigit():
            found = self._functions.get_version(ref.name, qualifier) is not None
        else:
            found = self._aliases.get_alias(ref.name, qualifier) is not None
        if not found:
            raise ResourceNotFoundException(_NO_FUNCTION)
        return qualifier

    @staticmethod
    def _no_config(name: str, qualifier: str, scope: Scope) -> ResourceNotFoundException:
        return ResourceNotFoundException(
            f"The function {scope.function_arn(name, qualifier)} doesn't have an EventInvokeConfig")

    def _check_destinations(self, function_name: str, destinations: Destinations) -> None:
        invalid = False
        for arn in (destinations.on_success, destinations.on_failure):
            if not arn:
                continue
            service = _service(arn)
            if service == "lambda":
                self._check_function_destination(function_name, arn)
            elif service in _UNDELIVERABLE:
                raise InvalidParameterValueException(
                    f"The destination ARN {arn} is invalid: strato delivers invocation records "
                    "to Lambda functions and SQS queues only."
                )
            elif service != "sqs":
                invalid = True
        if invalid:
            success = destinations.on_success
            failure = destinations.on_failure
            raise InvalidParameterValueException(
                "The provided destination config DestinationConfig("
                f"onSuccess={f'OnSuccess(destination={success})' if success else 'null'}, "
                f"onFailure={f'OnFailure(destination={failure})' if failure else 'null'}) is invalid."
            )

    def _check_function_destination(self, function_name: str, arn: str) -> None:
        parts = arn.split(":")
        name = parts[6] if len(parts) in (7, 8) and parts[5] == "function" else None
        if name is None or self._functions.get_version(name, LATEST) is None:
            raise InvalidParameterValueException(f"The destination ARN {arn} is invalid.")
        if name == function_name:
            raise InvalidParameterValueException(_SELF)
