"""FunctionUrlService over in-memory stores: the URL directory follows every change (what
serving a URL reads instead of the database), and the rules the e2e tests cannot see."""

from __future__ import annotations

import pytest

from strato.domain.arns import FunctionRef, Scope
from strato.domain.errors import ResourceConflictException, ResourceNotFoundException
from strato.domain.function_urls import AuthType, Cors, FunctionUrlConfig, InvokeMode, is_url_id
from strato.domain.models import Alias
from strato.services.function_urls import FunctionUrlChanges, FunctionUrlService
from strato.services.url_directory import FakeUrlDirectory, UrlDirectory, UrlDirectoryCache
from strato.store.memory_aliases import MemoryAliasStore
from strato.store.memory_functions import MemoryFunctionStore
from strato.store.memory_urls import MemoryFunctionUrlConfigStore
from tests.support.store_contracts import make_version
from tests.support.url_store_contracts import make_url

SCOPE = Scope("us-east-1", "000000000000")


class World:
    def __init__(self) -> None:
        self.functions = MemoryFunctionStore()
        self.aliases = MemoryAliasStore(self.functions)
        self.store = MemoryFunctionUrlConfigStore()
        self.directory = UrlDirectoryCache()
        self.service = FunctionUrlService(self.store, self.functions, self.aliases,
                                          self.directory)
        self.functions.create_function(make_version("fn"))
        self.aliases.create_alias(Alias("fn", "live", "$LATEST", "r1"))

    def create(self, qualifier: str | None = None, **members: object) -> FunctionUrlConfig:
        return self.service.create(FunctionRef("fn", qualifier), AuthType.NONE,
                                   members.get("cors"), None, SCOPE)  # type: ignore[arg-type]


@pytest.fixture
def world() -> World:
    return World()


def test_the_directory_follows_create_update_and_delete(world: World) -> None:
    directory: UrlDirectory = world.directory
    created = world.create(cors=Cors(allow_origins=("*",)))
    assert is_url_id(created.url_id)
    assert created.invoke_mode is InvokeMode.BUFFERED
    assert directory.find(created.url_id) == created
    updated = world.service.update(FunctionRef("fn"), FunctionUrlChanges(
        auth_type=AuthType.AWS_IAM, invoke_mode=InvokeMode.RESPONSE_STREAM))
    assert updated.url_id == created.url_id and updated.cors == created.cors
    assert directory.find(created.url_id) == updated
    assert updated.auth_type is AuthType.AWS_IAM
    world.service.delete(FunctionRef("fn"))
    assert directory.find(created.url_id) is None


def test_refused_requests_change_neither_store_nor_directory(world: World) -> None:
    created = world.create()
    with pytest.raises(ResourceConflictException):
        world.create()
    with pytest.raises(ResourceNotFoundException, match="^Function does not exist$"):
        world.create("gone")
    with pytest.raises(ResourceNotFoundException):
        world.service.update(FunctionRef("fn", "live"), FunctionUrlChanges(AuthType.AWS_IAM))
    assert world.store.list_configs() == [created]
    assert world.directory.find(created.url_id) == created


def test_urls_go_with_their_alias_and_function(world: World) -> None:
    function_url, alias_url = world.create(), world.create("live")
    world.aliases.delete_alias("fn", "live")
    world.service.qualifier_deleted("fn", "live")
    assert world.directory.find(alias_url.url_id) is None
    assert world.store.list_configs() == [function_url]
    world.service.qualifier_deleted("fn", "1")  # a version: it has no URL
    world.service.function_deleted("fn")
    assert world.directory.find(function_url.url_id) is None
    assert world.store.list_configs() == []


def test_recover_fills_the_directory_and_drops_urls_of_what_is_gone(world: World) -> None:
    kept, kept_alias = make_url(), make_url(qualifier="live")
    gone_function, gone_alias = make_url("deleted"), make_url(qualifier="deleted-alias")
    for config in (kept, kept_alias, gone_function, gone_alias):
        world.store.create_config(config)
    world.service.recover()
    assert world.store.list_configs() == [kept, kept_alias]
    assert world.directory.find(kept.url_id) == kept
    assert world.directory.find(kept_alias.url_id) == kept_alias
    assert world.directory.find(gone_function.url_id) is None


def test_list_pages_after_the_marker(world: World) -> None:
    for alias in ("a", "b"):
        world.aliases.create_alias(Alias("fn", alias, "$LATEST", "r1"))
    made = [world.create(), world.create("a"), world.create("b"), world.create("live")]
    seen: list[FunctionUrlConfig] = []
    marker = None
    while True:
        page, marker = world.service.list_configs(FunctionRef("fn"), marker, 3 if not seen else 1)
        seen += page
        if marker is None:
            break
    assert seen == made
    with pytest.raises(ResourceNotFoundException, match="^Function does not exist$"):
        world.service.list_configs(FunctionRef("nope"), None, None)


def test_the_fake_directory_answers_what_it_was_given() -> None:
    config = make_url()
    fake: UrlDirectory = FakeUrlDirectory(config)
    assert fake.find(config.url_id) == config
    assert fake.find("x" * 32) is None
