"""The event source mapping service on the memory store, with functions and queues faked:
lifecycle states, AWS's checks in AWS's order, listing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from strato.domain.arns import FunctionRef, Scope
from strato.domain.errors import (
    InvalidParameterValueException,
    LambdaApiError,
    ResourceConflictException,
    ResourceInUseException,
    ResourceNotFoundException,
)
from strato.domain.event_source_mappings import (
    TRANSITIONS,
    EventSourceMapping,
    IllegalTransition,
    MappingState,
)
from strato.domain.models import FunctionVersion
from strato.services.event_source_mappings import EventSourceMappingService, MappingChanges
from strato.sqs.client import QueueUnavailable
from strato.store.memory_mappings import MemoryEventSourceMappingStore
from tests.support.store_contracts import make_version

SCOPE = Scope("us-east-1", "000000000000")
QUEUE = "arn:aws:sqs:us-east-1:000000000000:orders"
OTHER = "arn:aws:sqs:us-east-1:000000000000:billing"


class Harness:
    def __init__(self) -> None:
        self.store = MemoryEventSourceMappingStore()
        self.functions = {"fn": make_version("fn", timeout=10), "slow": make_version("slow", timeout=60)}
        self.queues = {QUEUE: {"VisibilityTimeout": "30"}, OTHER: {"VisibilityTimeout": "30"}}
        self.changes: list[tuple[str, EventSourceMapping | None]] = []
        self.deferred: list[Callable[[], None]] = []
        self.service = EventSourceMappingService(
            self.store, self.lookup, self.attributes,
            lambda uuid, mapping: self.changes.append((uuid, mapping)), self.deferred.append)

    def lookup(self, ref: FunctionRef, scope: Scope) -> FunctionVersion:
        if ref.name not in self.functions or ref.qualifier not in (None, "$LATEST", "live"):
            raise ResourceNotFoundException("Function not found")
        return self.functions[ref.name]

    def attributes(self, arn: str) -> dict[str, str]:
        if arn not in self.queues:
            raise QueueUnavailable("no such queue")
        return self.queues[arn]

    def settle(self) -> None:
        while self.deferred:
            self.deferred.pop(0)()

    def create(self, arn: str | None = QUEUE, name: str = "fn", qualifier: str | None = None,
               **settings: object) -> EventSourceMapping:
        changes = MappingChanges(function=FunctionRef(name, qualifier), **settings)  # type: ignore[arg-type]
        return self.service.create(arn, changes, SCOPE)


@pytest.fixture
def h() -> Harness:
    return Harness()


def message(call: Callable[[], object]) -> tuple[type[LambdaApiError], str]:
    with pytest.raises(LambdaApiError) as caught:
        call()
    return type(caught.value), caught.value.message


def test_create_answers_creating_then_settles_enabled_and_announces(h: Harness) -> None:
    created = h.create()
    assert created.state is MappingState.CREATING and created.batch_size == 10
    assert created.maximum_batching_window_s == 0 and created.enabled
    assert h.changes == []
    h.settle()
    stored = h.service.get(created.uuid)
    assert stored.state is MappingState.ENABLED
    assert h.changes == [(created.uuid, stored)]


def test_a_disabled_mapping_settles_disabled(h: Harness) -> None:
    created = h.create(enabled=False)
    h.settle()
    assert h.service.get(created.uuid).state is MappingState.DISABLED


def test_update_flips_through_disabling_and_enabling(h: Harness) -> None:
    uuid = h.create().uuid
    h.settle()
    assert h.service.update(uuid, MappingChanges(enabled=False), SCOPE).state is MappingState.DISABLING
    h.settle()
    assert h.service.get(uuid).state is MappingState.DISABLED
    assert h.service.update(uuid, MappingChanges(enabled=True), SCOPE).state is MappingState.ENABLING
    h.settle()
    updated = h.service.update(uuid, MappingChanges(maximum_batching_window_s=1, batch_size=50), SCOPE)
    assert updated.state is MappingState.UPDATING and updated.batch_size == 50
    h.settle()
    assert h.service.get(uuid).state is MappingState.ENABLED


def test_updates_change_and_clear_settings(h: Harness) -> None:
    uuid = h.create(maximum_concurrency=4, filter_patterns=('{"body": {"a": ["b"]}}',),
                    function_response_types=("ReportBatchItemFailures",)).uuid
    h.settle()
    h.service.update(uuid, MappingChanges(clear_scaling=True, filter_patterns=(),
                                          function_response_types=()), SCOPE)
    h.settle()
    mapping = h.service.get(uuid)
    assert mapping.maximum_concurrency is None and mapping.filter_patterns == ()
    assert mapping.function_response_types == ()


def test_an_update_between_states_is_refused(h: Harness) -> None:
    uuid = h.create().uuid
    assert message(lambda: h.service.update(uuid, MappingChanges(enabled=False), SCOPE))[0] is ResourceInUseException


def test_delete_answers_deleting_then_the_mapping_is_gone(h: Harness) -> None:
    uuid = h.create().uuid
    h.settle()
    assert h.service.delete(uuid).state is MappingState.DELETING
    h.settle()
    assert h.changes[-1] == (uuid, None)
    assert message(lambda: h.service.get(uuid)) == (ResourceNotFoundException,
                                                    "The resource you requested does not exist.")


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"arn": None}, "Unrecognized event source."),
    ({"arn": "arn:aws:s3:::bucket"}, "Unrecognized event source."),
    ({"arn": QUEUE, "unsupported": ("DestinationConfig",)},
     "Unsupported DestinationConfig parameter for given event source mapping type."),
    ({"name": "nobody"}, "Function does not exist"),
    ({"name": "fn", "qualifier": "7"}, "Function does not exist"),
    ({"arn": "arn:aws:sqs:us-east-1:000000000000:missing"},
     "Error occurred while ReceiveMessage. SQS Error Code: AWS.SimpleQueueService.NonExistentQueue. "
     "SQS Error Message: The specified queue does not exist."),
    ({"name": "slow"}, "Queue visibility timeout: 30 seconds is less than Function timeout: 60 seconds"),
    ({"batch_size": 11},
     "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"),
    ({"filter_patterns": ('"simple string"',)}, "Invalid filter pattern definition."),
    ({"filter_patterns": ('{"a": ["b"]}',) * 6}, "The number of filters in FilterCriteria exceeds the limit of 5."),
])
def test_create_checks(h: Harness, kwargs: dict[str, object], expected: str) -> None:
    assert message(lambda: h.create(**kwargs)) == (InvalidParameterValueException, expected)  # type: ignore[arg-type]


def test_the_first_failing_check_wins(h: Harness) -> None:
    # AWS: no source before settings SQS does not take, before the function, before the queue.
    assert message(lambda: h.create(arn=None, unsupported=("DestinationConfig",)))[1] == "Unrecognized event source."
    assert message(lambda: h.create(name="nobody", unsupported=("DestinationConfig",)))[1].startswith("Unsupported")
    assert message(lambda: h.create(arn="arn:aws:sqs:us-east-1:111111111111:q", name="nobody"))[1] == (
        "Function does not exist")


def test_a_second_mapping_of_the_same_queue_and_function_conflicts(h: Harness) -> None:
    first = h.create()
    kind, text = message(lambda: h.create())
    assert kind is ResourceConflictException
    assert text == (f'An event source mapping with SQS arn (" {QUEUE} ") and function (" fn ") already '
                    f"exists. Please update or delete the existing mapping with UUID {first.uuid}")
    h.create(qualifier="live")  # another qualifier is another target
    h.create(arn=OTHER)


def test_update_checks_the_batching_rule_against_the_stored_window(h: Harness) -> None:
    uuid = h.create().uuid
    h.settle()
    assert message(lambda: h.service.update(uuid, MappingChanges(batch_size=20), SCOPE))[1].startswith(
        "Maximum batch window in seconds must be greater than 0")
    h.service.update(uuid, MappingChanges(maximum_batching_window_s=2), SCOPE)
    h.settle()
    assert h.service.update(uuid, MappingChanges(batch_size=20), SCOPE).batch_size == 20


def test_update_to_another_function_is_checked(h: Harness) -> None:
    uuid = h.create().uuid
    h.settle()
    assert message(lambda: h.service.update(uuid, MappingChanges(function=FunctionRef("slow")), SCOPE))[1] == (
        "Queue visibility timeout: 30 seconds is less than Function timeout: 60 seconds")
    h.queues[QUEUE]["VisibilityTimeout"] = "60"
    assert h.service.update(uuid, MappingChanges(function=FunctionRef("slow")), SCOPE).function_name == "slow"


def test_unknown_uuids_are_not_found(h: Harness) -> None:
    for call in (lambda: h.service.get("nope"), lambda: h.service.delete("nope"),
                 lambda: h.service.update("nope", MappingChanges(), SCOPE)):
        assert message(call) == (ResourceNotFoundException, "The resource you requested does not exist.")


def test_listing_filters_and_pages(h: Harness) -> None:
    h.functions["other"] = make_version("other")
    made = [h.create(), h.create(qualifier="live"), h.create(arn=OTHER), h.create(name="other")]
    everything, marker = h.service.list_mappings(None, None, None, None)
    assert marker is None and {m.uuid for m in everything} == {m.uuid for m in made}
    of_fn, _ = h.service.list_mappings(FunctionRef("fn"), None, None, None)
    assert len(of_fn) == 3
    live, _ = h.service.list_mappings(FunctionRef("fn", "live"), None, None, None)
    assert [m.uuid for m in live] == [made[1].uuid]
    of_queue, _ = h.service.list_mappings(FunctionRef("fn"), QUEUE, None, None)
    assert len(of_queue) == 2
    pages, marker = [], None
    while True:
        page, marker = h.service.list_mappings(None, None, marker, 3)
        pages.append(page)
        if marker is None:
            break
    assert [len(p) for p in pages] == [3, 1]
    assert h.service.list_mappings(FunctionRef("nobody"), None, None, None) == ([], None)


def test_recover_settles_what_a_previous_run_left(h: Harness) -> None:
    creating = h.create()
    deleting = h.create(arn=OTHER)
    h.settle()
    h.service.delete(deleting.uuid)
    h.deferred.clear()  # the process stopped before settling
    restarted = EventSourceMappingService(h.store, h.lookup, h.attributes,
                                          lambda uuid, m: None, h.deferred.append)
    recovered = restarted.recover()
    assert [(m.uuid, m.state) for m in recovered] == [(creating.uuid, MappingState.ENABLED)]


def test_the_lifecycle_allows_only_its_transitions() -> None:
    mapping = EventSourceMapping("u", QUEUE, "fn", None, datetime.now(UTC))
    for source, targets in TRANSITIONS.items():
        for target in MappingState:
            current = mapping.replace(state=source)
            if target in targets:
                assert current.moved_to(target).state is target
            else:
                with pytest.raises(IllegalTransition):
                    current.moved_to(target)
    assert mapping.replace(enabled=False).settled_state is MappingState.DISABLED
