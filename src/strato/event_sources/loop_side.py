"""What the event source mapping service (control-plane thread) asks of the event loop.

``EventSourceMappingService`` runs on the control-plane thread; the pollers and the queue
clients live on the loop's thread. ``LoopSide`` is the service's two callbacks across that
line: a queue's attributes (awaited on the loop, the control thread waiting at most
``ATTRIBUTES_TIMEOUT_S``) and a settled mapping handed to the pollers (queued on the loop,
never waited for).
"""

from __future__ import annotations

import asyncio

from strato.domain.event_source_mappings import EventSourceMapping
from strato.event_sources.manager import PollerManager
from strato.sqs.client import QueueClient

#: How long a control-plane call waits for a queue's attributes.
ATTRIBUTES_TIMEOUT_S = 30


class LoopSide:
    def __init__(self, loop: asyncio.AbstractEventLoop, queues: QueueClient,
                 pollers: PollerManager) -> None:
        self._loop = loop
        self._queues = queues
        self._pollers = pollers

    def queue_attributes(self, queue_arn: str) -> dict[str, str]:
        """GetQueueAttributes of ``queue_arn`` (a ``QueueAttributes`` of the service). Only
        off the loop's thread (it blocks until the loop answers)."""
        return asyncio.run_coroutine_threadsafe(self._queues.attributes(queue_arn),
                                                self._loop).result(timeout=ATTRIBUTES_TIMEOUT_S)

    def mapping_changed(self, uuid: str, mapping: EventSourceMapping | None) -> None:
        """Bring ``uuid``'s poller in line with ``mapping`` (None: deleted) on the loop (an
        ``OnChange`` of the service); any thread."""
        self._loop.call_soon_threadsafe(self._pollers.apply, uuid, mapping)
