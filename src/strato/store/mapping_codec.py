"""EventSourceMapping <-> JSON text, field by field (the stored shape is named here, so that
a renamed attribute cannot silently change it). ``format`` is written into every record;
``last_modified`` is ISO 8601 in UTC, ``state`` its AWS value."""

from __future__ import annotations

import json
from datetime import datetime

from strato.domain.event_source_mappings import EventSourceMapping, MappingState
from strato.errors import StoreError

FORMAT = 1


def encode_mapping(mapping: EventSourceMapping) -> str:
    """Raises ValueError if ``last_modified`` is naive."""
    if mapping.last_modified.tzinfo is None:
        raise ValueError(f"last_modified of event source mapping {mapping.uuid} must be aware")
    return json.dumps({
        "format": FORMAT,
        "uuid": mapping.uuid,
        "event_source_arn": mapping.event_source_arn,
        "function_name": mapping.function_name,
        "qualifier": mapping.qualifier,
        "last_modified": mapping.last_modified.isoformat(),
        "state": mapping.state.value,
        "enabled": mapping.enabled,
        "batch_size": mapping.batch_size,
        "maximum_batching_window_s": mapping.maximum_batching_window_s,
        "maximum_concurrency": mapping.maximum_concurrency,
        "filter_patterns": list(mapping.filter_patterns),
        "function_response_types": list(mapping.function_response_types),
        "state_transition_reason": mapping.state_transition_reason,
    }, separators=(",", ":"))


def decode_mapping(text: str) -> EventSourceMapping:
    """Raises StoreError for a record this strato cannot read."""
    try:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise StoreError(f"event source mapping record of unknown format {data.get('format')!r}")
        return EventSourceMapping(
            uuid=str(data["uuid"]),
            event_source_arn=str(data["event_source_arn"]),
            function_name=str(data["function_name"]),
            qualifier=None if data["qualifier"] is None else str(data["qualifier"]),
            last_modified=datetime.fromisoformat(data["last_modified"]),
            state=MappingState(data["state"]),
            enabled=bool(data["enabled"]),
            batch_size=int(data["batch_size"]),
            maximum_batching_window_s=int(data["maximum_batching_window_s"]),
            maximum_concurrency=(None if data["maximum_concurrency"] is None
                                 else int(data["maximum_concurrency"])),
            filter_patterns=tuple(str(p) for p in data["filter_patterns"]),
            function_response_types=tuple(str(t) for t in data["function_response_types"]),
            state_transition_reason=str(data["state_transition_reason"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StoreError(f"unreadable event source mapping record: {exc}") from exc
