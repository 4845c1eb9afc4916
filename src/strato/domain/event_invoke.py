"""Asynchronous invocation settings of a function, version or alias (FunctionEventInvokeConfig).

An ``EventInvokeConfig`` belongs to one qualifier of a function (``$LATEST`` when the API
call named none). Unset limits (None) mean Lambda's defaults: two retries after a function
error, events kept for six hours
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-configuring.html).
Destinations are ARNs of where the invocation record goes on success and on failure.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

MAX_RETRY_ATTEMPTS_DEFAULT = 2
MAX_RETRY_ATTEMPTS_MAX = 2
MAX_EVENT_AGE_DEFAULT_S = 21_600
MAX_EVENT_AGE_MIN_S = 60
MAX_EVENT_AGE_MAX_S = 21_600


@dataclass(frozen=True)
class Destinations:
    """``DestinationConfig``: the ARN records go to on success and on failure (None: none)."""

    on_success: str | None = None
    on_failure: str | None = None


@dataclass(frozen=True)
class EventInvokeConfig:
    """The asynchronous invocation settings of (``function_name``, ``qualifier``)."""

    function_name: str
    qualifier: str
    last_modified: datetime
    maximum_retry_attempts: int | None = None
    maximum_event_age_s: int | None = None
    destinations: Destinations = Destinations()

    def replace(self, **changes: object) -> EventInvokeConfig:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @property
    def retries(self) -> int:
        """The retries after a function error this configuration allows (default 2)."""
        if self.maximum_retry_attempts is None:
            return MAX_RETRY_ATTEMPTS_DEFAULT
        return self.maximum_retry_attempts

    @property
    def max_age_s(self) -> int:
        """How long an event may wait in the queue, in seconds (default six hours)."""
        if self.maximum_event_age_s is None:
            return MAX_EVENT_AGE_DEFAULT_S
        return self.maximum_event_age_s
