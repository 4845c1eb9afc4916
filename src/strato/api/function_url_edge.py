"""Serving function URLs: the API listener hands this edge every request ``UrlScheme``
recognises (a path ``/lambda-url/<id>/...`` or a host ``<id>.<url host>``), whatever its
method, before any Lambda API routing.

For one request, in order (https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html):

1. the URL's configuration (``UrlDirectory``, in memory); an unknown URL id is refused 403
   as a deleted URL is on AWS;
2. a CORS preflight is answered from the configuration, without invoking anything
   (``strato.domain.cors``), before authentication: browsers never sign preflights;
3. a body over 6 MB is answered 413;
4. authorisation (https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html): under
   AuthType NONE the function's resource policy must allow ``lambda:InvokeFunctionUrl`` to
   everyone; under AWS_IAM the request must carry a valid SigV4 signature (service
   ``lambda``) of a caller whose identity or the resource policy allows it. The resource is
   the function's ARN, qualified with the URL's alias; the request context carries
   ``lambda:FunctionUrlAuthType``. Any refusal is AWS's 403 ``Forbidden`` body;
5. the payload 2.0 event (``strato.domain.url_events``) goes through the invocation service's
   synchronous path with the URL's qualifier, so aliases, concurrency and throttling (429),
   logs and payload limits are those of Invoke;
6. the result is mapped to HTTP (``strato.domain.url_responses``) and the configuration's CORS
   headers are put on it.

A RESPONSE_STREAM URL is served through ``FunctionUrlEdge.serve_response_stream``: its answer
is chunked and sent as the function streams it (``strato.api.url_stream``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping

from strato.api.url_stream import UrlStreamResponse
from strato.auth.sigv4 import SigV4Verifier
from strato.domain import cors, limits
from strato.domain.arns import Scope
from strato.domain.errors import (
    AccessDeniedException,
    LambdaApiError,
    RequestEntityTooLargeException,
    TooManyRequestsException,
)
from strato.domain.function_urls import (
    PATH_PREFIX,
    AuthType,
    FunctionUrlConfig,
    InvokeMode,
    UrlScheme,
)
from strato.domain.ids import request_id as new_request_id
from strato.domain.permissions import PermissionStatement, policy_qualifier
from strato.domain.policy import Verdict, context_of, evaluate_resource_policy
from strato.domain.principals import Principal
from strato.domain.url_events import ANONYMOUS, IamCaller, url_event
from strato.domain.url_responses import (
    FORBIDDEN,
    FUNCTION_ERROR,
    THROTTLED,
    UrlResponse,
    failed,
    too_large,
    url_response,
)
from strato.http.request import Request, Responder
from strato.scheduler.invocation import InvocationResult
from strato.services.authorization import ResourcePolicyCache
from strato.services.invocations import InvocationService
from strato.services.url_directory import UrlDirectory

#: ``authorizer(principal, action, resource_arn, context)``: returns to allow, raises a
#: LambdaApiError to deny (``strato.services.authorization.Authorizer``).
AuthorizeWithContext = Callable[[Principal, str, str, Mapping[str, str]], None]

INVOKE_FUNCTION_URL = "lambda:InvokeFunctionUrl"
AUTH_TYPE_KEY = "lambda:FunctionUrlAuthType"

#: The condition context of an unsigned call: no principal but everyone's (``*``).
_PUBLIC_CONTEXT = context_of(ANONYMOUS, ANONYMOUS, {AUTH_TYPE_KEY: AuthType.NONE.value})
_PUBLIC_MEMO_MAX = 1024


class FunctionUrlEdge:
    """Serves function URL requests on the API's listener. Everything runs on the event
    loop's thread; the directory, verifier and authorizer read no database."""

    def __init__(
        self,
        scheme: UrlScheme,
        directory: UrlDirectory,
        invocations: InvocationService,
        scope: Scope,
        *,
        verifier: SigV4Verifier | None,
        authorizer: AuthorizeWithContext | None,
        policies: ResourcePolicyCache | None,
    ) -> None:
        """``verifier`` None (``--auth none``) lets every AWS_IAM request act as the
        administrator; ``authorizer`` None allows every signed caller; ``policies`` (the
        functions' resource policies) None lets everyone call a NONE URL."""
        self._scheme = scheme
        self._directory = directory
        self._invocations = invocations
        self._scope = scope
        self._verifier = verifier
        self._authorizer = authorizer
        self._policies = policies
        #: The resource policy's verdict on an unsigned call, by the statements it came from
        #: (a policy change replaces the statements, so a stale verdict is never found).
        self._public: dict[int, tuple[tuple[PermissionStatement, ...], bool]] = {}
        self._by_host = scheme.url_host is not None

    def match(self, request: Request) -> tuple[str, str] | None:
        """The URL id ``request`` is for and its path as the function sees it, or None when
        it is not a function URL request. Costs one prefix test for an API request."""
        if not self._by_host and not request.path.startswith(PATH_PREFIX):
            return None
        return self._scheme.match(request.headers.get("host", ""), request.path)

    def handle(self, request: Request, responder: Responder, url_id: str, path: str) -> None:
        """Answer one URL request (``match``'s values); never raises."""
        request_id = new_request_id()
        config = self._directory.find(url_id)
        if config is None:
            self._send(responder, FORBIDDEN, request_id, request)
            return
        headers = request.headers
        if config.cors is not None and cors.is_preflight(request.method, headers):
            self._send(responder, UrlResponse(200, cors.preflight_headers(config.cors, headers)),
                       request_id, request)
            return
        if request.too_large:
            self._send(responder, too_large(limits.SYNC_PAYLOAD_MAX_BYTES), request_id, request)
            return
        try:
            caller = self._caller(config, request)
        except LambdaApiError:
            self._send(responder, FORBIDDEN, request_id, request, config)
            return
        target = f"{path}?{request.query_string}" if request.query_string else path
        event = url_event(
            request.method, target, headers, request.body,
            url_id=url_id, domain_name=headers.get("host", ""), source_ip=request.peer,
            request_id=request_id, epoch_ms=time.time_ns() // 1_000_000,
            caller=caller,
        )
        payload = json.dumps(event, separators=(",", ":")).encode()
        if len(payload) > limits.SYNC_PAYLOAD_MAX_BYTES:
            self._send(responder, too_large(limits.SYNC_PAYLOAD_MAX_BYTES), request_id, request)
            return
        if config.invoke_mode is InvokeMode.RESPONSE_STREAM:
            self.serve_response_stream(config, payload, request, responder, request_id)
        else:
            self._invoke_buffered(config, payload, request, responder, request_id)

    def serve_response_stream(self, config: FunctionUrlConfig, payload: bytes, request: Request,
                              responder: Responder, request_id: str) -> None:
        """Serve a RESPONSE_STREAM URL's invocation of ``payload`` (the event): its answer
        goes to the client as the function streams it."""
        def finish(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
            if config.cors is not None:
                headers = cors.apply_to_response(config.cors, request.headers.get("origin"),
                                                 headers)
            return [*headers, ("x-amzn-RequestId", request_id)]

        answer = UrlStreamResponse(
            responder, finish,
            lambda whole: self._send(responder, whole, request_id, request, config),
            head_only=request.method == "HEAD")
        try:
            self._invocations.invoke_streaming(config.function_name, config.qualifier, payload,
                                               self._scope, answer, answer.done,
                                               request_id=request_id, payload_is_json=True)
        except LambdaApiError as error:
            self._refused(error, responder, request_id, request, config)

    # steps ----------------------------------------------------------------------------------
    def _caller(self, config: FunctionUrlConfig, request: Request) -> IamCaller | None:
        """Who calls: the signed caller (AWS_IAM) or None (NONE: anyone the resource policy
        lets in). Raises a LambdaApiError when the request may not call the URL."""
        resource = self._scope.function_arn(config.function_name, config.qualifier)
        context = {AUTH_TYPE_KEY: config.auth_type.value}
        if config.auth_type is AuthType.NONE:
            if not self._public_may_call(config):
                raise AccessDeniedException(f"{INVOKE_FUNCTION_URL} is not allowed to everyone")
            return None
        if self._verifier is None:
            account = self._scope.account
            return IamCaller("", account, f"arn:aws:iam::{account}:root", account)
        principal = self._verifier.verify(request.method, request.path, request.query_string,
                                          request.headers, request.body, "lambda")
        if self._authorizer is not None:
            self._authorizer(principal, INVOKE_FUNCTION_URL, resource, context)
        return IamCaller(principal.access_key_id, principal.account_id, principal.arn,
                         principal.access_key_id)

    def _public_may_call(self, config: FunctionUrlConfig) -> bool:
        """Whether the resource policy of the URL's function (or alias) lets anyone call it:
        a statement naming ``*`` for ``lambda:InvokeFunctionUrl`` whose conditions hold for
        AuthType NONE."""
        if self._policies is None:
            return True
        statements = self._policies.statements(config.function_name,
                                               policy_qualifier(config.qualifier))
        memo = self._public.get(id(statements))
        if memo is not None and memo[0] is statements:
            return memo[1]
        allowed = evaluate_resource_policy(
            statements, ANONYMOUS, ANONYMOUS, INVOKE_FUNCTION_URL, _PUBLIC_CONTEXT,
            cross_account=True) is Verdict.ALLOWED
        if len(self._public) >= _PUBLIC_MEMO_MAX:
            self._public.clear()
        self._public[id(statements)] = (statements, allowed)
        return allowed

    def _invoke_buffered(self, config: FunctionUrlConfig, payload: bytes, request: Request,
                         responder: Responder, request_id: str) -> None:
        def on_done(result: InvocationResult) -> None:
            answer = FUNCTION_ERROR if result.function_error else url_response(result.payload)
            self._send(responder, answer, request_id, request, config)

        try:
            self._invocations.invoke(config.function_name, config.qualifier, payload,
                                     self._scope, on_done, request_id=request_id,
                                     payload_is_json=True)
        except LambdaApiError as error:
            self._refused(error, responder, request_id, request, config)

    def _refused(self, error: LambdaApiError, responder: Responder, request_id: str,
                 request: Request, config: FunctionUrlConfig) -> None:
        """An invocation the service refused before it ran, answered as AWS answers a URL's
        caller: a throttle 429, a payload too large 413 (without CORS headers, as the other
        413s), anything else with its own status."""
        if isinstance(error, TooManyRequestsException):
            self._send(responder, THROTTLED, request_id, request, config)
        elif isinstance(error, RequestEntityTooLargeException):
            self._send(responder, too_large(limits.SYNC_PAYLOAD_MAX_BYTES), request_id, request)
        else:
            self._send(responder, failed(error.status, error.code, error.message), request_id,
                       request, config)

    def _send(self, responder: Responder, answer: UrlResponse, request_id: str, request: Request,
              config: FunctionUrlConfig | None = None) -> None:
        headers = answer.headers
        if config is not None and config.cors is not None:
            headers = cors.apply_to_response(config.cors, request.headers.get("origin"), headers)
        body = b"" if request.method == "HEAD" else answer.body
        responder.send(answer.status, [*headers, ("x-amzn-RequestId", request_id)], body,
                       close=request.too_large)
