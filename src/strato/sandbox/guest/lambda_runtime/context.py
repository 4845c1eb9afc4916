"""The context object passed to the handler, with awslambdaric's attribute names.

https://docs.aws.amazon.com/lambda/latest/dg/python-context.html. Function-level values come
from the environment, read once per execution environment (``FunctionSettings``); the rest
from the headers of each ``invocation/next`` response.
"""

from __future__ import annotations

import json
import sys
import time

from .faults import LAMBDA_CONTEXT_UNMARSHAL_ERROR, Fault

TYPE_CHECKING = False  # not typing's: the annotations need no import at run time
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from .client import Invocation


class FunctionSettings:
    """The function's configuration as the environment variables state it. Immutable by use."""

    __slots__ = ("function_name", "function_version", "memory_limit_in_mb",
                 "log_group_name", "log_stream_name")

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.function_name = environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        # A string, as on AWS ("128").
        self.memory_limit_in_mb = environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = environ.get("AWS_LAMBDA_LOG_STREAM_NAME")


class CognitoIdentity:
    """Present on every context; both ids are None unless the invoker sent an identity."""

    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, cognito_identity_id: Any = None,
                 cognito_identity_pool_id: Any = None) -> None:
        self.cognito_identity_id = cognito_identity_id
        self.cognito_identity_pool_id = cognito_identity_pool_id

    def __repr__(self) -> str:
        return (f"CognitoIdentity([cognito_identity_id={self.cognito_identity_id},"
                f"cognito_identity_pool_id={self.cognito_identity_pool_id}])")


class Client:
    """``client_context.client``: the mobile app that invoked the function."""

    __slots__ = ("installation_id", "app_title", "app_version_name",
                 "app_version_code", "app_package_name")

    def __init__(self, fields: Mapping[str, Any]) -> None:
        for name in self.__slots__:
            setattr(self, name, fields.get(name))

    def __repr__(self) -> str:
        inner = ",".join(f"{name}={getattr(self, name)}" for name in self.__slots__)
        return f"Client([{inner}])"


class ClientContext:
    """The invoker's ClientContext: ``client`` (a ``Client`` or None), ``custom``, ``env``."""

    __slots__ = ("client", "custom", "env")

    def __init__(self, fields: Mapping[str, Any]) -> None:
        client = fields.get("client")
        self.client: Any = Client(client) if isinstance(client, dict) else client
        self.custom = fields.get("custom")
        self.env = fields.get("env")

    def __repr__(self) -> str:
        return f"ClientContext([custom={self.custom},env={self.env},client={self.client}])"


class LambdaContext:
    """What the handler gets as ``context``. Valid for one invocation."""

    def __init__(self, settings: FunctionSettings, aws_request_id: str,
                 invoked_function_arn: str | None, deadline_ms: int,
                 client_context: ClientContext | None = None,
                 identity: CognitoIdentity | None = None) -> None:
        self.aws_request_id = aws_request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = settings.function_name
        self.function_version = settings.function_version
        self.memory_limit_in_mb = settings.memory_limit_in_mb
        self.log_group_name = settings.log_group_name
        self.log_stream_name = settings.log_stream_name
        self.client_context = client_context
        self.identity = identity if identity is not None else CognitoIdentity()
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds until the invocation's deadline; 0 once it has passed."""
        remaining = self._deadline_ms - time.time_ns() // 1_000_000
        return remaining if remaining > 0 else 0

    def log(self, message: object) -> None:
        """Write ``message`` to the function's log, unformatted (awslambdaric's ``log``)."""
        sys.stdout.write(str(message))

    def __repr__(self) -> str:
        return (f"LambdaContext([aws_request_id={self.aws_request_id},"
                f"log_group_name={self.log_group_name},"
                f"log_stream_name={self.log_stream_name},"
                f"function_name={self.function_name},"
                f"memory_limit_in_mb={self.memory_limit_in_mb},"
                f"function_version={self.function_version},"
                f"invoked_function_arn={self.invoked_function_arn},"
                f"client_context={self.client_context},"
                f"identity={self.identity}])")


def _parse_header(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise Fault(LAMBDA_CONTEXT_UNMARSHAL_ERROR, f"Unable to parse {what} JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise Fault(LAMBDA_CONTEXT_UNMARSHAL_ERROR, f"Unable to parse {what} JSON: not an object")
    return value


def make_context(settings: FunctionSettings, invocation: Invocation) -> LambdaContext:
    """Build the context of ``invocation`` (a ``client.Invocation``). Raises ``Fault`` when a
    client context or Cognito identity header is not a JSON object."""
    client_context = None
    if invocation.client_context:
        client_context = ClientContext(_parse_header(invocation.client_context, "Client Context"))
    identity = None
    if invocation.cognito_identity:
        fields = _parse_header(invocation.cognito_identity, "Cognito Identity")
        identity = CognitoIdentity(fields.get("cognitoIdentityId"),
                                   fields.get("cognitoIdentityPoolId"))
    return LambdaContext(settings, invocation.request_id, invocation.invoked_function_arn,
                         invocation.deadline_ms, client_context, identity)
