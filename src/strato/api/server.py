"""The API endpoint: one HTTP handler in front of the Lambda API, CloudWatch Logs' subset, SQS,
IAM's role subset and STS's GetCallerIdentity (``iam_api``), and
strato's own routes (``/_strato/…``: health, code downloads).

Every request outside ``/_strato/`` is authenticated first (SigV4, ``strato.auth``: the
principal it acts as, or a 403 in AWS's words), then, once its operation and target are known,
authorised (``authorizer(principal, action, resource_arn)``, which raises to deny). A request
over its body limit is answered 413 before authentication: its body was dropped unread, so its
signature cannot be checked, and nothing runs. ``/_strato/`` routes carry their own checks
(code URLs are signed by strato), need none (health), or are ``signed_internal`` ones (the
event ledger): SigV4-authenticated here, authorised by the route itself. A request signed for
(or targeting) another AWS service is told that strato does not offer it (``strato.api.offered``).

Invoke has its own path through this module (no routing table, no thread hop): the function is
resolved in memory and the invocation handed to the pool on the event loop's thread; an
asynchronous one (``InvocationType=Event``, or the legacy InvokeAsync) is handed to the
``EventAcceptor``, which answers 202 once the event is stored. Every other Lambda operation
is routed with botocore's model, parsed, validated, and run on the single control-plane
thread; its result is serialised back on the loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any
from urllib.parse import parse_qs, unquote

from botocore.model import OperationModel

from strato.api import json_protocol, offered, rest_json
from strato.api.event_accept import EventAcceptor
from strato.api.function_url_edge import FunctionUrlEdge
from strato.api.iam_api import IamApi
from strato.api.lambda_api import CallContext, LambdaOperations
from strato.api.layer_operations import layer_resource
from strato.api.routing import Router
from strato.api.service_models import service_model
from strato.api.sqs_api import SqsApi
from strato.api.stream_invoke import PATH as _STREAM_INVOKE_PATH
from strato.api.stream_invoke import StreamInvokeApi
from strato.api.validation import validate
from strato.auth.sigv4 import SigV4Verifier
from strato.domain import limits
from strato.domain.arns import Scope, resolve_function_name
from strato.domain.errors import (
    LambdaApiError,
    RequestEntityTooLargeException,
    ServiceException,
    UnsupportedOperationException,
    ValidationException,
)
from strato.domain.function_urls import PATH_PREFIX as URL_PATH_PREFIX
from strato.domain.ids import request_id as new_request_id
from strato.domain.principals import Principal, anonymous_admin
from strato.domain.sqs.queues import REQUEST_MAX_BYTES as QUEUE_REQUEST_MAX_BYTES
from strato.http.request import Request, Responder
from strato.scheduler.invocation import InvocationResult
from strato.services.invocations import DRY_RUN, EVENT, InvocationService

log = logging.getLogger(__name__)

_INVOKE_PATH = re.compile(r"/2015-03-31/functions/([^/]+)/invocations")
_INVOKE_ASYNC_PATH = re.compile(r"/2014-11-13/functions/([^/]+)/invoke-async/?")
_REGION = re.compile(r"Credential=[^/]*/\d{8}/([a-z0-9-]+)/")
_JSON = ("Content-Type", "application/json")

#: Members whose model constraints AWS Lambda does not apply as ValidationException: an unknown
#: Runtime is an InvalidParameterValueException with its own message (recorded from AWS).
_CHECKED_BY_SERVICES = frozenset({"Runtime"})

InternalRoute = Callable[[Request], tuple[int, list[tuple[str, str]], bytes]]
#: A ``/_strato/`` route that requires a SigV4 signature: called with the principal, it
#: answers through the responder (or raises a LambdaApiError).
SignedRoute = Callable[[Request, Responder, Principal, Scope], None]
#: ``authorizer(principal, action, resource_arn)`` returns to allow and raises a
#: LambdaApiError (AccessDeniedException) to deny.
Authorize = Callable[[Principal, str, str], None]

#: IAM action names that differ from the operation's (``lambda:<Operation>`` otherwise).
_ACTIONS = {"Invoke": "lambda:InvokeFunction"}
#: Operations on layers, whose resource is a layer (version) ARN (``layer_resource``).
_LAYER_OPERATIONS = frozenset({
    "PublishLayerVersion", "GetLayerVersion", "GetLayerVersionByArn", "ListLayerVersions",
    "DeleteLayerVersion", "AddLayerVersionPermission", "GetLayerVersionPolicy",
    "RemoveLayerVersionPermission",
})
#: What account-level listings answer a principal of another account than the one strato
#: hosts: on AWS they list the caller's own account, of which strato has nothing
#: (``authorization.CALLER_ACCOUNT_ACTIONS`` lets its identity policy decide).
_OTHER_ACCOUNT_LISTINGS: dict[str, dict[str, Any]] = {"ListFunctions": {"Functions": []}}


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
        verifier: SigV4Verifier | None,
        authorizer: Authorize | None = None,
        logs_api: Callable[[Request, Responder, Scope], None] | None = None,
        events: EventAcceptor | None = None,
        signed_internal: dict[str, SignedRoute] | None = None,
        sqs_api: SqsApi | None = None,
        iam_api: IamApi | None = None,
        urls: FunctionUrlEdge | None = None,
    ) -> None:
        """``verifier`` authenticates requests; None turns authentication off, and every
        request then acts as ``anonymous_admin(account)`` (``strato serve --auth none``).
        Without ``authorizer`` every authenticated request is allowed. ``urls`` serves
        function URL requests, which it recognises before anything else."""
        model = service_model("lambda")
        self._router = Router(model)
        self._invoke_op: OperationModel = model.operation_model("Invoke")
        self._invoke_async_op: OperationModel = model.operation_model("InvokeAsync")
        self._operations = operations
        self._invocations = invocations
        self._stream_invoke = StreamInvokeApi(invocations)
        self._control = control
        self._account = account
        self._default_region = default_region
        self._internal = internal
        self._signed_internal = signed_internal or {}
        self._events = events
        self._logs_api = logs_api
        self._sqs_api = sqs_api
        self._iam_api = iam_api
        self._urls = urls
        self._verifier = verifier
        self._authorizer = authorizer
        self._anonymous = anonymous_admin(account)
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
        if (path.endswith("/invocations") or "/invoke-async" in path
                or path.endswith("/response-streaming-invocations")
                or path.startswith(URL_PATH_PREFIX)):
            return limits.SYNC_PAYLOAD_MAX_BYTES
        if path == "/":  # the JSON-protocol APIs (SQS, CloudWatch Logs); no Lambda route
            return QUEUE_REQUEST_MAX_BYTES
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
        if self._urls is not None and (url := self._urls.match(request)) is not None:
            self._urls.handle(request, responder, *url)
            return
        request_id = new_request_id()
        logs = False
        try:
            path = request.path
            if path.startswith("/_strato/"):
                self._handle_internal(request, responder)
                return
            if self._iam_api is not None and (service := self._iam_api.service_of(request)):
                self._iam(self._iam_api, service, request, responder, request_id)
                return
            not_offered = offered.refusal(path, request.headers)
            if not_offered is not None:
                responder.send(*offered.response(not_offered, request, request_id))
                return
            if self._sqs_api is not None and self._sqs_api.accepts(request):
                self._sqs(self._sqs_api, request, responder, request_id)
                return
            logs = "x-amz-target" in request.headers and self._logs_api is not None
            if request.too_large:
                raise self._too_large(request, logs)
            if logs:
                self._logs(request, responder, self._authenticate(request, "logs"))
                return
            principal = self._authenticate(request, "lambda")
            match = _INVOKE_PATH.fullmatch(path)
            if match and request.method == "POST":
                self._invoke(request, responder, principal, unquote(match.group(1)), request_id)
                return
            match = _STREAM_INVOKE_PATH.fullmatch(path)
            if match and request.method == "POST":
                self._invoke_streaming(request, responder, principal, unquote(match.group(1)),
                                       request_id)
                return
            match = _INVOKE_ASYNC_PATH.fullmatch(path)
            if match and request.method == "POST" and self._events is not None:
                self._invoke_async(request, responder, principal, unquote(match.group(1)),
                                   request_id)
                return
            self._control_plane(request, responder, principal, request_id)
        except LambdaApiError as error:
            self._send_error(responder, error, request_id, json_protocol_error=logs)
        except Exception:
            log.exception("error serving %s %s", request.method, request.path)
            self._send_error(responder, ServiceException("Internal error"), request_id,
                             json_protocol_error=logs)

    def _send_error(
        self, responder: Responder, error: LambdaApiError, request_id: str,
        *, json_protocol_error: bool = False,
    ) -> None:
        """Send ``error`` in the Lambda API's form, or in the json protocol's (CloudWatch Logs)."""
        if json_protocol_error:
            response = json_protocol.serialize_error(error)
            headers = [*response.headers, ("x-amzn-ErrorType", error.code)]
        else:
            response = rest_json.serialize_error(error)
            headers = list(response.headers)
        responder.send(response.status, [*headers, ("x-amzn-RequestId", request_id)], response.body)

    def _too_large(self, request: Request, logs: bool) -> LambdaApiError:
        """The error for a request whose body was over its limit (and was dropped unread)."""
        limit = self.body_limit(request.method, request.path)
        if logs and self._logs_api is not None:
            target = request.headers["x-amz-target"]
            operation = json_protocol.operation_for_target(service_model("logs"), target)
            name = operation.name if operation is not None else target
        elif _INVOKE_PATH.fullmatch(request.path) and request.method == "POST":
            name = "InvokeFunction"
        else:
            query = parse_qs(request.query_string, keep_blank_values=True)
            route = self._router.match(request.method, request.path, query)
            if route is None:
                raise UnsupportedOperationException(
                    f"strato has no Lambda operation at {request.method} {request.path}"
                )
            name = route.operation.name
        return RequestEntityTooLargeException(
            f"Request must be smaller than {limit} bytes for the {name} operation"
        )

    # authentication and authorisation ---------------------------------------------------
    def _authenticate(self, request: Request, service: str) -> Principal:
        """The principal ``request`` acts as; raises the AWS error of a bad signature."""
        verifier = self._verifier
        if verifier is None:
            return self._anonymous
        return verifier.verify(request.method, request.path, request.query_string,
                               request.headers, request.body, service)

    def _logs(self, request: Request, responder: Responder, principal: Principal) -> None:
        scope = self._scope(request)
        if self._authorizer is not None:
            operation = json_protocol.operation_for_target(
                service_model("logs"), request.headers["x-amz-target"]
            )
            if operation is not None:  # an unknown target is refused by the logs API itself
                self._authorizer(principal, f"logs:{operation.name}",
                                 _log_group_arn(scope, request.body))
        assert self._logs_api is not None  # handle() routes here only when there is one
        self._logs_api(request, responder, scope)

    def _sqs(self, api: SqsApi, request: Request, responder: Responder, request_id: str) -> None:
        """SQS (``AmazonSQS.*`` targets): authenticated for ``sqs``, answered in SQS's error
        form; the API authorises each operation on its queue."""
        try:
            if request.too_large:
                raise api.too_large(request, self.body_limit(request.method, request.path))
            principal = self._authenticate(request, "sqs")
        except LambdaApiError as error:
            api.send_error(responder, error, request_id)
            return
        api.handle(request, responder, self._scope(request), principal, request_id)

    def _iam(self, api: IamApi, service: str, request: Request, responder: Responder,
             request_id: str) -> None:
        """IAM and STS (query protocol): authenticated for ``service``, answered in the query
        protocol's XML error form; the API authorises each operation."""
        try:
            if request.too_large:
                raise RequestEntityTooLargeException("Request is too large")
            principal = self._authenticate(request, service)
        except LambdaApiError as error:
            api.send_error(responder, error, request_id)
            return
        api.handle(service, request, responder, principal, request_id)

    def _handle_internal(self, request: Request, responder: Responder) -> None:
        name = request.path.split("/")[2]
        signed = self._signed_internal.get(name)
        if signed is not None:
            if request.too_large:
                raise RequestEntityTooLargeException("Request is too large")
            signed(request, responder, self._authenticate(request, "lambda"), self._scope(request))
            return
        route = self._internal.get(name)
        if route is None:
            responder.send(404, [_JSON], b'{"message":"not found"}')
            return
        responder.send(*route(request))

    # invoke: the hot path ------------------------------------------------------------
    def _invoke(
        self, request: Request, responder: Responder, principal: Principal, function_name: str,
        request_id: str,
    ) -> None:
        headers = request.headers
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
        scope = self._scope(request)
        if self._authorizer is not None:
            ref = resolve_function_name(function_name, scope, qualifier)
            self._authorizer(principal, "lambda:InvokeFunction",
                             scope.function_arn(ref.name, ref.qualifier))
        if invocation_type == EVENT and self._events is not None:
            self._events.accept(responder, function_name, qualifier, request.body, scope,
                                request_id)
            return

        def on_done(result: InvocationResult) -> None:
            out = [_JSON, ("x-amzn-RequestId", request_id),
                   ("X-Amz-Executed-Version", result.executed_version)]
            if result.function_error:
                out.append(("X-Amz-Function-Error", result.function_error))
            if result.log_tail is not None:
                out.append(("X-Amz-Log-Result", result.log_tail))
            responder.send(200, out, result.payload)

        result = self._invocations.invoke(
            function_name, qualifier, request.body, scope, on_done,
            request_id=request_id,
            invocation_type=invocation_type,
            tail=headers.get("x-amz-log-type") == "Tail",
            client_context=headers.get("x-amz-client-context"),
        )
        if invocation_type == DRY_RUN and result is not None:
            responder.send(204, [_JSON, ("x-amzn-RequestId", request_id),
                                 ("X-Amz-Executed-Version", result.executed_version)])

    def _invoke_streaming(self, request: Request, responder: Responder, principal: Principal,
                          function_name: str, request_id: str) -> None:
        """InvokeWithResponseStream (``api.stream_invoke``), authorised as Invoke is."""
        params = self._stream_invoke.params(request, function_name)
        scope = self._scope(request)
        if self._authorizer is not None:
            ref = resolve_function_name(function_name, scope, params.get("Qualifier"))
            self._authorizer(principal, "lambda:InvokeFunction",
                             scope.function_arn(ref.name, ref.qualifier))
        self._stream_invoke.invoke(request, responder, params, scope, request_id)

    def _invoke_async(self, request: Request, responder: Responder, principal: Principal,
                      function_name: str, request_id: str) -> None:
        """The legacy InvokeAsync: an asynchronous invoke of ``FunctionName`` (which may
        carry a qualifier), answered 202 ``{"Status": 202}``."""
        errors = validate(self._invoke_async_op.input_shape,
                          {"FunctionName": function_name, "InvokeArgs": b""})
        if errors:
            raise ValidationException.from_items(errors)
        scope = self._scope(request)
        ref = resolve_function_name(function_name, scope)
        if self._authorizer is not None:
            self._authorizer(principal, "lambda:InvokeFunction",
                             scope.function_arn(ref.name, ref.qualifier))
        assert self._events is not None  # handle() routes here only when there is one
        self._events.accept(responder, ref.name, ref.qualifier, request.body, scope, request_id,
                            legacy=True)

    # control plane ---------------------------------------------------------------------
    def _control_plane(
        self, request: Request, responder: Responder, principal: Principal, request_id: str
    ) -> None:
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
        params = rest_json.parse_request(
            route.operation, route.uri_params, query, request.headers, request.body
        )
        checked = {k: v for k, v in params.items() if k not in _CHECKED_BY_SERVICES}
        errors = validate(route.operation.input_shape, checked) if route.operation.input_shape else []
        if errors:
            raise ValidationException.from_items(errors)
        scope = self._scope(request)
        if self._authorizer is not None:
            name = route.operation.name
            resource = (layer_resource(params, scope.region, principal.account_id)
                        if name in _LAYER_OPERATIONS else None)
            self._authorizer(principal, _ACTIONS.get(name, f"lambda:{name}"),
                             resource or _function_arn(params, scope))
        listing = _OTHER_ACCOUNT_LISTINGS.get(route.operation.name)
        if listing is not None and principal.account_id != scope.account:
            empty = rest_json.serialize_response(route.operation, listing)
            responder.send(empty.status, [*empty.headers, ("x-amzn-RequestId", request_id)],
                           empty.body)
            return
        host = request.headers.get("host", "127.0.0.1")
        context = CallContext(scope, f"http://{host}", principal)
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


def _function_arn(params: dict[str, Any], scope: Scope) -> str:
    """The resource of a Lambda operation: the function (qualified when the request names a
    qualifier) for operations on a function, ``*`` for account-level ones (ListFunctions,
    GetAccountSettings). Tag operations name their function as ``Resource``."""
    name = params.get("FunctionName", params.get("Resource"))
    if not isinstance(name, str):
        return "*"
    ref = resolve_function_name(name, scope, params.get("Qualifier"))
    return scope.function_arn(ref.name, ref.qualifier)


def _log_group_arn(scope: Scope, body: bytes) -> str:
    """The resource of a CloudWatch Logs request: its log group, or ``*`` when it names none
    (or its body cannot be read, which the logs API then reports)."""
    try:
        document = json.loads(body) if body else None
    except ValueError:
        return "*"
    group = document.get("logGroupName") if isinstance(document, dict) else None
    if not isinstance(group, str) or not group:
        return "*"
    return f"arn:aws:logs:{scope.region}:{scope.account}:log-group:{group}"
