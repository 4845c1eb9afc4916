"""The contracts of ``strato.store.base``, written once and run against every backend.

A backend's test module subclasses ``FunctionStoreContract`` / ``PublishedVersionContract`` /
``AliasStoreContract`` / ``ProvisionedStoreContract`` / ``LogStoreContract`` in a ``Test...``
class and overrides the fixtures they use (``function_store``, ``alias_store``,
``provisioned_store``, ``log_store``). The alias and provisioned stores must be on the same
functions as ``function_store``: the contracts create and delete functions through it.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from strato.domain.logging_config import LogFormat, LoggingConfig
from strato.domain.models import (
    LATEST,
    Alias,
    CodeRef,
    FunctionState,
    FunctionVersion,
    LastUpdateStatus,
    ProvisionedConcurrencyConfig,
)
from strato.errors import AlreadyExistsError, NotFoundError, RevisionMismatchError
from strato.store.base import (
    AliasStore,
    FunctionStore,
    LogEvent,
    LogStore,
    ProvisionedConcurrencyStore,
)

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


def make_alias(function_name: str = "fn", name: str = "live", **changes: object) -> Alias:
    alias = Alias(function_name=function_name, name=name, function_version="1",
                  revision_id=str(uuid.uuid4()))
    return alias.replace(**changes)


def make_provisioned(function_name: str = "fn", qualifier: str = "1", requested: int = 2,
                     **changes: object) -> ProvisionedConcurrencyConfig:
    config = ProvisionedConcurrencyConfig(
        function_name=function_name, qualifier=qualifier, requested=requested,
        last_modified=datetime(2024, 2, 1, 8, 0, 0, 654321, tzinfo=UTC),
    )
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


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
            logging_config=LoggingConfig(LogFormat.JSON, "WARN", "DEBUG", "custom/group"),
        )
        function_store.create_function(record)
        assert function_store.get_version("everything", LATEST) == record

    def test_an_empty_environment_given_stays_given(self, function_store: FunctionStore) -> None:
        """``Environment: {"Variables": {}}`` is answered only for a function given one."""
        given = make_version("given", environment={}, environment_configured=True)
        function_store.create_function(given)
        function_store.create_function(make_version("never"))
        assert function_store.get_version("given", LATEST) == given
        never = function_store.get_version("never", LATEST)
        assert never is not None and not never.environment_configured

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

    # tags and reserved concurrency ----------------------------------------------------
    def test_tags_are_replaced_whole(self, function_store: FunctionStore) -> None:
        function_store.create_function(make_version("fn"))
        assert function_store.get_tags("fn") == {}
        function_store.put_tags("fn", {"team": "core", "empty": ""})
        assert function_store.get_tags("fn") == {"team": "core", "empty": ""}
        function_store.put_tags("fn", {"stage": "prod"})
        assert function_store.get_tags("fn") == {"stage": "prod"}
        function_store.get_tags("fn")["stage"] = "changed by the caller"
        assert function_store.get_tags("fn") == {"stage": "prod"}
        function_store.put_tags("fn", {})
        assert function_store.get_tags("fn") == {}

    def test_tags_of_an_unknown_function(self, function_store: FunctionStore) -> None:
        assert function_store.get_tags("ghost") == {}
        with pytest.raises(NotFoundError):
            function_store.put_tags("ghost", {"a": "b"})

    def test_reserved_concurrency_is_set_and_cleared(self, function_store: FunctionStore) -> None:
        for name in ("a", "b", "c"):
            function_store.create_function(make_version(name))
        assert function_store.get_reserved_concurrency("a") is None
        assert function_store.reserved_concurrency() == {}
        function_store.put_reserved_concurrency("a", 5)
        function_store.put_reserved_concurrency("c", 0)
        assert function_store.get_reserved_concurrency("a") == 5
        assert function_store.get_reserved_concurrency("c") == 0
        assert function_store.reserved_concurrency() == {"a": 5, "c": 0}
        function_store.put_reserved_concurrency("a", None)
        assert function_store.get_reserved_concurrency("a") is None
        assert function_store.reserved_concurrency() == {"c": 0}

    def test_reserved_concurrency_of_an_unknown_function_or_below_zero(
        self, function_store: FunctionStore
    ) -> None:
        assert function_store.get_reserved_concurrency("ghost") is None
        with pytest.raises(NotFoundError):
            function_store.put_reserved_concurrency("ghost", 1)
        function_store.create_function(make_version("fn"))
        with pytest.raises(ValueError):
            function_store.put_reserved_concurrency("fn", -1)
        assert function_store.get_reserved_concurrency("fn") is None

    def test_tags_and_reserved_concurrency_leave_the_versions_alone(
        self, function_store: FunctionStore
    ) -> None:
        record = make_version("fn")
        function_store.create_function(record)
        function_store.put_tags("fn", {"k": "v"})
        function_store.put_reserved_concurrency("fn", 3)
        assert function_store.get_version("fn", LATEST) == record


def publish(store: FunctionStore, name: str = "fn", **changes: object) -> FunctionVersion:
    """Publish the next version of ``name`` (a copy of its ``$LATEST`` with ``changes``)."""
    latest = store.get_version(name, LATEST)
    assert latest is not None
    record = latest.replace(version=str(store.last_version_number(name) + 1),
                            revision_id=str(uuid.uuid4()), **changes)
    store.publish_version(record)
    return record


def versions_of(store: FunctionStore, name: str = "fn") -> list[str]:
    return [record.version for record in store.list_versions(name, after=None, limit=1000)]


class PublishedVersionContract:
    @pytest.fixture
    def function_store(self) -> FunctionStore:
        raise NotImplementedError("a backend's test class provides this fixture")

    def test_a_published_version_reads_back_and_moves_the_last_number(
        self, function_store: FunctionStore
    ) -> None:
        latest = make_version("fn", environment={"K": "v"}, state=FunctionState.ACTIVE)
        function_store.create_function(latest)
        assert function_store.last_version_number("fn") == 0
        one = latest.replace(version="1", revision_id="r1", description="first")
        function_store.publish_version(one)
        assert function_store.get_version("fn", "1") == one
        assert function_store.get_version("fn", LATEST) == latest
        assert function_store.last_version_number("fn") == 1

    def test_publish_refuses_latest_and_what_is_not_a_positive_number(
        self, function_store: FunctionStore
    ) -> None:
        function_store.create_function(make_version("fn"))
        for version in (LATEST, "0", "01", "-1", "+1", "1.0", " 1", "one", "", "\u0661"):
            with pytest.raises(ValueError):
                function_store.publish_version(make_version("fn", version=version))
        assert versions_of(function_store) == [LATEST]
        assert function_store.last_version_number("fn") == 0

    def test_publish_or_last_number_of_an_unknown_function_raises_not_found(
        self, function_store: FunctionStore
    ) -> None:
        with pytest.raises(NotFoundError):
            function_store.publish_version(make_version("ghost", version="1"))
        with pytest.raises(NotFoundError):
            function_store.last_version_number("ghost")
        assert function_store.get_version("ghost", "1") is None

    def test_publish_takes_only_the_next_number(self, function_store: FunctionStore) -> None:
        function_store.create_function(make_version("fn"))
        with pytest.raises(AlreadyExistsError):
            function_store.publish_version(make_version("fn", version="2"))
        first = make_version("fn", version="1", description="first")
        function_store.publish_version(first)
        with pytest.raises(AlreadyExistsError):
            function_store.publish_version(make_version("fn", version="1", description="again"))
        assert function_store.get_version("fn", "1") == first
        assert versions_of(function_store) == [LATEST, "1"]

    def test_numbers_are_never_reused_after_a_delete(self, function_store: FunctionStore) -> None:
        function_store.create_function(make_version("fn"))
        for _ in range(3):
            publish(function_store)
        assert function_store.delete_version("fn", "3") is True
        assert function_store.delete_version("fn", "3") is False
        assert function_store.get_version("fn", "3") is None
        assert function_store.last_version_number("fn") == 3
        with pytest.raises(AlreadyExistsError):
            function_store.publish_version(make_version("fn", version="3"))
        assert publish(function_store).version == "4"
        assert versions_of(function_store) == [LATEST, "1", "2", "4"]

    def test_delete_version_refuses_latest(self, function_store: FunctionStore) -> None:
        function_store.create_function(make_version("fn"))
        with pytest.raises(ValueError):
            function_store.delete_version("fn", LATEST)
        assert function_store.get_version("fn", LATEST) is not None

    def test_delete_version_of_an_unknown_function_or_version_is_false(
        self, function_store: FunctionStore
    ) -> None:
        assert function_store.delete_version("ghost", "1") is False
        function_store.create_function(make_version("fn"))
        assert function_store.delete_version("fn", "1") is False

    def test_versions_list_latest_first_then_by_number(self, function_store: FunctionStore) -> None:
        function_store.create_function(make_version("fn"))
        function_store.create_function(make_version("other"))
        for _ in range(12):  # "10" sorts before "2" as text, not as a number
            publish(function_store)
        publish(function_store, "other")
        assert versions_of(function_store) == [LATEST, *(str(n) for n in range(1, 13))]
        assert versions_of(function_store, "other") == [LATEST, "1"]
        assert all(r.name == "fn" for r in function_store.list_versions("fn", after=None, limit=99))

    def test_versions_page_with_after(self, function_store: FunctionStore) -> None:
        function_store.create_function(make_version("fn"))
        for _ in range(11):
            publish(function_store)
        function_store.delete_version("fn", "5")
        pages: list[list[str]] = []
        after: str | None = None
        while page := function_store.list_versions("fn", after=after, limit=4):
            pages.append([record.version for record in page])
            after = page[-1].version
        assert pages == [[LATEST, "1", "2", "3"], ["4", "6", "7", "8"], ["9", "10", "11"]]
        assert [r.version for r in function_store.list_versions("fn", after=LATEST, limit=2)] == [
            "1", "2",
        ]
        assert [r.version for r in function_store.list_versions("fn", after="5", limit=2)] == [
            "6", "7",
        ]
        assert function_store.list_versions("fn", after="11", limit=5) == []

    def test_list_versions_of_an_unknown_function_is_empty(
        self, function_store: FunctionStore
    ) -> None:
        assert function_store.list_versions("ghost", after=None, limit=10) == []

    def test_list_versions_refuses_a_bad_limit_or_cursor(self, function_store: FunctionStore) -> None:
        function_store.create_function(make_version("fn"))
        with pytest.raises(ValueError):
            function_store.list_versions("fn", after=None, limit=0)
        with pytest.raises(ValueError):
            function_store.list_versions("fn", after="not-a-version", limit=5)

    def test_published_versions_count_as_code_references(
        self, function_store: FunctionStore
    ) -> None:
        latest = make_version("fn")
        function_store.create_function(latest)
        publish(function_store)
        function_store.put_version(
            latest.replace(code=CodeRef(SHA_B, 1), revision_id="r2"),
            expected_revision=latest.revision_id,
        )
        assert function_store.code_references() == {SHA_A, SHA_B}
        function_store.delete_version("fn", "1")
        assert function_store.code_references() == {SHA_B}

    def test_deleting_the_function_deletes_versions_tags_and_reserved_concurrency(
        self, function_store: FunctionStore
    ) -> None:
        function_store.create_function(make_version("fn"))
        function_store.create_function(make_version("kept"))
        publish(function_store)
        publish(function_store)
        function_store.put_tags("fn", {"k": "v"})
        function_store.put_reserved_concurrency("fn", 7)
        function_store.put_reserved_concurrency("kept", 1)
        assert function_store.delete_function("fn") is True
        assert function_store.get_version("fn", "1") is None
        assert function_store.list_versions("fn", after=None, limit=10) == []
        assert function_store.get_tags("fn") == {}
        assert function_store.get_reserved_concurrency("fn") is None
        assert function_store.reserved_concurrency() == {"kept": 1}
        function_store.create_function(make_version("fn"))  # a new function of the same name
        assert function_store.last_version_number("fn") == 0
        assert versions_of(function_store) == [LATEST]
        assert function_store.get_tags("fn") == {}
        assert function_store.get_reserved_concurrency("fn") is None

    def test_concurrent_publishes_of_one_number_have_one_winner(
        self, function_store: FunctionStore
    ) -> None:
        function_store.create_function(make_version("fn"))
        winners: list[int] = []

        def race(index: int) -> None:
            try:
                function_store.publish_version(
                    make_version("fn", version="1", description=str(index))
                )
            except AlreadyExistsError:
                return
            winners.append(index)

        run_threads(8, race)
        assert len(winners) == 1
        stored = function_store.get_version("fn", "1")
        assert stored is not None and stored.description == str(winners[0])
        assert function_store.last_version_number("fn") == 1

    def test_concurrent_publishers_get_distinct_consecutive_numbers(
        self, function_store: FunctionStore
    ) -> None:
        function_store.create_function(make_version("fn"))
        threads, each = 8, 4
        won: dict[int, str] = {}  # number -> the publisher that got it

        def publisher(index: int) -> None:
            for attempt in range(each):
                mine = f"{index}/{attempt}"
                while True:
                    number = function_store.last_version_number("fn") + 1
                    try:
                        function_store.publish_version(
                            make_version("fn", version=str(number), description=mine)
                        )
                    except AlreadyExistsError:
                        continue
                    assert number not in won
                    won[number] = mine
                    break

        run_threads(threads, publisher)
        assert sorted(won) == list(range(1, threads * each + 1))
        assert function_store.last_version_number("fn") == threads * each
        for number, description in won.items():
            stored = function_store.get_version("fn", str(number))
            assert stored is not None and stored.description == description


class AliasStoreContract:
    @pytest.fixture
    def function_store(self) -> FunctionStore:
        raise NotImplementedError("a backend's test class provides this fixture")

    @pytest.fixture
    def alias_store(self) -> AliasStore:
        raise NotImplementedError("a backend's test class provides this fixture")

    def test_an_alias_round_trips_with_every_field(
        self, function_store: FunctionStore, alias_store: AliasStore
    ) -> None:
        function_store.create_function(make_version("fn"))
        alias = make_alias("fn", "live", function_version="3", description="blue/green",
                           additional_weights={"4": 0.1})
        alias_store.create_alias(alias)
        stored = alias_store.get_alias("fn", "live")
        assert stored == alias
        assert stored is not None and dict(stored.additional_weights) == {"4": 0.1}
        plain = make_alias("fn", "plain", function_version=LATEST)
        alias_store.create_alias(plain)
        assert alias_store.get_alias("fn", "plain") == plain

    def test_get_and_list_of_unknown_aliases(
        self, function_store: FunctionStore, alias_store: AliasStore
    ) -> None:
        assert alias_store.get_alias("ghost", "live") is None
        assert alias_store.list_aliases("ghost") == []
        function_store.create_function(make_version("fn"))
        assert alias_store.get_alias("fn", "live") is None
        assert alias_store.list_aliases("fn") == []

    def test_aliases_list_by_name_per_function(
        self, function_store: FunctionStore, alias_store: AliasStore
    ) -> None:
        function_store.create_function(make_version("fn"))
        function_store.create_function(make_version("other"))
        for name in ("prod", "beta", "dev"):
            alias_store.create_alias(make_alias("fn", name))
        alias_store.create_alias(make_alias("other", "alpha"))
        assert [a.name for a in alias_store.list_aliases("fn")] == ["beta", "dev", "prod"]
        assert [a.name for a in alias_store.list_aliases("other")] == ["alpha"]

    def test_creating_an_existing_alias_raises_and_keeps_the_first(
        self, function_store: FunctionStore, alias_store: AliasStore
    ) -> None:
        function_store.create_function(make_version("fn"))
        first = make_alias("fn", "live", description="first")
        alias_store.create_alias(first)
        with pytest.raises(AlreadyExistsError):
            alias_store.create_alias(make_alias("fn", "live", description="second"))
        assert alias_store.get_alias("fn", "live") == first

    def test_an_alias_of_an_unknown_function_raises_not_found(
        self, function_store: FunctionStore, alias_store: AliasStore
    ) -> None:
        with pytest.raises(NotFoundError):
            alias_store.create_alias(make_alias("ghost", "live"))
        assert alias_store.get_alias("ghost", "live") is None

    def test_put_with_the_stored_revision_replaces_the_alias(
        self, function_store: FunctionStore, alias_store: AliasStore
    ) -> None:
        function_store.create_function(make_version("fn"))
        old = make_alias("fn", "live")
        alias_store.create_alias(old)
        new = old.replace(function_version="2", additional_weights={"3": 0.5}, revision_id="r2")
        alias_store.put_alias(new, expected_revision=old.revision_id)
        assert alias_store.get_alias("fn", "live") == new

    def test_put_with_a_stale_revision_raises_and_changes_nothing(
        self, function_store: FunctionStore, alias_store: AliasStore
    ) -> None:
        function_store.create_function(make_version("fn"))
        old = make_alias("fn", "live")
        alias_store.create_alias(old)
        with pytest.raises(RevisionMismatchError):
            alias_store.put_alias(old.replace(description="lost", revision_id="r3"),
                                  expected_revision="stale")
        assert alias_store.get_alias("fn", "live") == old

    def test_put_of_an_unknown_alias_raises_not_found(
        self, function_store: FunctionStore, alias_store: AliasStore
    ) -> None:
        with pytest.raises(NotFoundError):
            alias_store.put_alias(make_alias("ghost", "live"), expected_revision="any")
        function_store.create_function(make_version("fn"))
        with pytest.raises(NotFoundError):
            alias_store.put_alias(make_alias("fn", "live"), expected_revision="any")
        assert alias_store.get_alias("fn", "live") is None

    def test_delete_alias(self, function_store: FunctionStore, alias_store: AliasStore) -> None:
        function_store.create_function(make_version("fn"))
        alias_store.create_alias(make_alias("fn", "live"))
        alias_store.create_alias(make_alias("fn", "kept"))
        assert alias_store.delete_alias("fn", "live") is True
        assert alias_store.delete_alias("fn", "live") is False
        assert alias_store.delete_alias("ghost", "live") is False
        assert [a.name for a in alias_store.list_aliases("fn")] == ["kept"]
        alias_store.create_alias(make_alias("fn", "live"))  # the name is free again

    def test_deleting_the_function_deletes_its_aliases(
        self, function_store: FunctionStore, alias_store: AliasStore
    ) -> None:
        function_store.create_function(make_version("fn"))
        function_store.create_function(make_version("other"))
        alias_store.create_alias(make_alias("fn", "live"))
        alias_store.create_alias(make_alias("other", "live"))
        function_store.delete_function("fn")
        assert alias_store.get_alias("fn", "live") is None
        assert alias_store.list_aliases("fn") == []
        with pytest.raises(NotFoundError):
            alias_store.create_alias(make_alias("fn", "live"))
        function_store.create_function(make_version("fn"))  # a new function of the same name
        assert alias_store.list_aliases("fn") == []
        assert [a.name for a in alias_store.list_aliases("other")] == ["live"]

    def test_concurrent_compare_and_swap_loses_no_update(
        self, function_store: FunctionStore, alias_store: AliasStore
    ) -> None:
        function_store.create_function(make_version("fn"))
        alias_store.create_alias(make_alias("fn", "counter", description="0"))
        threads, increments = 8, 20

        def increment(_: int) -> None:
            done = 0
            while done < increments:
                current = alias_store.get_alias("fn", "counter")
                assert current is not None
                updated = current.replace(description=str(int(current.description) + 1),
                                          revision_id=str(uuid.uuid4()))
                try:
                    alias_store.put_alias(updated, expected_revision=current.revision_id)
                except RevisionMismatchError:
                    continue
                done += 1

        run_threads(threads, increment)
        final = alias_store.get_alias("fn", "counter")
        assert final is not None and final.description == str(threads * increments)

    def test_concurrent_creates_of_one_alias_have_one_winner(
        self, function_store: FunctionStore, alias_store: AliasStore
    ) -> None:
        function_store.create_function(make_version("fn"))
        winners: list[int] = []

        def create(index: int) -> None:
            try:
                alias_store.create_alias(make_alias("fn", "race", description=str(index)))
            except AlreadyExistsError:
                return
            winners.append(index)

        run_threads(8, create)
        assert len(winners) == 1
        stored = alias_store.get_alias("fn", "race")
        assert stored is not None and stored.description == str(winners[0])


class ProvisionedStoreContract:
    @pytest.fixture
    def function_store(self) -> FunctionStore:
        raise NotImplementedError("a backend's test class provides this fixture")

    @pytest.fixture
    def provisioned_store(self) -> ProvisionedConcurrencyStore:
        raise NotImplementedError("a backend's test class provides this fixture")

    def test_a_configuration_round_trips_and_keeps_its_instant(
        self, function_store: FunctionStore, provisioned_store: ProvisionedConcurrencyStore
    ) -> None:
        function_store.create_function(make_version("fn"))
        moment = datetime(2024, 6, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=-5)))
        config = make_provisioned("fn", "live", 10, last_modified=moment)
        provisioned_store.put_provisioned(config)
        stored = provisioned_store.get_provisioned("fn", "live")
        assert stored == config
        assert stored is not None and stored.last_modified.utcoffset() is not None

    def test_put_replaces_the_configuration_of_a_qualifier(
        self, function_store: FunctionStore, provisioned_store: ProvisionedConcurrencyStore
    ) -> None:
        function_store.create_function(make_version("fn"))
        provisioned_store.put_provisioned(make_provisioned("fn", "1", 2))
        later = make_provisioned("fn", "1", 5, last_modified=datetime(2025, 1, 1, tzinfo=UTC))
        provisioned_store.put_provisioned(later)
        assert provisioned_store.get_provisioned("fn", "1") == later
        assert provisioned_store.list_provisioned("fn") == [later]

    def test_put_of_an_unknown_function_raises_not_found(
        self, provisioned_store: ProvisionedConcurrencyStore
    ) -> None:
        with pytest.raises(NotFoundError):
            provisioned_store.put_provisioned(make_provisioned("ghost"))
        assert provisioned_store.get_provisioned("ghost", "1") is None
        assert provisioned_store.list_provisioned() == []

    def test_list_by_function_then_qualifier(
        self, function_store: FunctionStore, provisioned_store: ProvisionedConcurrencyStore
    ) -> None:
        for name in ("b", "a"):
            function_store.create_function(make_version(name))
        for name, qualifier in (("b", "live"), ("a", "2"), ("b", "1"), ("a", "10")):
            provisioned_store.put_provisioned(make_provisioned(name, qualifier))
        assert [(c.function_name, c.qualifier) for c in provisioned_store.list_provisioned()] == [
            ("a", "10"), ("a", "2"), ("b", "1"), ("b", "live"),
        ]
        assert [c.qualifier for c in provisioned_store.list_provisioned("b")] == ["1", "live"]
        assert provisioned_store.list_provisioned("ghost") == []

    def test_delete_provisioned(
        self, function_store: FunctionStore, provisioned_store: ProvisionedConcurrencyStore
    ) -> None:
        function_store.create_function(make_version("fn"))
        provisioned_store.put_provisioned(make_provisioned("fn", "1"))
        provisioned_store.put_provisioned(make_provisioned("fn", "live"))
        assert provisioned_store.delete_provisioned("fn", "1") is True
        assert provisioned_store.delete_provisioned("fn", "1") is False
        assert provisioned_store.delete_provisioned("ghost", "1") is False
        assert provisioned_store.get_provisioned("fn", "1") is None
        assert [c.qualifier for c in provisioned_store.list_provisioned()] == ["live"]

    def test_deleting_the_function_deletes_its_configurations(
        self, function_store: FunctionStore, provisioned_store: ProvisionedConcurrencyStore
    ) -> None:
        function_store.create_function(make_version("fn"))
        function_store.create_function(make_version("other"))
        provisioned_store.put_provisioned(make_provisioned("fn", "1"))
        provisioned_store.put_provisioned(make_provisioned("fn", "live"))
        kept = make_provisioned("other", "1")
        provisioned_store.put_provisioned(kept)
        function_store.delete_function("fn")
        assert provisioned_store.get_provisioned("fn", "1") is None
        assert provisioned_store.list_provisioned() == [kept]
        function_store.create_function(make_version("fn"))  # a new function of the same name
        assert provisioned_store.list_provisioned("fn") == []


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

    def test_group_bytes_count_utf8_bytes_of_one_group(self, log_store: LogStore) -> None:
        assert log_store.group_bytes(GROUP) == 0
        log_store.append([event("s", 1, "abc"), event("s", 2, "é€"),
                          event("s", 1, "other", group="/aws/lambda/x")])
        assert log_store.group_bytes(GROUP) == 3 + 2 + 3
        assert log_store.group_bytes("/aws/lambda/x") == 5

    def test_delete_oldest_deletes_from_the_oldest_until_enough(self, log_store: LogStore) -> None:
        log_store.append([event("s1", 9, "a" * 10), event("s2", 1, "b" * 10),
                          event("s", 1, "kept", group="/aws/lambda/x"), event("s1", 5, "c" * 10)])
        assert log_store.delete_oldest(GROUP, 15) == 20
        assert [s.event.message for s in log_store.query(GROUP)] == ["c" * 10]
        assert log_store.group_bytes(GROUP) == 10
        assert log_store.delete_oldest(GROUP, 100) == 10
        assert log_store.delete_oldest(GROUP, 100) == 0
        assert [s.event.message for s in log_store.query("/aws/lambda/x")] == ["kept"]

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
