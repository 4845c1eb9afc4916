"""The function service on in-memory stores and code store: Lambda's states, versions,
updates, deletion and the code's garbage collection."""

from __future__ import annotations

import pytest

from strato.domain.arns import FunctionRef
from strato.domain.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from strato.domain.models import LATEST, FunctionState, LastUpdateStatus
from strato.services.functions import ConfigurationChanges
from tests.support.control_plane import CHANGES, SCOPE, ControlPlane, package


def test_a_new_function_is_pending_until_its_code_is_unpacked() -> None:
    plane = ControlPlane()
    record = plane.function_service.create("fn", CHANGES, package(), SCOPE)
    assert record.state is FunctionState.PENDING and plane.changed == ["fn"]
    assert plane.code.files(record.code) == {}
    plane.settle()
    active = plane.function_service.get(FunctionRef("fn"), SCOPE)
    assert active.state is FunctionState.ACTIVE
    assert active.last_update_status is LastUpdateStatus.SUCCESSFUL
    assert plane.code.files(record.code) == {"bootstrap": b"#!/bin/sh\n"}
    entry = plane.registry.get("fn")
    assert entry is not None and entry.latest.is_ready


def test_code_that_cannot_be_prepared_fails_the_function() -> None:
    plane = ControlPlane()
    record = plane.function_service.create("fn", CHANGES, package(), SCOPE)
    plane.code.broken.add(record.code.sha256_hex)
    plane.settle()
    failed = plane.function_service.get(FunctionRef("fn"), SCOPE)
    assert failed.state is FunctionState.FAILED
    assert failed.state_reason_code == "InternalError"


def test_a_bad_package_is_refused_with_aws_error_and_nothing_is_stored() -> None:
    plane = ControlPlane()
    with pytest.raises(InvalidParameterValueException, match="Could not unzip"):
        plane.function_service.create("fn", CHANGES, b"not a zip", SCOPE)
    with pytest.raises(ResourceNotFoundException):
        plane.function_service.get(FunctionRef("fn"), SCOPE)


def test_a_second_create_conflicts() -> None:
    plane = ControlPlane()
    plane.function_service.create("fn", CHANGES, package(), SCOPE)
    with pytest.raises(ResourceConflictException, match="Function already exist: fn"):
        plane.function_service.create("fn", CHANGES, package(), SCOPE)


def test_publishing_twice_without_a_change_returns_the_same_version() -> None:
    plane = ControlPlane()
    plane.function_service.create("fn", CHANGES, package(), SCOPE)
    plane.settle()
    first = plane.function_service.publish(FunctionRef("fn"), None, None, None, SCOPE)
    again = plane.function_service.publish(FunctionRef("fn"), None, None, None, SCOPE)
    assert first.version == again.version == "1"
    plane.function_service.update_configuration(
        FunctionRef("fn"), ConfigurationChanges(timeout=30), None, SCOPE)
    with pytest.raises(ResourceConflictException):  # the update is in progress
        plane.function_service.publish(FunctionRef("fn"), None, None, None, SCOPE)
    plane.settle()
    second = plane.function_service.publish(FunctionRef("fn"), None, None, None, SCOPE)
    assert second.version == "2" and second.timeout == 30


def test_an_update_with_a_stale_revision_is_refused() -> None:
    plane = ControlPlane()
    plane.function_service.create("fn", CHANGES, package(), SCOPE)
    plane.settle()
    with pytest.raises(PreconditionFailedException):
        plane.function_service.update_configuration(
            FunctionRef("fn"), ConfigurationChanges(timeout=30), "stale", SCOPE)


def test_delete_announces_and_collects_unused_code() -> None:
    plane = ControlPlane()
    record = plane.function_service.create("fn", CHANGES, package(), SCOPE)
    plane.settle()
    plane.function_service.update_code(FunctionRef("fn"), package("#!/bin/sh\necho\n"), None,
                                       SCOPE)
    plane.settle()
    plane.function_service.delete(FunctionRef("fn"), SCOPE)
    assert plane.deleted == [("fn", None)] and plane.registry.get("fn") is None
    plane.settle()
    assert plane.code.files(record.code) == {}
    with pytest.raises(ResourceNotFoundException):
        plane.function_service.delete(FunctionRef("fn"), SCOPE)
    with pytest.raises(InvalidParameterValueException):
        plane.function_service.delete(FunctionRef("fn", LATEST), SCOPE)
