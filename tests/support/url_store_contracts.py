"""The contract of ``FunctionUrlConfigStore`` (``strato.store.url_base``), run against every
backend: a backend's test class subclasses ``FunctionUrlConfigStoreContract`` and provides
the ``url_store`` fixture."""

from __future__ import annotations

import pytest

from strato.domain.function_urls import AuthType, Cors, FunctionUrlConfig, InvokeMode, new_url_id
from strato.errors import AlreadyExistsError, NotFoundError
from strato.store.url_base import FunctionUrlConfigStore

CREATED = "2024-05-01T12:00:00.250000Z"


def make_url(function_name: str = "fn", qualifier: str | None = None,
             **changes: object) -> FunctionUrlConfig:
    fields: dict[str, object] = {
        "url_id": new_url_id(), "function_name": function_name, "qualifier": qualifier,
        "auth_type": AuthType.NONE, "creation_time": CREATED, "last_modified_time": CREATED}
    fields.update(changes)
    return FunctionUrlConfig(**fields)  # type: ignore[arg-type]


class FunctionUrlConfigStoreContract:
    @pytest.fixture
    def url_store(self) -> FunctionUrlConfigStore:
        raise NotImplementedError("a backend's test class provides this fixture")

    def test_a_config_round_trips_with_every_field(self, url_store: FunctionUrlConfigStore) -> None:
        full = make_url(auth_type=AuthType.AWS_IAM, invoke_mode=InvokeMode.RESPONSE_STREAM,
                        cors=Cors(allow_credentials=True, allow_headers=("X-Custom",),
                                  allow_methods=("GET", "POST"),
                                  allow_origins=("https://example.com",),
                                  expose_headers=("X-Out",), max_age=600))
        url_store.create_config(full)
        bare = make_url(qualifier="live", cors=Cors())
        url_store.create_config(bare)
        assert url_store.get_config("fn", None) == full
        assert url_store.get_config("fn", "live") == bare
        assert url_store.get_config("fn", "other") is None
        assert url_store.get_config("other", None) is None

    def test_one_config_per_function_and_qualifier(self, url_store: FunctionUrlConfigStore) -> None:
        first = make_url()
        url_store.create_config(first)
        with pytest.raises(AlreadyExistsError):
            url_store.create_config(make_url())
        assert url_store.list_configs("fn") == [first]

    def test_update_replaces_the_config_and_needs_one(
            self, url_store: FunctionUrlConfigStore) -> None:
        with pytest.raises(NotFoundError):
            url_store.update_config(make_url())
        assert url_store.list_configs() == []
        created = make_url()
        url_store.create_config(created)
        updated = make_url(url_id=created.url_id, auth_type=AuthType.AWS_IAM,
                           last_modified_time="2024-05-02T00:00:00.000000Z")
        url_store.update_config(updated)
        assert url_store.get_config("fn", None) == updated

    def test_lists_by_function_then_unqualified_first(
            self, url_store: FunctionUrlConfigStore) -> None:
        made = [make_url("b", "zeta"), make_url("a", "live"), make_url("b"), make_url("a")]
        for config in made:
            url_store.create_config(config)
        assert [(c.function_name, c.qualifier) for c in url_store.list_configs()] == [
            ("a", None), ("a", "live"), ("b", None), ("b", "zeta")]
        assert [c.qualifier for c in url_store.list_configs("b")] == [None, "zeta"]
        assert url_store.list_configs("c") == []

    def test_deletes_one_or_every_config_of_a_function(
            self, url_store: FunctionUrlConfigStore) -> None:
        for config in (make_url(), make_url(qualifier="live"), make_url("other")):
            url_store.create_config(config)
        assert url_store.delete_config("fn", "live") is True
        assert url_store.delete_config("fn", "live") is False
        assert [c.qualifier for c in url_store.list_configs("fn")] == [None]
        url_store.delete_configs("fn")
        url_store.delete_configs("fn")
        assert [c.function_name for c in url_store.list_configs()] == ["other"]
