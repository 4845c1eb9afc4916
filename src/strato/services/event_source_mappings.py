"""The event source mapping service: create, read, update and delete SQS mappings.

Runs on the control-plane thread, never on the event loop. Every change is written to the
store first; the transitional state a request answers with (``Creating``, ``Updating``,
``Enabling``, ``Disabling``, ``Deleting``, as AWS) settles in ``settle``, which runs through
``defer`` right after the response, writes the settled state (or deletes the record) and
announces the mapping through ``on_change(uuid, mapping)`` — None once it is gone — so that
the application starts, restarts or stops its poller.

Checks follow AWS's order and words where AWS's are recorded: no event source ARN, settings
the SQS type does not take, the function (``Function does not exist``), the queue (AWS's
``NonExistentQueue`` message), its visibility timeout against the function's timeout, and a
second mapping of the same queue and function.
"""

from __future__ import annotations

import logging
import uuid as uuids
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from strato.domain import event_filter
from strato.domain.arns import FunctionRef, Scope
from strato.domain.errors import (
    InvalidParameterValueException,
    ResourceConflictException,
    ResourceInUseException,
    ResourceNotFoundException,
)
from strato.domain.event_source_mappings import (
    FILTERS_MAX,
    SETTLED,
    SQS_BATCH_SIZE_DEFAULT,
    EventSourceMapping,
    MappingState,
    check_batching,
    check_visibility_timeout,
)
from strato.domain.models import FunctionVersion, utcnow
from strato.sqs.client import QueueUnavailable
from strato.store.base import EventSourceMappingStore

log = logging.getLogger(__name__)

#: ``(uuid, mapping)``: the mapping as it now is, None once it is deleted.
OnChange = Callable[[str, EventSourceMapping | None], None]
Defer = Callable[[Callable[[], None]], None]
LookupFunction = Callable[[FunctionRef, Scope], FunctionVersion]
QueueAttributes = Callable[[str], Mapping[str, str]]

_NOT_FOUND = "The resource you requested does not exist."
_NO_QUEUE = (
    "Error occurred while ReceiveMessage. SQS Error Code: AWS.SimpleQueueService.NonExistentQueue. "
    "SQS Error Message: The specified queue does not exist."
)
_PAGE_DEFAULT = 100
#: Sources Lambda knows but strato has no poller for.
_OTHER_SOURCES = ("kinesis", "dynamodb", "kafka", "mq", "rds")


@dataclass(frozen=True)
class MappingChanges:
    """Settings of a CreateEventSourceMapping or UpdateEventSourceMapping request; None means
    "not given" (the default on create, unchanged on update). An empty ``filter_patterns`` or
    ``function_response_types`` clears them; ``clear_scaling`` drops ``ScalingConfig``."""

    function: FunctionRef | None = None
    enabled: bool | None = None
    batch_size: int | None = None
    maximum_batching_window_s: int | None = None
    maximum_concurrency: int | None = None
    clear_scaling: bool = False
    filter_patterns: tuple[str, ...] | None = None
    function_response_types: tuple[str, ...] | None = None
    #: Members of the request that SQS mappings do not take (``DestinationConfig``, …).
    unsupported: tuple[str, ...] = ()


class EventSourceMappingService:
    def __init__(
        self,
        store: EventSourceMappingStore,
        lookup: LookupFunction,
        queue_attributes: QueueAttributes,
        on_change: OnChange,
        defer: Defer,
    ) -> None:
        """``lookup`` resolves a function (raising ResourceNotFoundException);
        ``queue_attributes`` answers GetQueueAttributes of a queue ARN (raising
        QueueUnavailable)."""
        self._store = store
        self._lookup = lookup
        self._queue_attributes = queue_attributes
        self._on_change = on_change
        self._defer = defer

    # requests --------------------------------------------------------------------------
    def create(self, event_source_arn: str | None, changes: MappingChanges,
               scope: Scope) -> EventSourceMapping:
        """A new mapping in ``Creating``; it settles to Enabled (or Disabled) right after."""
        if not event_source_arn:
            raise InvalidParameterValueException("Unrecognized event source.")
        _check_source(event_source_arn)
        _check_static(changes)
        assert changes.function is not None  # FunctionName is required by the model
        window = changes.maximum_batching_window_s or 0
        batch_size = changes.batch_size or SQS_BATCH_SIZE_DEFAULT
        check_batching(batch_size, window)
        self._check_target(event_source_arn, changes.function, scope)
        self._check_duplicate(event_source_arn, changes.function, None)
        mapping = EventSourceMapping(
            uuid=str(uuids.uuid4()),
            event_source_arn=event_source_arn,
            function_name=changes.function.name,
            qualifier=changes.function.qualifier,
            last_modified=utcnow(),
            enabled=True if changes.enabled is None else changes.enabled,
            batch_size=batch_size,
            maximum_batching_window_s=window,
            maximum_concurrency=changes.maximum_concurrency,
            filter_patterns=changes.filter_patterns or (),
            function_response_types=changes.function_response_types or (),
        )
        self._store.create_mapping(mapping)
        self._defer(lambda: self.settle(mapping.uuid))
        return mapping

    def get(self, uuid: str) -> EventSourceMapping:
        mapping = self._store.get_mapping(uuid)
        if mapping is None:
            raise ResourceNotFoundException(_NOT_FOUND)
        return mapping

    def list_mappings(self, function: FunctionRef | None, event_source_arn: str | None,
                      marker: str | None, max_items: int | None
                      ) -> tuple[list[EventSourceMapping], str | None]:
        """A page of mappings by UUID, of one function (and qualifier, when ``function``
        has one) and one source when given; the marker is the last UUID of the page.
        Filters that name nothing stored give an empty page, as on AWS."""
        limit = max_items or _PAGE_DEFAULT
        found: list[EventSourceMapping] = []
        after = marker
        while len(found) <= limit:
            page = self._store.list_mappings(
                function_name=function.name if function else None,
                event_source_arn=event_source_arn, after=after, limit=limit + 1)
            if not page:
                break
            after = page[-1].uuid
            found += [m for m in page
                      if function is None or function.qualifier is None
                      or m.qualifier == function.qualifier]
        if len(found) > limit:
            return found[:limit], found[limit - 1].uuid
        return found, None

    def update(self, uuid: str, changes: MappingChanges, scope: Scope) -> EventSourceMapping:
        """Apply ``changes``; answers ``Enabling``/``Disabling`` when ``Enabled`` flips,
        ``Updating`` otherwise. Raises ResourceInUseException while the mapping is between
        states."""
        current = self.get(uuid)
        if current.state not in SETTLED:
            raise ResourceInUseException(
                "The operation cannot be performed at this time. The event source mapping is "
                f"currently in the following state: {current.state.value}"
            )
        _check_static(changes)
        batch_size = changes.batch_size if changes.batch_size is not None else current.batch_size
        window = (changes.maximum_batching_window_s if changes.maximum_batching_window_s is not None
                  else current.maximum_batching_window_s)
        check_batching(batch_size, window)
        fields: dict[str, object] = {"batch_size": batch_size, "maximum_batching_window_s": window}
        function = changes.function
        if function is not None and (function.name, function.qualifier) != (
                current.function_name, current.qualifier):
            self._check_target(current.event_source_arn, function, scope)
            self._check_duplicate(current.event_source_arn, function, uuid)
            fields.update(function_name=function.name, qualifier=function.qualifier)
        if changes.enabled is not None:
            fields["enabled"] = changes.enabled
        if changes.clear_scaling:
            fields["maximum_concurrency"] = None
        elif changes.maximum_concurrency is not None:
            fields["maximum_concurrency"] = changes.maximum_concurrency
        if changes.filter_patterns is not None:
            fields["filter_patterns"] = changes.filter_patterns
        if changes.function_response_types is not None:
            fields["function_response_types"] = changes.function_response_types
        enabled = fields.get("enabled", current.enabled)
        if enabled != current.enabled:
            state = MappingState.ENABLING if enabled else MappingState.DISABLING
        else:
            state = MappingState.UPDATING
        updated = current.replace(last_modified=utcnow(), **fields).moved_to(state)
        self._store.put_mapping(updated)
        self._defer(lambda: self.settle(uuid))
        return updated

    def delete(self, uuid: str) -> EventSourceMapping:
        """The mapping in ``Deleting``; it is gone right after."""
        current = self.get(uuid)
        if current.state is MappingState.DELETING:
            return current
        deleting = current.moved_to(MappingState.DELETING)
        self._store.put_mapping(deleting)
        self._defer(lambda: self.settle(uuid))
        return deleting

    # lifecycle -------------------------------------------------------------------------
    def settle(self, uuid: str, *, announce: bool = True) -> None:
        """Finish the transition the mapping is in (idempotent: a settled mapping stays as
        it is) and, with ``announce``, tell ``on_change``."""
        mapping = self._store.get_mapping(uuid)
        if mapping is None:
            return
        settled: EventSourceMapping | None = mapping
        if mapping.state is MappingState.DELETING:
            self._store.delete_mapping(uuid)
            settled = None
        elif mapping.state not in SETTLED:
            settled = mapping.moved_to(mapping.settled_state)
            self._store.put_mapping(settled)
        if announce:
            self._on_change(uuid, settled)

    def recover(self) -> list[EventSourceMapping]:
        """At start: settle what a previous run left between states (announcing nothing)
        and return every mapping as it then is; the caller starts their pollers."""
        for mapping in self._store.list_mappings():
            if mapping.state not in SETTLED:
                self.settle(mapping.uuid, announce=False)
        return self._store.list_mappings()

    # checks ----------------------------------------------------------------------------
    def _check_target(self, event_source_arn: str, function: FunctionRef, scope: Scope) -> None:
        """The function exists, the queue too, and the queue keeps a received message
        hidden for at least the function's timeout."""
        try:
            record = self._lookup(function, scope)
        except ResourceNotFoundException as exc:
            raise InvalidParameterValueException("Function does not exist") from exc
        try:
            attributes = self._queue_attributes(event_source_arn)
        except QueueUnavailable as exc:
            log.info("event source mapping refused for %s: %s", event_source_arn, exc)
            raise InvalidParameterValueException(_NO_QUEUE) from exc
        visibility = attributes.get("VisibilityTimeout", "30")
        check_visibility_timeout(int(visibility), record.timeout)

    def _check_duplicate(self, event_source_arn: str, function: FunctionRef,
                         own_uuid: str | None) -> None:
        for other in self._store.list_mappings(function_name=function.name,
                                               event_source_arn=event_source_arn):
            if other.qualifier == function.qualifier and other.uuid != own_uuid:
                shown = function.name if function.qualifier is None else (
                    f"{function.name}:{function.qualifier}")
                raise ResourceConflictException(
                    f'An event source mapping with SQS arn (" {event_source_arn} ") and function '
                    f'(" {shown} ") already exists. Please update or delete the existing mapping '
                    f"with UUID {other.uuid}"
                )


def _check_source(event_source_arn: str) -> None:
    parts = event_source_arn.split(":")
    service = parts[2] if len(parts) > 2 else ""
    if service == "sqs" and len(parts) == 6:
        return
    if service in _OTHER_SOURCES:
        raise InvalidParameterValueException(
            f"strato offers event source mappings for Amazon SQS queues only, not {service}."
        )
    raise InvalidParameterValueException("Unrecognized event source.")


def _check_static(changes: MappingChanges) -> None:
    """What can be checked without the store: settings SQS does not take, and filters."""
    if changes.unsupported:
        raise InvalidParameterValueException(
            f"Unsupported {changes.unsupported[0]} parameter for given event source mapping type."
        )
    patterns = changes.filter_patterns or ()
    if len(patterns) > FILTERS_MAX:
        raise InvalidParameterValueException(
            f"The number of filters in FilterCriteria exceeds the limit of {FILTERS_MAX}."
        )
    for pattern in patterns:
        try:
            event_filter.parse(pattern)
        except event_filter.FilterPatternError as exc:
            raise InvalidParameterValueException("Invalid filter pattern definition.") from exc

