"""The contract of ``EventInvokeConfigStore`` (``strato.store.base``), run against every
backend: a backend's test class subclasses ``EventInvokeConfigStoreContract`` and provides the
``config_store`` and ``function_store`` fixtures (the configurations' functions live there)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from strato.domain.event_invoke import Destinations, EventInvokeConfig
from strato.errors import NotFoundError
from strato.store.base import EventInvokeConfigStore, FunctionStore
from tests.support.store_contracts import make_version

WHEN = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)
QUEUE = "arn:aws:sqs:us-east-1:000000000000:failures"
TARGET = "arn:aws:lambda:us-east-1:000000000000:function:other"


def make_config(function_name: str = "fn", qualifier: str = "$LATEST",
                **changes: object) -> EventInvokeConfig:
    return EventInvokeConfig(function_name, qualifier, WHEN).replace(**changes)


class EventInvokeConfigStoreContract:
    @pytest.fixture
    def config_store(self) -> EventInvokeConfigStore:
        raise NotImplementedError("a backend's test class provides this fixture")

    @pytest.fixture
    def function_store(self) -> FunctionStore:
        raise NotImplementedError("a backend's test class provides this fixture")

    def test_a_config_round_trips_with_every_field(
            self, config_store: EventInvokeConfigStore, function_store: FunctionStore) -> None:
        function_store.create_function(make_version("fn"))
        full = make_config(maximum_retry_attempts=0, maximum_event_age_s=60,
                           destinations=Destinations(TARGET, QUEUE))
        config_store.put_config(full)
        assert config_store.get_config("fn", "$LATEST") == full
        bare = make_config(qualifier="live")
        config_store.put_config(bare)
        assert config_store.get_config("fn", "live") == bare
        assert config_store.get_config("fn", "1") is None

    def test_put_replaces_the_config_of_its_qualifier(
            self, config_store: EventInvokeConfigStore, function_store: FunctionStore) -> None:
        function_store.create_function(make_version("fn"))
        config_store.put_config(make_config(maximum_retry_attempts=1))
        replaced = make_config(maximum_event_age_s=120)
        config_store.put_config(replaced)
        assert config_store.get_config("fn", "$LATEST") == replaced
        assert config_store.list_configs("fn") == [replaced]

    def test_list_by_function_then_qualifier(
            self, config_store: EventInvokeConfigStore, function_store: FunctionStore) -> None:
        for name in ("b", "a"):
            function_store.create_function(make_version(name))
        for name, qualifier in (("b", "2"), ("a", "live"), ("b", "$LATEST"), ("a", "1")):
            config_store.put_config(make_config(name, qualifier))
        assert [(c.function_name, c.qualifier) for c in config_store.list_configs()] == [
            ("a", "1"), ("a", "live"), ("b", "$LATEST"), ("b", "2")]
        assert [c.qualifier for c in config_store.list_configs("b")] == ["$LATEST", "2"]
        assert config_store.list_configs("missing") == []

    def test_delete_one_and_all(
            self, config_store: EventInvokeConfigStore, function_store: FunctionStore) -> None:
        function_store.create_function(make_version("fn"))
        config_store.put_config(make_config())
        config_store.put_config(make_config(qualifier="1"))
        assert config_store.delete_config("fn", "1") is True
        assert config_store.delete_config("fn", "1") is False
        config_store.delete_configs("fn")
        config_store.delete_configs("fn")
        assert config_store.list_configs("fn") == []

    def test_a_config_of_a_missing_function_is_refused(
            self, config_store: EventInvokeConfigStore) -> None:
        with pytest.raises(NotFoundError):
            config_store.put_config(make_config("missing"))
