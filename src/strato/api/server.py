"""The API endpoint: one HTTP handler in front of the Lambda API, CloudWatch Logs' subset, and
strato's own routes (``/_strato/…``: health, code downloads).

Invoke has its own path through this module (no routing table, no thread hop): the function is
resolved in memory and the invocation handed to the pool on the event loop's thread. Every
other Lambda operation is routed with botocore's model, parsed, validated, and run on the
single control-plane thread; its result is serialised back on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any
from urllib.parse import parse_qs, unquote

import botocore.session
from botocore.model import OperationModel

from strato.api import rest_json
from strato.api.http import Request, Responder
from strato.api.lambda_api import CallContext, LambdaOperations
from strato.api.routing import Router
from strato.api.validation import validate
from strato.domain import limits
from strato.domain.arns import Scope
from strato.domain.errors import (
    LambdaApiError,
    RequestEntityTooLargeException,
    ServiceException,
    UnsupportedOperationException,
    ValidationException,
)
from strato.scheduler.invocation import InvocationResult
from strato.services.invocations import DRY_RUN, InvocationService

log = logging.getLogger(__name__)

_INVOKE_PATH = re.compile(r"/2015-03-31/functions/([^/]+)/invocations")
_REGION = re.compile(r"Credential=[^/]*/\d{8}/([a-z0-9-]+)/")
_JSON = ("Content-Type", "application/json")

#: Members whose model constraints AWS Lambda does not apply as ValidationException: an unknown
#: Runtime is an InvalidParameterValueException with its own message (recorded from AWS).
_CHECKED_BY_SERVICES = frozenset({"Runtime"})

InternalRoute = Callable[[Request], tuple[int, list[tuple[str, str]], bytes]]


def _request_id() -> str:
    """A random (version 4) UUID, cheaper than ``str(uuid.uuid4())``."""
    h = bytearray(os.urandom(16))
    h[6] = (h[6] & 0x0F) | 0x40
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


class ApiServer:
    def __init__(
        self,
        operations: LambdaOperations,
        invocations: InvocationService,
        control: Executor,
        *,
        account: str,
        default_region: str,
        internal: dict[str, InternalRoute],
        logs_api: Callable[[Request, Responder, Scope], None] | None = None,
    ) -> None:
        model = botocore.session.get_session().get_service_model("lambda")
        self._router = Router(model)
        self._invoke_op: OperationModel = model.operation_model("Invoke")
        self._operations = operations
        self._invocations = invocations
        self._control = control
        self._account = account
        self._default_region = default_region
        self._internal = internal
        self._logs_api = logs_api
        self._scopes: dict[str, Scope] = {}
        members = self._invoke_op.input_shape.members
        # The model's own constraints, compiled once for the hot path; a request that fails
        # them goes through the generic validator for AWS's exact message.
        self._invoke_name = re.compile(members["FunctionName"].metadata["pattern"])
        self._invoke_qualifier = re.compile(members["Qualifier"].metadata["pattern"])
        self._invoke_types = frozenset(members["InvocationType"].metadata["enum"])
        self._name_max = members["FunctionName"].metadata["max"]

    def _invoke_params_ok(self, name: str, qualifier: str | None, invocation_type: str) -> bool:
        return (
            0 < len(name) <= self._name_max
            and self._invoke_name.fullmatch(name) is not None
            and invocation_type in self._invoke_types
            and (qualifier is None or (0 < len(qualifier) <= 128
                                       and self._invoke_qualifier.fullmatch(qualifier) is not None))
        )

    # limits --------------------------------------------------------------------------
    @staticmethod
    def body_limit(method: str, path: str) -> int:
        if path.endswith("/invocations"):
            return limits.SYNC_PAYLOAD_MAX_BYTES
        return limits.CREATE_FUNCTION_REQUEST_MAX_BYTES

    def _scope(self, request: Request) -> Scope:
        match = _REGION.search(request.headers.get("authorization", ""))
        region = match.group(1) if match else self._default_region
        scope = self._scopes.get(region)
        if scope is None:
            scope = self._scopes[region] = Scope(region, self._account)
        return scope

    # dispatch --------------------------------------------------------------------------
    def handle(self, request: Request, responder: Responder) -> None:
        request_id = _request_id()
        try:
            path = request.path
            if path.startswith("/_strato/"):
                self._handle_internal(request, responder)
                return
            if "x-amz-target" in request.headers and self._logs_api is not None:
                self._logs_api(request, responder, self._scope(request))
                return
            match = _INVOKE_PATH.fullmatch(path)
            if match and request.method == "POST":
                self._invoke(request, responder, unquote(match.group(1)), request_id)
                return
            self._control_plane(request, responder, request_id)
        except LambdaApiError as error:
            self._send_error(responder, error, request_id)
        except Exception:
            log.exception("error serving %s %s", request.method, request.path)
            self._send_error(responder, ServiceException("Internal error"), request_id)

    def _send_error(self, responder: Responder, error: LambdaApiError, request_id: str) -> None:
        response = rest_json.serialize_error(error)
        responder.send(response.status, [*response.headers, ("x-amzn-RequestId", request_id)],
                       response.body)

    def _handle_internal(self, request: Request, responder: Responder) -> None:
        route = self._internal.get(request.path.split("/")[2])
        if route is None:
            responder.send(404, [_JSON], b'{"message":"not found"}')
            return
        responder.send(*route(request))

    # invoke: the hot path ------------------------------------------------------------
    def _invoke(
        self, request: Request, responder: Responder, function_name: str, request_id: str
    ) -> None:
        headers = request.headers
        if request.too_large:
            raise RequestEntityTooLargeException(
                f"Request must be smaller than {limits.SYNC_PAYLOAD_MAX_BYTES} bytes for the "
                "InvokeFunction operation"
            )
        qualifier = None
        if request.query_string:
            qualifier = next(iter(parse_qs(request.query_string).get("Qualifier", [])), None)
        params: dict[str, Any] = {"FunctionName": function_name}
        if qualifier is not None:
            params["Qualifier"] = qualifier
        invocation_type = headers.get("x-amz-invocation-type", "RequestResponse")
        params["InvocationType"] = invocation_type
        if not self._invoke_params_ok(function_name, qualifier, invocation_type):
            raise ValidationException.from_items(validate(self._invoke_op.input_shape, params))

        def on_done(result: InvocationResult) -> None:
            out = [_JSON, ("x-amzn-RequestId", request_id),
                   ("X-Amz-Executed-Version", result.executed_version)]
            if result.function_error:
                out.append(("X-Amz-Function-Error", result.function_error))
            if result.log_tail is not None:
                out.append(("X-Amz-Log-Result", result.log_tail))
            responder.send(200, out, result.payload)

        result = self._invocations.invoke(
            function_name, qualifier, request.body, self._scope(request), on_done,
            request_id=request_id,
            invocation_type=invocation_type,
            tail=headers.get("x-amz-log-type") == "Tail",
            client_context=headers.get("x-amz-client-context"),
        )
        if invocation_type == DRY_RUN and result is not None:
            responder.send(204, [_JSON, ("x-amzn-RequestId", request_id),
                                 ("X-Amz-Executed-Version", result.executed_version)])

    # control plane ---------------------------------------------------------------------
    def _control_plane(self, request: Request, responder: Responder, request_id: str) -> None:
        query = parse_qs(request.query_string, keep_blank_values=True)
        route = self._router.match(request.method, request.path, query)
        if route is None:
            raise UnsupportedOperationException(
                f"strato has no Lambda operation at {request.method} {request.path}"
            )
        operation = self._operations.table.get(route.operation.name)
        if operation is None:
            raise UnsupportedOperationException(
                f"strato does not offer the Lambda operation {route.operation.name} yet"
            )
        if request.too_large:
            raise RequestEntityTooLargeException(
                f"Request must be smaller than {limits.CREATE_FUNCTION_REQUEST_MAX_BYTES} bytes "
                f"for the {route.operation.name} operation"
            )
        params = rest_json.parse_request(
            route.operation, route.uri_params, query, request.headers, request.body
        )
        checked = {k: v for k, v in params.items() if k not in _CHECKED_BY_SERVICES}
        errors = validate(route.operation.input_shape, checked) if route.operation.input_shape else []
        if errors:
            raise ValidationException.from_items(errors)
        host = request.headers.get("host", "127.0.0.1")
        context = CallContext(self._scope(request), f"http://{host}")
        op_model = route.operation
        future = asyncio.get_running_loop().run_in_executor(
            self._control, operation, params, context
        )

        def done(task: asyncio.Future[dict[str, Any]]) -> None:
            try:
                response = rest_json.serialize_response(op_model, task.result())
            except LambdaApiError as error:
                self._send_error(responder, error, request_id)
                return
            except Exception:
                log.exception("error in %s", op_model.name)
                self._send_error(responder, ServiceException("Internal error"), request_id)
                return
            responder.send(response.status, [*response.headers, ("x-amzn-RequestId", request_id)],
                           response.body)

        future.add_done_callback(done)
