"""The event source mapping operations of the Lambda API: parameters in, output dicts out.

Create/Get/List/Update/DeleteEventSourceMapping, run on the control-plane thread like every
operation of ``LambdaOperations``: the application adds ``table`` to that table. Only
translation between the wire's members and ``EventSourceMappingService`` lives here.
"""

from __future__ import annotations

from typing import Any

from strato.api.lambda_api import CallContext, Operation, Params
from strato.api.render import event_source_mapping_configuration
from strato.domain.arns import Scope, resolve_function_name
from strato.services.event_source_mappings import EventSourceMappingService, MappingChanges

#: Members of the request that only other kinds of event source take (streams, Kafka, MQ,
#: DocumentDB) or that strato's SQS pollers do not offer.
_NOT_FOR_SQS = (
    "DestinationConfig", "StartingPosition", "StartingPositionTimestamp",
    "ParallelizationFactor", "MaximumRecordAgeInSeconds", "BisectBatchOnFunctionError",
    "MaximumRetryAttempts", "TumblingWindowInSeconds", "Topics", "Queues",
    "SourceAccessConfigurations", "SelfManagedEventSource",
    "AmazonManagedKafkaEventSourceConfig", "SelfManagedKafkaEventSourceConfig",
    "DocumentDBEventSourceConfig", "ProvisionedPollerConfig",
)


def _changes(params: Params, scope: Scope) -> MappingChanges:
    name = params.get("FunctionName")
    function = resolve_function_name(name, scope) if name is not None else None
    scaling = params.get("ScalingConfig")
    criteria = params.get("FilterCriteria")
    patterns = None
    if criteria is not None:
        patterns = tuple(f.get("Pattern", "") for f in criteria.get("Filters") or ())
    response_types = params.get("FunctionResponseTypes")
    return MappingChanges(
        function=function,
        enabled=params.get("Enabled"),
        batch_size=params.get("BatchSize"),
        maximum_batching_window_s=params.get("MaximumBatchingWindowInSeconds"),
        maximum_concurrency=(scaling or {}).get("MaximumConcurrency"),
        clear_scaling=scaling is not None and scaling.get("MaximumConcurrency") is None,
        filter_patterns=patterns,
        function_response_types=None if response_types is None else tuple(response_types),
        unsupported=tuple(m for m in _NOT_FOR_SQS if params.get(m) is not None),
    )


class MappingOperations:
    def __init__(self, mappings: EventSourceMappingService) -> None:
        self._mappings = mappings
        self.table: dict[str, Operation] = {
            "CreateEventSourceMapping": self.create,
            "GetEventSourceMapping": self.get,
            "ListEventSourceMappings": self.list,
            "UpdateEventSourceMapping": self.update,
            "DeleteEventSourceMapping": self.delete,
        }

    def create(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        mapping = self._mappings.create(params.get("EventSourceArn"), _changes(params, ctx.scope),
                                        ctx.scope)
        return event_source_mapping_configuration(mapping, ctx.scope)

    def get(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        return event_source_mapping_configuration(self._mappings.get(params["UUID"]), ctx.scope)

    def list(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        name = params.get("FunctionName")
        function = resolve_function_name(name, ctx.scope) if name is not None else None
        mappings, marker = self._mappings.list_mappings(
            function, params.get("EventSourceArn"), params.get("Marker"), params.get("MaxItems"))
        output: dict[str, Any] = {
            "EventSourceMappings": [event_source_mapping_configuration(m, ctx.scope)
                                    for m in mappings]
        }
        if marker:
            output["NextMarker"] = marker
        return output

    def update(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        mapping = self._mappings.update(params["UUID"], _changes(params, ctx.scope), ctx.scope)
        return event_source_mapping_configuration(mapping, ctx.scope)

    def delete(self, params: Params, ctx: CallContext) -> dict[str, Any]:
        return event_source_mapping_configuration(self._mappings.delete(params["UUID"]), ctx.scope)
