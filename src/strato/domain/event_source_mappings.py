"""Event source mappings: the frozen record, its lifecycle, and the rules of its settings.

A mapping ties a queue (``EventSourceArn``, an SQS queue) to a function, optionally
qualified, and says how its poller batches, filters and scales. Its ``state`` follows
Lambda's lifecycle (https://docs.aws.amazon.com/lambda/latest/api/API_EventSourceMappingConfiguration.html):
CreateEventSourceMapping answers ``Creating``, UpdateEventSourceMapping ``Updating`` (or
``Enabling``/``Disabling`` when it switches the mapping on or off), DeleteEventSourceMapping
``Deleting``; the mapping then settles to ``Enabled`` or ``Disabled`` (or is gone). Only an
``Enabled`` mapping has a poller.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from strato.domain.errors import InvalidParameterValueException
from strato.errors import StratoError

#: SQS: BatchSize 1–10,000, default 10; above 10 needs a batching window of at least 1 s.
#: (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html)
SQS_BATCH_SIZE_DEFAULT = 10
SQS_BATCH_SIZE_MAX = 10_000
SQS_BATCH_SIZE_WITHOUT_WINDOW = 10
BATCHING_WINDOW_MAX_S = 300
#: ScalingConfig.MaximumConcurrency of SQS mappings.
MAXIMUM_CONCURRENCY_MIN = 2
MAXIMUM_CONCURRENCY_MAX = 1_000
#: Filters per mapping (Lambda's default quota).
FILTERS_MAX = 5
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
USER_INITIATED = "USER_INITIATED"


class MappingState(StrEnum):
    CREATING = "Creating"
    ENABLING = "Enabling"
    ENABLED = "Enabled"
    DISABLING = "Disabling"
    DISABLED = "Disabled"
    UPDATING = "Updating"
    DELETING = "Deleting"


#: Legal transitions. A transitional state settles to the state on its right; the settled
#: states accept the user's requests.
TRANSITIONS: dict[MappingState, frozenset[MappingState]] = {
    MappingState.CREATING: frozenset({MappingState.ENABLED, MappingState.DISABLED,
                                      MappingState.DELETING}),
    MappingState.ENABLING: frozenset({MappingState.ENABLED, MappingState.DELETING}),
    MappingState.DISABLING: frozenset({MappingState.DISABLED, MappingState.DELETING}),
    MappingState.UPDATING: frozenset({MappingState.ENABLED, MappingState.DISABLED,
                                      MappingState.DELETING}),
    MappingState.ENABLED: frozenset({MappingState.UPDATING, MappingState.DISABLING,
                                     MappingState.DELETING}),
    MappingState.DISABLED: frozenset({MappingState.UPDATING, MappingState.ENABLING,
                                      MappingState.DELETING}),
    MappingState.DELETING: frozenset(),
}
SETTLED = frozenset({MappingState.ENABLED, MappingState.DISABLED})


class IllegalTransition(StratoError):
    """A mapping was asked to move to a state its current one does not lead to (a bug of
    the caller: services check states before they move a mapping)."""


@dataclass(frozen=True)
class EventSourceMapping:
    """One mapping. ``qualifier`` is the one its FunctionName carried (None: unqualified);
    ``filter_patterns`` are the ``Filters[].Pattern`` texts as given; ``enabled`` is what the
    user asked for, ``state`` where the lifecycle is."""

    uuid: str
    event_source_arn: str
    function_name: str
    qualifier: str | None
    last_modified: datetime
    state: MappingState = MappingState.CREATING
    enabled: bool = True
    batch_size: int = SQS_BATCH_SIZE_DEFAULT
    maximum_batching_window_s: int = 0
    maximum_concurrency: int | None = None
    filter_patterns: tuple[str, ...] = ()
    function_response_types: tuple[str, ...] = ()
    state_transition_reason: str = USER_INITIATED

    def replace(self, **changes: object) -> EventSourceMapping:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def moved_to(self, state: MappingState) -> EventSourceMapping:
        """This mapping in ``state``; raises IllegalTransition unless TRANSITIONS allows it."""
        if state not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"event source mapping {self.uuid}: {self.state} → {state}")
        return self.replace(state=state)

    @property
    def settled_state(self) -> MappingState:
        """Where a transitional state settles."""
        return MappingState.ENABLED if self.enabled else MappingState.DISABLED

    @property
    def report_batch_item_failures(self) -> bool:
        return REPORT_BATCH_ITEM_FAILURES in self.function_response_types


def mapping_arn(region: str, account: str, uuid: str) -> str:
    return f"arn:aws:lambda:{region}:{account}:event-source-mapping:{uuid}"


def check_batching(batch_size: int, window_s: int) -> None:
    """AWS's rule for SQS batches (message recorded from AWS)."""
    if batch_size > SQS_BATCH_SIZE_WITHOUT_WINDOW and window_s < 1:
        raise InvalidParameterValueException(
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is "
            "greater than 10"
        )


def check_visibility_timeout(visibility_timeout_s: int, function_timeout_s: int) -> None:
    """A queue whose messages reappear before the function may have finished is refused
    (AWS's message)."""
    if visibility_timeout_s < function_timeout_s:
        raise InvalidParameterValueException(
            f"Queue visibility timeout: {visibility_timeout_s} seconds is less than Function "
            f"timeout: {function_timeout_s} seconds"
        )
