"""The pollers of every enabled event source mapping (on the event loop's thread).

``apply(uuid, mapping)`` is called whenever a mapping settles (and once per stored mapping
at start): an ``Enabled`` mapping gets a new poller (replacing any previous one, so that a
changed batch size or filter takes effect), any other state or a deleted mapping (None) has
its poller stopped. A replaced poller stops in the background: workers holding messages
finish their batch first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from strato.domain.event_source_mappings import EventSourceMapping, MappingState
from strato.event_sources.sqs_poller import SqsPoller

#: How long a replaced poller's busy workers may take to finish their batch (the longest
#: function timeout).
RETIRE_GRACE_S = 900.0

MakePoller = Callable[[EventSourceMapping], SqsPoller]


class PollerManager:
    def __init__(self, make_poller: MakePoller) -> None:
        self._make = make_poller
        self._pollers: dict[str, SqsPoller] = {}
        self._retiring: dict[SqsPoller, asyncio.Task[None]] = {}
        self._closed = False

    def poller(self, uuid: str) -> SqsPoller | None:
        return self._pollers.get(uuid)

    def apply(self, uuid: str, mapping: EventSourceMapping | None) -> None:
        """Bring ``uuid``'s poller in line with ``mapping`` (None: deleted)."""
        old = self._pollers.pop(uuid, None)
        if old is not None:
            task = asyncio.ensure_future(old.stop(RETIRE_GRACE_S))
            self._retiring[old] = task
            task.add_done_callback(lambda _: self._retiring.pop(old, None))
        if mapping is not None and mapping.state is MappingState.ENABLED and not self._closed:
            poller = self._make(mapping)
            self._pollers[uuid] = poller
            poller.start()

    def recover(self, mappings: Iterable[EventSourceMapping]) -> None:
        """At start: ``apply`` each stored mapping (as the mapping service recovered it)."""
        for mapping in mappings:
            self.apply(mapping.uuid, mapping)

    async def close(self, grace_s: float = 2.0) -> None:
        """Stop every poller, giving busy workers ``grace_s`` seconds. Idempotent."""
        self._closed = True
        pollers = [*self._pollers.values(), *self._retiring]
        self._pollers = {}
        await asyncio.gather(*(p.stop(grace_s) for p in pollers), *self._retiring.values(),
                             return_exceptions=True)
