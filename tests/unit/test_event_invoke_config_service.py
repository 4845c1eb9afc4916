"""The FunctionEventInvokeConfig service: AWS's validation and messages, Put replaces and
Update merges, the worker's cache follows every change."""

from __future__ import annotations

import pytest

from strato.domain.arns import FunctionRef, Scope
from strato.domain.errors import InvalidParameterValueException, ResourceNotFoundException
from strato.domain.event_invoke import Destinations
from strato.services.event_invoke_configs import (
    EventInvokeConfigCache,
    EventInvokeConfigChanges,
    EventInvokeConfigService,
)
from strato.store.memory_aliases import MemoryAliasStore
from strato.store.memory_event_invoke_configs import MemoryEventInvokeConfigStore
from strato.store.memory_functions import MemoryFunctionStore
from tests.support.store_contracts import make_alias, make_version

SCOPE = Scope("us-east-1", "000000000000")
QUEUE = "arn:aws:sqs:us-east-1:000000000000:failures"
OTHER = "arn:aws:lambda:us-east-1:000000000000:function:other"


@pytest.fixture
def cache() -> EventInvokeConfigCache:
    return EventInvokeConfigCache()


@pytest.fixture
def service(cache: EventInvokeConfigCache) -> EventInvokeConfigService:
    functions = MemoryFunctionStore()
    aliases = MemoryAliasStore(functions)
    for name in ("fn", "other"):
        functions.create_function(make_version(name))
    functions.publish_version(make_version("fn", version="1"))
    aliases.create_alias(make_alias("fn", "live"))
    return EventInvokeConfigService(MemoryEventInvokeConfigStore(functions), functions, aliases, cache)


def _message(error: pytest.ExceptionInfo[Exception]) -> str:
    return str(error.value)


def test_put_needs_a_setting(service: EventInvokeConfigService) -> None:
    with pytest.raises(InvalidParameterValueException) as error:
        service.put(FunctionRef("fn"), EventInvokeConfigChanges(), SCOPE)
    assert _message(error) == "You must specify at least one of error handling or destination setting."


@pytest.mark.parametrize("ref", [FunctionRef("missing"), FunctionRef("fn", "2"),
                                 FunctionRef("fn", "nosuchalias")])
def test_put_on_what_does_not_exist(service: EventInvokeConfigService, ref: FunctionRef) -> None:
    with pytest.raises(ResourceNotFoundException) as error:
        service.put(ref, EventInvokeConfigChanges(maximum_retry_attempts=1), SCOPE)
    assert _message(error) == "The function doesn't exist."


def test_put_replaces_and_update_merges(service: EventInvokeConfigService,
                                        cache: EventInvokeConfigCache) -> None:
    service.put(FunctionRef("fn"), EventInvokeConfigChanges(maximum_retry_attempts=1,
                                                            maximum_event_age_s=60), SCOPE)
    replaced = service.put(FunctionRef("fn"), EventInvokeConfigChanges(maximum_retry_attempts=0), SCOPE)
    assert (replaced.maximum_retry_attempts, replaced.maximum_event_age_s) == (0, None)
    merged = service.update(FunctionRef("fn"), EventInvokeConfigChanges(
        maximum_event_age_s=120, destinations_given=True, on_failure=QUEUE), SCOPE)
    assert (merged.maximum_retry_attempts, merged.maximum_event_age_s) == (0, 120)
    assert merged.destinations == Destinations(None, QUEUE)
    again = service.update(FunctionRef("fn"), EventInvokeConfigChanges(
        destinations_given=True, on_success=OTHER), SCOPE)
    assert again.destinations == Destinations(OTHER, QUEUE)
    cleared = service.update(FunctionRef("fn"), EventInvokeConfigChanges(
        destinations_given=True, on_failure=""), SCOPE)
    assert cleared.destinations == Destinations(OTHER, None)
    assert cache.get("fn", "$LATEST") == cleared
    assert service.get(FunctionRef("fn", "$LATEST"), SCOPE) == cleared


def test_configs_are_per_qualifier(service: EventInvokeConfigService, cache: EventInvokeConfigCache) -> None:
    for qualifier in (None, "1", "live"):
        service.put(FunctionRef("fn", qualifier), EventInvokeConfigChanges(maximum_retry_attempts=2), SCOPE)
    configs, marker = service.list_configs(FunctionRef("fn"), None, None, SCOPE)
    assert [c.qualifier for c in configs] == ["$LATEST", "1", "live"] and marker is None
    page, marker = service.list_configs(FunctionRef("fn"), None, 2, SCOPE)
    assert [c.qualifier for c in page] == ["$LATEST", "1"] and marker == "1"
    rest, marker = service.list_configs(FunctionRef("fn"), "1", 2, SCOPE)
    assert [c.qualifier for c in rest] == ["live"] and marker is None
    service.qualifier_deleted("fn", "live")
    assert cache.get("fn", "live") is None
    service.function_deleted("fn")
    assert cache.get("fn", "$LATEST") is None and cache.get("fn", "1") is None


def test_missing_configs_are_named_by_their_qualified_arn(service: EventInvokeConfigService) -> None:
    arn = "arn:aws:lambda:us-east-1:000000000000:function"
    for call, ref, qualifier in ((service.get, FunctionRef("fn"), "$LATEST"),
                                 (service.get, FunctionRef("fn", "1221"), "1221"),
                                 (service.delete, FunctionRef("missing"), "$LATEST")):
        with pytest.raises(ResourceNotFoundException) as error:
            call(ref, SCOPE)
        name = ref.name
        assert _message(error) == f"The function {arn}:{name}:{qualifier} doesn't have an EventInvokeConfig"
    with pytest.raises(ResourceNotFoundException) as error:
        service.update(FunctionRef("fn"), EventInvokeConfigChanges(maximum_retry_attempts=1), SCOPE)
    assert _message(error) == f"The function {arn}:fn:$LATEST doesn't have an EventInvokeConfig"
    with pytest.raises(ResourceNotFoundException) as error:
        service.update(FunctionRef("missing"), EventInvokeConfigChanges(maximum_retry_attempts=1), SCOPE)
    assert _message(error) == "The function doesn't exist."
    with pytest.raises(ResourceNotFoundException) as error:
        service.list_configs(FunctionRef("missing"), None, None, SCOPE)
    assert _message(error) == "The function doesn't exist."


@pytest.mark.parametrize(("success", "failure", "message"), [
    ("arn:aws:lambda:us-east-1:000000000000:function:doesnotexist", None,
     "The destination ARN arn:aws:lambda:us-east-1:000000000000:function:doesnotexist is invalid."),
    ("arn:aws:lambda:us-east-1:000000000000:function:fn", None,
     "You can't specify the function as a destination for itself."),
    ("arn:aws:iam:us-east-1:000000000000:function:fn", None,
     "The provided destination config DestinationConfig(onSuccess=OnSuccess("
     "destination=arn:aws:iam:us-east-1:000000000000:function:fn), onFailure=null) is invalid."),
    (None, "arn:aws:sns:us-east-1:000000000000:topic",
     "The destination ARN arn:aws:sns:us-east-1:000000000000:topic is invalid: strato delivers "
     "invocation records to Lambda functions and SQS queues only."),
])
def test_bad_destinations(service: EventInvokeConfigService, success: str | None,
                          failure: str | None, message: str) -> None:
    changes = EventInvokeConfigChanges(destinations_given=True, on_success=success, on_failure=failure)
    with pytest.raises(InvalidParameterValueException) as error:
        service.put(FunctionRef("fn"), changes, SCOPE)
    assert _message(error) == message


def test_a_destination_config_without_destinations_is_stored_empty(service: EventInvokeConfigService) -> None:
    config = service.put(FunctionRef("fn"), EventInvokeConfigChanges(destinations_given=True,
                                                                     on_success=""), SCOPE)
    assert config.destinations == Destinations()
    ok = service.put(FunctionRef("fn"), EventInvokeConfigChanges(
        destinations_given=True, on_success=OTHER, on_failure=QUEUE), SCOPE)
    assert ok.destinations == Destinations(OTHER, QUEUE)
