"""In-memory ``EventSourceMappingStore`` (contract in ``store.base``): a dict under a lock,
for unit tests and throw-away servers. Frozen records need no copying."""

from __future__ import annotations

import threading

from strato.domain.event_source_mappings import EventSourceMapping
from strato.errors import AlreadyExistsError, NotFoundError


class MemoryEventSourceMappingStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mappings: dict[str, EventSourceMapping] = {}

    def create_mapping(self, mapping: EventSourceMapping) -> None:
        with self._lock:
            if mapping.uuid in self._mappings:
                raise AlreadyExistsError(f"event source mapping {mapping.uuid} exists")
            self._mappings[mapping.uuid] = mapping

    def get_mapping(self, uuid: str) -> EventSourceMapping | None:
        with self._lock:
            return self._mappings.get(uuid)

    def put_mapping(self, mapping: EventSourceMapping) -> None:
        with self._lock:
            if mapping.uuid not in self._mappings:
                raise NotFoundError(f"no event source mapping {mapping.uuid}")
            self._mappings[mapping.uuid] = mapping

    def delete_mapping(self, uuid: str) -> bool:
        with self._lock:
            return self._mappings.pop(uuid, None) is not None

    def list_mappings(self, *, function_name: str | None = None,
                      event_source_arn: str | None = None, after: str | None = None,
                      limit: int | None = None) -> list[EventSourceMapping]:
        if limit is not None and limit < 1:
            raise ValueError("limit must be at least 1")
        with self._lock:
            found = [
                m for uuid, m in sorted(self._mappings.items())
                if (after is None or uuid > after)
                and (function_name is None or m.function_name == function_name)
                and (event_source_arn is None or m.event_source_arn == event_source_arn)
            ]
        return found if limit is None else found[:limit]
