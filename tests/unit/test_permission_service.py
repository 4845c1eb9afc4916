"""The permission service on the in-memory stores: AWS's behaviour and errors, revisions, and
the authorizer's cache kept in step with the store."""

from __future__ import annotations

import pytest

from strato.domain.arns import FunctionRef, Scope
from strato.domain.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from strato.domain.models import FunctionVersion
from strato.domain.permissions import PermissionGrant, PrincipalKind, ResourcePolicy
from strato.services.authorization import ResourcePolicyCache
from strato.services.permissions import PermissionService
from strato.store.memory_functions import MemoryFunctionStore
from strato.store.memory_policies import MemoryPolicyStore
from tests.support.store_contracts import make_version

SCOPE = Scope("us-east-1", "000000000000")
ARN = "arn:aws:lambda:us-east-1:000000000000:function"
REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetPolicy API to retrieve the latest Revision Id"
)


class FunctionsWithVersions(MemoryFunctionStore):
    """The memory function store plus published versions (which strato cannot make yet)."""

    def __init__(self) -> None:
        super().__init__()
        self.published: dict[tuple[str, str], FunctionVersion] = {}

    def get_version(self, name: str, version: str) -> FunctionVersion | None:
        return self.published.get((name, version)) or super().get_version(name, version)


@pytest.fixture
def functions() -> FunctionsWithVersions:
    store = FunctionsWithVersions()
    store.create_function(make_version("fn"))
    store.published[("fn", "1")] = make_version("fn", version="1")
    return store


@pytest.fixture
def store() -> MemoryPolicyStore:
    return MemoryPolicyStore()


@pytest.fixture
def cache() -> ResourcePolicyCache:
    return ResourcePolicyCache()


@pytest.fixture
def service(store: MemoryPolicyStore, functions: FunctionsWithVersions, cache: ResourcePolicyCache) -> PermissionService:
    return PermissionService(store, functions, cache, alias_revision=lambda name, alias: "prod-revision" if alias == "prod" else None)


def grant(sid: str = "s3", principal: str = "s3.amazonaws.com", **members: object) -> PermissionGrant:
    return PermissionGrant(sid, "lambda:InvokeFunction", principal, **members)  # type: ignore[arg-type]


def not_found(excinfo: pytest.ExceptionInfo[ResourceNotFoundException]) -> str:
    assert excinfo.value.status == 404 and excinfo.value.message_key == "Message"
    return excinfo.value.message


def test_add_then_get_then_remove(service: PermissionService, store: MemoryPolicyStore,
                                  cache: ResourcePolicyCache) -> None:
    ref = FunctionRef("fn")
    statement = service.add_permission(ref, grant(source_arn="arn:aws:s3:::b"), None, SCOPE)
    assert statement.sid == "s3" and statement.principal.kind is PrincipalKind.SERVICE
    first = service.get_policy(ref)
    assert first.statements == (statement,)
    assert cache.get("fn", None) == first == store.get_policy("fn", None)
    second_statement = service.add_permission(ref, grant("acct", "111122223333"), None, SCOPE)
    second = service.get_policy(ref)
    assert second.statements == (statement, second_statement)
    assert second.revision_id != first.revision_id
    service.remove_permission(ref, "s3", None, SCOPE)
    third = service.get_policy(ref)
    assert third.statements == (second_statement,) and third.revision_id != second.revision_id
    assert cache.get("fn", None) == third
    service.remove_permission(ref, "acct", third.revision_id, SCOPE)
    with pytest.raises(ResourceNotFoundException) as gone:
        service.get_policy(ref)
    assert not_found(gone) == "The resource you requested does not exist."
    assert cache.get("fn", None) is None and store.list_policies() == []


def test_versions_and_aliases_have_their_own_policies(service: PermissionService) -> None:
    service.add_permission(FunctionRef("fn", "1"), grant("v"), None, SCOPE)
    service.add_permission(FunctionRef("fn", "prod"), grant("a"), None, SCOPE)
    assert [s.sid for s in service.get_policy(FunctionRef("fn", "1")).statements] == ["v"]
    assert [s.sid for s in service.get_policy(FunctionRef("fn", "prod")).statements] == ["a"]
    with pytest.raises(ResourceNotFoundException):
        service.get_policy(FunctionRef("fn"))
    with pytest.raises(ResourceNotFoundException):
        service.get_policy(FunctionRef("fn", "$LATEST"))


def test_latest_names_the_unqualified_policy_for_get_and_remove(service: PermissionService) -> None:
    service.add_permission(FunctionRef("fn"), grant(), None, SCOPE)
    assert service.get_policy(FunctionRef("fn", "$LATEST")) == service.get_policy(FunctionRef("fn"))
    service.remove_permission(FunctionRef("fn", "$LATEST"), "s3", None, SCOPE)
    with pytest.raises(ResourceNotFoundException):
        service.get_policy(FunctionRef("fn"))


def test_add_permission_errors_in_aws_words(service: PermissionService) -> None:
    with pytest.raises(ResourceNotFoundException) as missing:
        service.add_permission(FunctionRef("doesnotexist"), grant(), None, SCOPE)
    assert not_found(missing) == f"Function not found: {ARN}:doesnotexist"
    with pytest.raises(InvalidParameterValueException, match=r"^We currently do not support adding policies for \$LATEST\.$"):
        service.add_permission(FunctionRef("fn", "$LATEST"), grant(), None, SCOPE)
    with pytest.raises(ResourceNotFoundException) as version:
        service.add_permission(FunctionRef("fn", "42"), grant(), None, SCOPE)
    assert not_found(version) == f"Function not found: {ARN}:fn:42"
    with pytest.raises(ResourceNotFoundException) as alias:
        service.add_permission(FunctionRef("fn", "alias-doesnotexist"), grant(), None, SCOPE)
    assert not_found(alias) == f"Cannot find alias arn: {ARN}:fn:alias-doesnotexist"
    with pytest.raises(InvalidParameterValueException, match="The provided principal was invalid"):
        service.add_permission(FunctionRef("fn"), grant(principal="invalid.nonaws.com"), None, SCOPE)
    service.add_permission(FunctionRef("fn"), grant(), None, SCOPE)
    with pytest.raises(ResourceConflictException) as conflict:
        service.add_permission(FunctionRef("fn"), grant(principal="*"), None, SCOPE)
    assert conflict.value.message == (
        "The statement id (s3) provided already exists. Please provide a new statement id, or remove "
        "the existing statement."
    )


def test_remove_permission_errors_in_aws_words(service: PermissionService) -> None:
    with pytest.raises(ResourceNotFoundException) as missing:
        service.remove_permission(FunctionRef("doesnotexist"), "s", None, SCOPE)
    assert not_found(missing) == f"No policy found for: {ARN}:doesnotexist"
    with pytest.raises(ResourceNotFoundException) as version:
        service.remove_permission(FunctionRef("fn", "42"), "s", None, SCOPE)
    assert not_found(version) == f"No policy found for: {ARN}:fn:42"
    with pytest.raises(ResourceNotFoundException) as none:
        service.remove_permission(FunctionRef("fn"), "s", None, SCOPE)
    assert not_found(none) == "No policy is associated with the given resource."
    service.add_permission(FunctionRef("fn"), grant(), None, SCOPE)
    with pytest.raises(ResourceNotFoundException) as sid:
        service.remove_permission(FunctionRef("fn"), "non-existent", None, SCOPE)
    assert not_found(sid) == "Statement non-existent is not found in resource policy."


def test_revision_preconditions(service: PermissionService, functions: FunctionsWithVersions) -> None:
    ref = FunctionRef("fn")
    with pytest.raises(PreconditionFailedException, match=REVISION_MISMATCH):
        service.add_permission(ref, grant(), "not-the-revision", SCOPE)
    latest = functions.get_version("fn", "$LATEST")
    assert latest is not None
    # with no policy yet, the function's RevisionId is the one the policy shares on AWS
    service.add_permission(ref, grant("a"), latest.revision_id, SCOPE)
    current = service.get_policy(ref).revision_id
    with pytest.raises(PreconditionFailedException) as stale:
        service.add_permission(ref, grant("b"), latest.revision_id, SCOPE)
    assert stale.value.status == 412 and stale.value.message == REVISION_MISMATCH
    service.add_permission(ref, grant("b"), current, SCOPE)
    with pytest.raises(PreconditionFailedException):
        service.remove_permission(ref, "a", current, SCOPE)
    service.remove_permission(ref, "a", service.get_policy(ref).revision_id, SCOPE)
    assert [s.sid for s in service.get_policy(ref).statements] == ["b"]
    version = functions.get_version("fn", "1")
    assert version is not None
    service.add_permission(FunctionRef("fn", "1"), grant(), version.revision_id, SCOPE)


class StaleReads(MemoryPolicyStore):
    """A policy store whose reads answer ``stale`` once it is set: what a writer sees when it
    read before another writer committed."""

    def __init__(self) -> None:
        super().__init__()
        self.stale: ResourcePolicy | None = None

    def get_policy(self, function_name: str, qualifier: str | None) -> ResourcePolicy | None:
        return self.stale or super().get_policy(function_name, qualifier)


def test_a_concurrent_writer_surfaces_as_a_precondition_failure(functions: FunctionsWithVersions) -> None:
    store = StaleReads()
    service = PermissionService(store, functions, ResourcePolicyCache())
    service.add_permission(FunctionRef("fn"), grant("a"), None, SCOPE)
    store.stale = store.list_policies()[0]
    service.add_permission(FunctionRef("fn"), grant("b"), None, SCOPE)  # read "a", wrote "a b"
    with pytest.raises(PreconditionFailedException, match=REVISION_MISMATCH):
        service.add_permission(FunctionRef("fn"), grant("c"), None, SCOPE)  # read "a" again: stale
    with pytest.raises(PreconditionFailedException, match=REVISION_MISMATCH):
        service.remove_permission(FunctionRef("fn"), "a", None, SCOPE)
    store.stale = None
    assert [s.sid for s in service.get_policy(FunctionRef("fn")).statements] == ["a", "b"]


def test_function_deleted_drops_every_policy_and_the_cache(
    service: PermissionService, store: MemoryPolicyStore, cache: ResourcePolicyCache
) -> None:
    service.add_permission(FunctionRef("fn"), grant(), None, SCOPE)
    service.add_permission(FunctionRef("fn", "1"), grant(), None, SCOPE)
    service.function_deleted("fn")
    service.function_deleted("fn")  # idempotent
    assert store.list_policies() == []
    assert cache.get("fn", None) is None and cache.get("fn", "1") is None
