"""The records of the asynchronous path: events, their attempts, deliveries, the ledger.

An event is accepted (``NewEvent``), waits ``QUEUED``, is claimed by a worker (``IN_FLIGHT``,
under a lease), and ends ``SUCCEEDED`` or ``FAILED``, or goes back to the queue as
``RETRYING`` to be claimed again later. A claim carries a ``generation``: the event's
fencing token, bumped by every claim, without which nothing about the event can be settled.

A ``Delivery`` is an invocation record or a dead letter on its way to a destination: written
in the same transaction that settles its event, then sent (and retried) on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EventState(StrEnum):
    QUEUED = "queued"
    IN_FLIGHT = "in_flight"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


#: States in which an event waits to be claimed.
WAITING = (EventState.QUEUED, EventState.RETRYING)
#: The payload bytes one claim takes at most (beyond its first event): what a worker holds.
MAX_CLAIM_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class NewEvent:
    """An accepted asynchronous invocation. ``qualifier`` is the one the caller named (None:
    unqualified, which runs ``$LATEST``); ``region`` the region its ARNs are written in;
    ``accepted_at`` clock seconds (its age counts from there)."""

    request_id: str
    function_name: str
    qualifier: str | None
    region: str
    payload: bytes
    accepted_at: float


@dataclass(frozen=True)
class AttemptResult:
    """What the function answered to one attempt (the ``responseContext`` and
    ``responsePayload`` of an invocation record)."""

    executed_version: str
    payload: bytes
    function_error: str | None = None
    status_code: int = 200


@dataclass(frozen=True)
class ClaimedEvent:
    """An event a worker holds under a lease. ``invocations`` counts the attempts that
    reached the function before this claim (``approximateInvokeCount`` so far);
    ``throttles`` the throttles and system errors in a row before it; ``last_result`` the
    function's answer to the latest attempt, if any."""

    seq: int
    generation: int
    event: NewEvent
    invocations: int
    throttles: int
    lease_expires_at: float
    last_result: AttemptResult | None = None


@dataclass(frozen=True)
class Delivery:
    """A message for a destination: ``target_arn`` is an SQS queue or a Lambda function;
    ``body`` the invocation record (JSON) or, for a dead letter, the event's payload;
    ``attributes`` SQS message attributes (a dead letter's ``RequestID``, ``ErrorCode``,
    ``ErrorMessage``), None for none."""

    target_arn: str
    body: str
    request_id: str
    attributes: dict[str, dict[str, str]] | None = None


@dataclass(frozen=True)
class ClaimedDelivery:
    delivery_id: int
    generation: int
    delivery: Delivery
    attempts: int
    created_at: float


@dataclass(frozen=True)
class Settlement:
    """How a worker settles a claimed event (see ``EventStore.settle``).

    ``state`` is SUCCEEDED, FAILED or RETRYING; ``next_attempt_at`` the clock time of the
    next attempt (RETRYING only). ``invoked`` says whether this attempt reached the function
    (it then counts in ``invocations``); ``throttles`` the new count of throttles and system
    errors in a row. ``deliveries`` are written in the same transaction, and only if the
    claim still holds."""

    seq: int
    generation: int
    state: EventState
    now: float
    invoked: bool
    throttles: int = 0
    next_attempt_at: float | None = None
    condition: str | None = None
    last_error: str | None = None
    last_result: AttemptResult | None = None
    deliveries: tuple[Delivery, ...] = ()


@dataclass(frozen=True)
class LedgerEntry:
    """One event as the ledger shows it. ``attempts`` counts the invocations of the function
    (a worker that died mid-attempt counts too: duplicates show); ``claims`` every time a
    worker took the event."""

    seq: int
    request_id: str
    function_name: str
    qualifier: str | None
    state: EventState
    attempts: int
    claims: int
    accepted_at: float
    next_attempt_at: float | None
    finished_at: float | None
    condition: str | None
    last_error: str | None
