"""botocore's ``json`` protocol (JSON 1.0/1.1 services such as CloudWatch Logs).

Every request is a ``POST /`` whose ``X-Amz-Target`` header names the operation
(``Logs_20140328.FilterLogEvents``) and whose body is the whole input as one JSON object;
responses are the whole output as one JSON object with ``Content-Type:
application/x-amz-json-<jsonVersion>``; errors carry ``__type`` in the body. The value
conversions are ``strato.api.shapes``', shared with rest-json.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.model import (  # type: ignore[import-untyped, unused-ignore]
    OperationModel,
    ServiceModel,
)

from strato.api.rest_json import Response
from strato.api.shapes import WireFormatError, decode_json, encode_body_members
from strato.domain.errors import LambdaApiError


class SerializationException(LambdaApiError):
    """The request body is not JSON, or a member has the wrong JSON type.

    The code json-protocol services (CloudWatch Logs among them) answer for requests they
    cannot deserialise; Lambda has no such error, so it lives with the protocol.
    """

    code = "SerializationException"
    status = 400
    body_type = None


def operation_for_target(service_model: ServiceModel, target_header: str) -> OperationModel | None:
    """The operation an ``X-Amz-Target`` header names, or None.

    None when the prefix is not the service's ``targetPrefix`` or the operation is unknown.
    """
    prefix, _, name = target_header.strip().rpartition(".")
    if prefix != service_model.metadata.get("targetPrefix"):
        return None
    if name not in service_model.operation_names:
        return None
    operation: OperationModel = service_model.operation_model(name)
    return operation


def parse_request(operation: OperationModel, body: bytes) -> dict[str, Any]:
    """The input parameters of ``operation`` from a json-protocol request body.

    An empty body is an empty input. Unknown members are ignored and missing required
    members are not an error here. Raises ``SerializationException`` when the body is not a
    JSON object or a member does not have the type its shape declares.
    """
    shape = operation.input_shape
    if shape is None or not body.strip():
        return {}
    try:
        document = json.loads(body)
        if not isinstance(document, dict):
            raise WireFormatError("the body is not a JSON object")
        params: dict[str, Any] = decode_json(shape, document, "")
    except (ValueError, WireFormatError) as e:  # ValueError: JSONDecodeError, UnicodeDecodeError
        raise SerializationException(f"Could not parse the request body: {e}") from e
    return params


def serialize_response(operation: OperationModel, output: Mapping[str, Any]) -> Response:
    """The HTTP 200 response carrying ``output`` (the output members; None means absent)."""
    shape = operation.output_shape
    body = b"{}"
    if shape is not None:
        body = encode_body_members(shape, output, list(shape.members))
    return Response(200, [("Content-Type", content_type(operation))], body)


def serialize_error(error: LambdaApiError, operation: OperationModel | None = None) -> Response:
    """The response for an API error: ``{"__type": code, "message": text, **fields}``.

    ``operation`` only chooses the Content-Type's JSON version (1.1 when not given).
    """
    body = {"__type": error.code, "message": error.message, **error.fields}
    media = content_type(operation) if operation is not None else "application/x-amz-json-1.1"
    return Response(error.status, [("Content-Type", media)], json.dumps(body).encode())


def content_type(operation: OperationModel) -> str:
    """``application/x-amz-json-<jsonVersion>`` of the operation's service (1.0 by default)."""
    return f"application/x-amz-json-{operation.metadata.get('jsonVersion', '1.0')}"
