"""The contracts of ``strato.store.base``, written once and run against every backend.

A backend's test module subclasses ``FunctionStoreContract`` / ``LogStoreContract`` in a
``Test...`` class and overrides the ``function_store`` / ``log_store`` fixture.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from strato.domain.models import (
    LATEST,
    CodeRef,
    FunctionState,
    FunctionVersion,
    LastUpdateStatus,
)
from strato.errors import AlreadyExistsError, NotFoundError, RevisionMismatchError
from strato.store.base import FunctionStore, LogEvent, LogStore

SHA_A = "a" * 64
SHA_B = "b" * 64


def make_version(name: str = "fn", **changes: object) -> FunctionVersion:
    record = FunctionVersion(
        name=name,
        runtime="python3.12",
        handler="app.handler",
        role="arn:aws:iam::123456789012:role/lambda",
        code=CodeRef(sha256_hex=SHA_A, size=321),
        revision_id=str(uuid.uuid4()),
        last_modified=datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=UTC),
    )
    return record.replace(**changes)


def run_threads(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(i)`` in ``count`` threads released together; re-raise the first failure."""
    barrier = threading.Barrier(count)
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            work(index)
        except BaseException as e:  # reported to the test below
            failures.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


class FunctionStoreContract:
    @pytest.fixture
    def function_store(self) -> FunctionStore:
        raise NotImplementedError("a backend's test class provides this fixture")

    def test_create_then_get_returns_the_same_record(self, function_store: FunctionStore) -> None:
        record = make_version(
            "everything",
            memory_size=1024,
            timeout=60,
            ephemeral_storage=2048,
            description="all fields set",
            environment={"A": "1", "EMPTY": ""},
            architectures=("arm64",),
            state=FunctionState.ACTIVE,
            state_reason=None,
            state_reason_code=None,
            last_update_status=LastUpdateStatus.SUCCESSFUL,
            last_update_status_reason="done",
            last_update_status_reason_code="Ok",
        )
        function_store.create_function(record)
        assert function_store.get_version("everything", LATEST) == record

    def test_get_of_an_unknown_function_or_version_is_none(
        self, function_store: FunctionStore
    ) -> None:
        function_store.create_function(make_version("fn"))
        assert function_store.get_version("other", LATEST) is None
        assert function_store.get_version("fn", "1") is None

    def test_last_modified_keeps_its_instant(self, function_store: FunctionStore) -> None:
        moment = datetime(2024, 6, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=2)))
        function_store.create_function(make_version("fn", last_modified=moment))
        stored = function_store.get_version("fn", LATEST)
        assert stored is not None
        assert stored.last_modified == moment
        assert stored.last_modified.utcoffset() is not None

    def test_create_twice_raises_already_exists_and_keeps_the_first(
        self, function_store: FunctionStore
    ) -> None:
        first = make_version("fn", description="first")
        function_store.create_function(first)
        with pytest.raises(AlreadyExistsError):
            function_store.create_function(make_version("fn", description="second"))
        assert function_store.get_version("fn", LATEST) == first

    def test_create_refuses_a_version_other_than_latest(
        self, function_store: FunctionStore
    ) -> None:
        with pytest.raises(ValueError):
            function_store.create_function(make_version("fn", version="1"))
        assert function_store.get_version("fn", "1") is None

    def test_put_with_the_stored_revision_replaces_the_record(
        self, function_store: FunctionStore
    ) -> None:
        old = make_version("fn")
        function_store.create_function(old)
        new = old.replace(description="changed", revision_id="r2", code=CodeRef(SHA_B, 9))
        function_store.put_version(new, expected_revision=old.revision_id)
        assert function_store.get_version("fn", LATEST) == new

    def test_put_with_a_stale_revision_raises_and_changes_nothing(
        self, function_store: FunctionStore
    ) -> None:
        old = make_version("fn")
        function_store.create_function(old)
        with pytest.raises(RevisionMismatchError):
            function_store.put_version(
                old.replace(description="lost", revision_id="r3"), expected_revision="stale"
            )
        assert function_store.get_version("fn", LATEST) == old

    def test_put_of_an_unknown_record_raises_not_found(
        self, function_store: FunctionStore
    ) -> None:
        with pytest.raises(NotFoundError):
            function_store.put_version(make_version("ghost"), expected_revision="any")
        function_store.create_function(make_version("fn"))
        with pytest.raises(NotFoundError):
            function_store.put_version(make_version("fn", version="7"), expected_revision="x")

    def test_list_latest_pages_by_name(self, function_store: FunctionStore) -> None:
        for name in ["delta", "alpha", "echo", "charlie", "bravo"]:
            function_store.create_function(make_version(name))
        pages: list[list[str]] = []
        after: str | None = None
        while True:
            page = function_store.list_latest(after=after, limit=2)
            if not page:
                break
            pages.append([record.name for record in page])
            after = page[-1].name
        assert pages == [["alpha", "bravo"], ["charlie", "delta"], ["echo"]]
        assert [r.name for r in function_store.list_latest(after="b", limit=10)] == [
            "bravo", "charlie", "delta", "echo",
        ]
        assert all(r.version == LATEST for r in function_store.list_latest(after=None, limit=9))

    def test_list_latest_of_an_empty_store_is_empty(self, function_store: FunctionStore) -> None:
        assert function_store.list_latest(after=None, limit=50) == []

    def test_list_latest_refuses_a_limit_below_one(self, function_store: FunctionStore) -> None:
        with pytest.raises(ValueError):
            function_store.list_latest(after=None, limit=0)

    def test_delete_removes_the_function(self, function_store: FunctionStore) -> None:
        function_store.create_function(make_version("fn"))
        function_store.create_function(make_version("kept"))
        assert function_store.delete_function("fn") is True
        assert function_store.get_version("fn", LATEST) is None
        assert function_store.delete_function("fn") is False
        assert [r.name for r in function_store.list_latest(after=None, limit=10)] == ["kept"]

    def test_a_deleted_name_can_be_created_again(self, function_store: FunctionStore) -> None:
        function_store.create_function(make_version("fn", description="old"))
        function_store.delete_function("fn")
        again = make_version("fn", description="new")
        function_store.create_function(again)
        assert function_store.get_version("fn", LATEST) == again

    def test_code_references_follow_creates_updates_and_deletes(
        self, function_store: FunctionStore
    ) -> None:
        assert function_store.code_references() == set()
        first = make_version("one")
        function_store.create_function(first)
        function_store.create_function(make_version("two"))
        assert function_store.code_references() == {SHA_A}
        function_store.put_version(
            first.replace(code=CodeRef(SHA_B, 1), revision_id="r2"),
            expected_revision=first.revision_id,
        )
        assert function_store.code_references() == {SHA_A, SHA_B}
        function_store.delete_function("two")
        assert function_store.code_references() == {SHA_B}

    def test_concurrent_compare_and_swap_loses_no_update(
        self, function_store: FunctionStore
    ) -> None:
        function_store.create_function(make_version("counter", description="0"))
        threads, increments = 8, 25

        def increment(_: int) -> None:
            done = 0
            while done < increments:
                current = function_store.get_version("counter", LATEST)
                assert current is not None
                updated = current.replace(
                    description=str(int(current.description) + 1),
                    revision_id=str(uuid.uuid4()),
                )
                try:
                    function_store.put_version(updated, expected_revision=current.revision_id)
                except RevisionMismatchError:
                    continue
                done += 1

        run_threads(threads, increment)
        final = function_store.get_version("counter", LATEST)
        assert final is not None
        assert final.description == str(threads * increments)

    def test_concurrent_creates_of_one_name_have_one_winner(
        self, function_store: FunctionStore
    ) -> None:
        winners: list[int] = []

        def create(index: int) -> None:
            try:
                function_store.create_function(make_version("race", description=str(index)))
            except AlreadyExistsError:
                return
            winners.append(index)

        run_threads(8, create)
        assert len(winners) == 1
        stored = function_store.get_version("race", LATEST)
        assert stored is not None and stored.description == str(winners[0])

    def test_concurrent_creates_of_many_names_all_land(
        self, function_store: FunctionStore
    ) -> None:
        run_threads(8, lambda i: function_store.create_function(make_version(f"fn-{i:02d}")))
        names = [r.name for r in function_store.list_latest(after=None, limit=100)]
        assert names == [f"fn-{i:02d}" for i in range(8)]


class FakeClock:
    """Epoch milliseconds that move only when a test says so."""

    def __init__(self, now_ms: int = 1_700_000_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


GROUP = "/aws/lambda/fn"


def event(stream: str, timestamp_ms: int, message: str, group: str = GROUP) -> LogEvent:
    return LogEvent(group=group, stream=stream, timestamp_ms=timestamp_ms, message=message)


class LogStoreContract:
    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def log_store(self, clock: FakeClock) -> LogStore:
        raise NotImplementedError("a backend's test class provides this fixture")

    def test_query_returns_events_in_append_order_with_rising_positions(
        self, log_store: LogStore, clock: FakeClock
    ) -> None:
        events = [event("s1", 30, "c"), event("s1", 10, "a"), event("s2", 20, "b")]
        log_store.append(events)
        stored = log_store.query(GROUP)
        assert [s.event for s in stored] == events
        positions = [s.position for s in stored]
        assert positions == sorted(positions) and len(set(positions)) == 3
        assert positions[0] > 0
        assert {s.ingestion_ms for s in stored} == {clock.now_ms}

    def test_append_of_nothing_is_a_no_op(self, log_store: LogStore) -> None:
        log_store.append([])
        assert log_store.query(GROUP) == []

    def test_groups_are_separate(self, log_store: LogStore) -> None:
        log_store.append([event("s", 1, "mine"), event("s", 1, "theirs", group="/aws/lambda/x")])
        assert [s.event.message for s in log_store.query(GROUP)] == ["mine"]
        assert [s.event.message for s in log_store.query("/aws/lambda/x")] == ["theirs"]
        assert log_store.query("/aws/lambda/none") == []

    def test_query_by_streams(self, log_store: LogStore) -> None:
        log_store.append([event("s1", 1, "a"), event("s2", 2, "b"), event("s3", 3, "c")])
        assert [s.event.message for s in log_store.query(GROUP, streams=["s3", "s1"])] == [
            "a", "c",
        ]
        assert log_store.query(GROUP, streams=[]) == []

    def test_time_window_includes_start_and_excludes_end(self, log_store: LogStore) -> None:
        log_store.append([event("s", ts, str(ts)) for ts in (100, 199, 200, 299, 300)])
        window = log_store.query(GROUP, start_ms=200, end_ms=300)
        assert [s.event.timestamp_ms for s in window] == [200, 299]
        assert [s.event.timestamp_ms for s in log_store.query(GROUP, start_ms=299)] == [299, 300]
        assert [s.event.timestamp_ms for s in log_store.query(GROUP, end_ms=199)] == [100]

    def test_positions_page_through_events(self, log_store: LogStore) -> None:
        log_store.append([event("s", i, f"m{i}") for i in range(7)])
        log_store.append([event("other", 0, "x", group="/aws/lambda/other")])
        log_store.append([event("s", 7, "m7")])
        seen: list[str] = []
        cursor = 0
        while page := log_store.query(GROUP, after_position=cursor, limit=3):
            seen.extend(s.event.message for s in page)
            cursor = page[-1].position
        assert seen == [f"m{i}" for i in range(8)]

    def test_query_refuses_a_limit_below_one(self, log_store: LogStore) -> None:
        with pytest.raises(ValueError):
            log_store.query(GROUP, limit=0)

    def test_streams_aggregate_times_and_sort_by_name(
        self, log_store: LogStore, clock: FakeClock
    ) -> None:
        log_store.append([event("b", 50, "x"), event("a", 40, "x"), event("b", 10, "x")])
        clock.now_ms += 1000
        log_store.append([event("b", 30, "x"), event("ab", 5, "x", group="/aws/lambda/x")])
        infos = log_store.streams(GROUP)
        assert [(i.group, i.stream, i.first_event_ms, i.last_event_ms) for i in infos] == [
            (GROUP, "a", 40, 40),
            (GROUP, "b", 10, 50),
        ]
        assert infos[0].last_ingestion_ms == clock.now_ms - 1000
        assert infos[1].last_ingestion_ms == clock.now_ms

    def test_streams_filter_by_prefix(self, log_store: LogStore) -> None:
        names = ["2024/01/01/[$LATEST]a", "2024/01/01/[$LATEST]b", "2024/01/02/x", "2024_01"]
        log_store.append([event(name, 1, "m") for name in names])
        assert [i.stream for i in log_store.streams(GROUP, prefix="2024/01/01/")] == names[:2]
        assert [i.stream for i in log_store.streams(GROUP, prefix="2024/")] == names[:3]
        assert [i.stream for i in log_store.streams(GROUP, prefix="2024_")] == names[3:]
        assert log_store.streams(GROUP, prefix="2025") == []
        assert len(log_store.streams(GROUP, prefix="")) == 4

    def test_delete_group_forgets_its_events_and_never_reuses_positions(
        self, log_store: LogStore
    ) -> None:
        log_store.append([event("s", 1, "old"), event("s", 1, "kept", group="/aws/lambda/x")])
        last = max(s.position for s in log_store.query(GROUP))
        log_store.delete_group(GROUP)
        assert log_store.query(GROUP) == []
        assert log_store.streams(GROUP) == []
        assert [s.event.message for s in log_store.query("/aws/lambda/x")] == ["kept"]
        log_store.append([event("s", 2, "new")])
        assert [s.position > last for s in log_store.query(GROUP)] == [True]

    def test_concurrent_appends_all_land_in_order(self, log_store: LogStore) -> None:
        threads, batches = 8, 20

        def write(index: int) -> None:
            for batch in range(batches):
                log_store.append(
                    [event(f"s{index}", batch, f"{index}:{batch}:{k}") for k in range(5)]
                )

        run_threads(threads, write)
        stored = log_store.query(GROUP)
        assert len(stored) == threads * batches * 5
        assert len({s.position for s in stored}) == len(stored)
        for index in range(threads):
            mine = [s.event.message for s in stored if s.event.stream == f"s{index}"]
            assert mine == [f"{index}:{b}:{k}" for b in range(batches) for k in range(5)]
