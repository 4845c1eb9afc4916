"""The FunctionEventInvokeConfig operations of the Lambda API: typed parameters in, output
dicts out, run on the control-plane thread like ``lambda_api``'s (whose table they join)."""

from __future__ import annotations

from typing import Any

from strato.api.lambda_api import CallContext, Operation, Params
from strato.domain.arns import FunctionRef, resolve_function_name
from strato.domain.event_invoke import EventInvokeConfig
from strato.services.event_invoke_configs import EventInvokeConfigChanges, EventInvokeConfigService


def event_invoke_config(config: EventInvokeConfig, ctx: CallContext) -> dict[str, Any]:
    """``FunctionEventInvokeConfig`` as AWS answers it: the qualified ARN, both destinations
    (``{}`` when unset) and only the limits that were set."""
    destinations = config.destinations
    output: dict[str, Any] = {
        "LastModified": config.last_modified,
        "FunctionArn": ctx.scope.function_arn(config.function_name, config.qualifier),
        "DestinationConfig": {
            "OnSuccess": {"Destination": destinations.on_success} if destinations.on_success else {},
            "OnFailure": {"Destination": destinations.on_failure} if destinations.on_failure else {},
        },
    }
    if config.maximum_retry_attempts is not None:
        output["MaximumRetryAttempts"] = config.maximum_retry_attempts
    if config.maximum_event_age_s is not None:
        output["MaximumEventAgeInSeconds"] = config.maximum_event_age_s
    return output


def _changes(params: Params) -> EventInvokeConfigChanges:
    destinations = params.get("DestinationConfig")
    on_success = on_failure = None
    if destinations is not None:
        success, failure = destinations.get("OnSuccess"), destinations.get("OnFailure")
        on_success = None if success is None else success.get("Destination") or ""
        on_failure = None if failure is None else failure.get("Destination") or ""
    return EventInvokeConfigChanges(
        maximum_retry_attempts=params.get("MaximumRetryAttempts"),
        maximum_event_age_s=params.get("MaximumEventAgeInSeconds"),
        destinations_given=destinations is not None,
        on_success=on_success,
        on_failure=on_failure,
    )


class EventInvokeConfigOperations:
    def __init__(self, service: EventInvokeConfigService) -> None:
        self._service = service
        self.table: dict[str, Operation] = {
            "PutFunctionEventInvokeConfig": self.put,
            "UpdateFunctionEventInvokeConfig": self.update,
            "GetFunctionEventInvokeConfig": self.get,
            "DeleteFunctionEventInvokeConfig": self.delete,
            "ListFunctionEventInvokeConfigs": self.list_configs,
        }

    @staticmethod
    def _ref(params: Params, ctx: CallContext) -> FunctionRef:
        return resolve_function_name(params["FunctionName"], ctx.scope, params.get("Qualifier"))

    def put(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        config = self._service.put(self._ref(params, ctx), _changes(params), ctx.scope)
        return event_invoke_config(config, ctx)

    def update(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        config = self._service.update(self._ref(params, ctx), _changes(params), ctx.scope)
        return event_invoke_config(config, ctx)

    def get(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        return event_invoke_config(self._service.get(self._ref(params, ctx), ctx.scope), ctx)

    def delete(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        self._service.delete(self._ref(params, ctx), ctx.scope)
        return {}

    def list_configs(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        ref = resolve_function_name(params["FunctionName"], ctx.scope)
        configs, marker = self._service.list_configs(
            FunctionRef(ref.name), params.get("Marker"), params.get("MaxItems"), ctx.scope)
        output: dict[str, Any] = {
            "FunctionEventInvokeConfigs": [event_invoke_config(c, ctx) for c in configs]}
        if marker:
            output["NextMarker"] = marker
        return output
