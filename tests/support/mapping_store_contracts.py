"""The ``EventSourceMappingStore`` contract of ``strato.store.base``, written once and run
against every backend: a backend's test module subclasses ``MappingStoreContract`` in a
``Test...`` class and overrides the ``mapping_store`` fixture."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from strato.domain.event_source_mappings import EventSourceMapping, MappingState
from strato.errors import AlreadyExistsError, NotFoundError
from strato.store.base import EventSourceMappingStore
from tests.support.store_contracts import run_threads

QUEUE = "arn:aws:sqs:us-east-1:000000000000:orders"
OTHER_QUEUE = "arn:aws:sqs:us-east-1:123456789012:billing"


def make_mapping(function_name: str = "fn", **changes: object) -> EventSourceMapping:
    mapping = EventSourceMapping(
        uuid=str(uuid.uuid4()),
        event_source_arn=QUEUE,
        function_name=function_name,
        qualifier=None,
        last_modified=datetime(2024, 3, 1, 12, 0, 0, 250000, tzinfo=UTC),
    )
    return mapping.replace(**changes)


class MappingStoreContract:
    @pytest.fixture
    def mapping_store(self) -> EventSourceMappingStore:
        raise NotImplementedError("a backend's test class provides this fixture")

    def test_a_created_mapping_reads_back_field_for_field(self, mapping_store: EventSourceMappingStore) -> None:
        mapping = make_mapping(
            qualifier="live", state=MappingState.DISABLED, enabled=False, batch_size=250,
            maximum_batching_window_s=7, maximum_concurrency=12,
            filter_patterns=('{"body": {"a": ["b"]}}', '{"body": {"c": [1]}}'),
            function_response_types=("ReportBatchItemFailures",),
            state_transition_reason="USER_INITIATED",
        )
        mapping_store.create_mapping(mapping)
        assert mapping_store.get_mapping(mapping.uuid) == mapping

    def test_unknown_mappings_are_none_and_false(self, mapping_store: EventSourceMappingStore) -> None:
        assert mapping_store.get_mapping(str(uuid.uuid4())) is None
        assert mapping_store.delete_mapping(str(uuid.uuid4())) is False
        with pytest.raises(NotFoundError):
            mapping_store.put_mapping(make_mapping())

    def test_a_uuid_is_created_once(self, mapping_store: EventSourceMappingStore) -> None:
        mapping = make_mapping()
        mapping_store.create_mapping(mapping)
        with pytest.raises(AlreadyExistsError):
            mapping_store.create_mapping(mapping.replace(function_name="other"))
        assert mapping_store.get_mapping(mapping.uuid) == mapping

    def test_put_replaces_and_delete_removes(self, mapping_store: EventSourceMappingStore) -> None:
        mapping = make_mapping()
        mapping_store.create_mapping(mapping)
        moved = mapping.replace(function_name="other", event_source_arn=OTHER_QUEUE,
                                state=MappingState.ENABLED, batch_size=3)
        mapping_store.put_mapping(moved)
        assert mapping_store.get_mapping(mapping.uuid) == moved
        assert mapping_store.list_mappings(function_name="other") == [moved]
        assert mapping_store.list_mappings(function_name="fn") == []
        assert mapping_store.delete_mapping(mapping.uuid) is True
        assert mapping_store.get_mapping(mapping.uuid) is None
        assert mapping_store.list_mappings() == []

    def test_lists_by_uuid_filtered_and_paged(self, mapping_store: EventSourceMappingStore) -> None:
        mappings = [make_mapping("fn"), make_mapping("fn", event_source_arn=OTHER_QUEUE),
                    make_mapping("other"), make_mapping("fn")]
        for mapping in mappings:
            mapping_store.create_mapping(mapping)
        by_uuid = sorted(mappings, key=lambda m: m.uuid)
        assert mapping_store.list_mappings() == by_uuid
        assert mapping_store.list_mappings(function_name="fn") == [m for m in by_uuid if m.function_name == "fn"]
        assert mapping_store.list_mappings(event_source_arn=OTHER_QUEUE) == [mappings[1]]
        assert mapping_store.list_mappings(function_name="fn", event_source_arn=QUEUE) == [
            m for m in by_uuid if m.function_name == "fn" and m.event_source_arn == QUEUE]
        first = mapping_store.list_mappings(limit=2)
        rest = mapping_store.list_mappings(after=first[-1].uuid, limit=10)
        assert first + rest == by_uuid
        assert mapping_store.list_mappings(function_name="nobody") == []
        with pytest.raises(ValueError):
            mapping_store.list_mappings(limit=0)

    def test_concurrent_creates_all_land(self, mapping_store: EventSourceMappingStore) -> None:
        mappings = [make_mapping(f"fn-{i}") for i in range(8)]
        run_threads(8, lambda i: mapping_store.create_mapping(mappings[i]))
        assert sorted(m.uuid for m in mapping_store.list_mappings()) == sorted(m.uuid for m in mappings)
