"""The alias and concurrency services on in-memory stores: AWS's rules and messages, and
that every change reaches the registry."""

from __future__ import annotations

import pytest

from strato.domain.arns import FunctionRef
from strato.domain.errors import (
    InvalidParameterValueException,
    ProvisionedConcurrencyConfigNotFoundException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from strato.services.concurrency import MIN_UNRESERVED, ProvisionedState
from strato.services.functions import FunctionService
from tests.support.control_plane import CHANGES, SCOPE, ControlPlane, package

FN = FunctionRef("fn")


def published(plane: ControlPlane, service: FunctionService | None = None) -> str:
    """Create ``fn``, settle it and publish a version; its number."""
    service = service or plane.function_service
    service.create("fn", CHANGES, package(), SCOPE)
    plane.settle()
    return service.publish(FN, None, None, None, SCOPE).version


def test_an_alias_points_at_a_version_and_reaches_the_registry() -> None:
    plane = ControlPlane()
    version = published(plane)
    alias = plane.alias_service.create(FN, "live", version, "d", None, SCOPE)
    entry = plane.registry.get("fn")
    assert entry is not None and entry.aliases["live"] == alias
    assert plane.function_service.get(FunctionRef("fn", "live"), SCOPE).version == version
    with pytest.raises(ResourceConflictException, match="Alias already exists"):
        plane.alias_service.create(FN, "live", version, None, None, SCOPE)


def test_an_alias_of_a_missing_function_or_version_is_not_found() -> None:
    plane = ControlPlane()
    with pytest.raises(ResourceNotFoundException, match="Function not found"):
        plane.alias_service.create(FN, "live", "1", None, None, SCOPE)
    published(plane)
    with pytest.raises(ResourceNotFoundException):
        plane.alias_service.create(FN, "live", "7", None, None, SCOPE)


def test_a_version_an_alias_routes_to_cannot_be_deleted() -> None:
    plane = ControlPlane()
    version = published(plane)
    plane.alias_service.create(FN, "live", version, None, None, SCOPE)
    with pytest.raises(ResourceConflictException, match=r"\[live\]"):
        plane.function_service.delete(FunctionRef("fn", version), SCOPE)
    plane.alias_service.delete(FN, "live")
    plane.function_service.delete(FunctionRef("fn", version), SCOPE)
    assert plane.deleted == [("fn", version)]


def test_reserved_concurrency_keeps_the_unreserved_minimum() -> None:
    plane = ControlPlane(account_limit=MIN_UNRESERVED + 50)
    published(plane)
    assert plane.concurrency_service.put_reserved(FN, 50, SCOPE) == 50
    entry = plane.registry.get("fn")
    assert entry is not None and entry.reserved_concurrency == 50
    assert plane.concurrency_service.unreserved() == MIN_UNRESERVED
    with pytest.raises(InvalidParameterValueException, match="below its minimum value"):
        plane.concurrency_service.put_reserved(FN, 51, SCOPE)
    plane.concurrency_service.delete_reserved(FN, SCOPE)
    assert plane.concurrency_service.get_reserved(FN, SCOPE) is None


def test_provisioned_concurrency_is_stored_and_read_back_with_the_pool_state() -> None:
    plane = ControlPlane()
    version = published(plane)
    ref = FunctionRef("fn", version)
    view = plane.concurrency_service.put_provisioned(ref, 2, SCOPE)
    assert view.config.requested == 2
    entry = plane.registry.get("fn")
    assert entry is not None and dict(entry.provisioned) == {version: 2}
    plane.pool_states[("fn", version)] = ProvisionedState(2, 1, "READY")
    assert plane.concurrency_service.get_provisioned(ref, SCOPE).state.available == 1
    with pytest.raises(InvalidParameterValueException):
        plane.concurrency_service.put_provisioned(FunctionRef("fn", "$LATEST"), 1, SCOPE)
    plane.concurrency_service.delete_provisioned(ref, SCOPE)
    with pytest.raises(ProvisionedConcurrencyConfigNotFoundException):
        plane.concurrency_service.get_provisioned(ref, SCOPE)
