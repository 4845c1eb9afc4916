"""The ``rest-json`` protocol (Lambda's): requests in, responses and errors out.

The server-side inverse of botocore's ``RestJSONSerializer`` and ``RestJSONParser``, generic
over any service model: an input member travels in the URI, the query string, a header, a
header prefix, or the JSON body (or is the whole body when the input names it ``payload``);
an output member likewise goes to the status code, a header or the body.

Wire-format faults (a body that is not JSON, a member of the wrong JSON type, a blob that is
not base64, an integer query value that is not a number) raise
``InvalidRequestContentException``, the error AWS Lambda's front end answers when it cannot
deserialise a request ("Could not parse request body into json: ..."). A bad base64 blob is
such a fault too, not a ValidationException: AWS fails while deserialising, before any model
constraint is checked. Model constraints (required members, lengths, patterns) are checked
separately by ``strato.api.validation``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.model import (  # type: ignore[import-untyped, unused-ignore]
    ListShape,
    MapShape,
    OperationModel,
    Shape,
    StructureShape,
)

from strato.api.routing import template_query
from strato.api.shapes import (
    WireFormatError,
    decode_json,
    decode_text,
    encode_body_members,
    encode_json,
    encode_text,
    wire_name,
)
from strato.domain.errors import InvalidRequestContentException, LambdaApiError

JSON_CONTENT_TYPE = "application/json"
BLOB_CONTENT_TYPE = "application/octet-stream"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Response:
    """What to send back: the HTTP layer adds ``Content-Length`` and ``x-amzn-RequestId``."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def parse_request(
    operation: OperationModel,
    uri_params: Mapping[str, str],
    query: Mapping[str, Sequence[str]],
    headers: Mapping[str, str],
    body: bytes,
) -> dict[str, Any]:
    """The input parameters of ``operation`` as the client's caller gave them to botocore.

    ``uri_params`` are the decoded label values from ``Router.match``; ``query`` the decoded
    query string (every value of a repeated key); ``headers`` with lower-case names. Members
    absent from the request are absent from the result (an empty blob payload counts as
    absent); header-prefix maps (``location: headers``) come back with lower-case keys,
    since header names are case-insensitive. Unknown JSON members are ignored. Raises
    ``InvalidRequestContentException`` for wire-format faults; never checks ``required``.
    """
    shape = operation.input_shape
    if shape is None:
        return {}
    params: dict[str, Any] = {}
    body_members: list[str] = []
    try:  # the URI, query string and headers
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            key = wire_name(name, member)
            value: Any = None
            if location == "uri":
                if key in uri_params:
                    value = decode_text(member, uri_params[key], name)
            elif location == "querystring":
                value = _from_query(operation, shape, member, key, query)
            elif location == "header":
                text = headers.get(key.lower())
                if text is not None:
                    value = decode_text(member, text, name)
            elif location == "headers":
                prefix = key.lower()
                value = {h[len(prefix) :]: v for h, v in headers.items() if h.startswith(prefix)}
                value = value or None
            elif location is None:
                body_members.append(name)
            if value is not None:
                params[name] = value
    except WireFormatError as e:
        raise InvalidRequestContentException(f"Could not parse request parameters: {e}") from e
    try:
        params.update(_from_body(shape, body_members, body))
    except WireFormatError as e:
        raise InvalidRequestContentException(f"Could not parse request body into json: {e}") from e
    return params


def serialize_response(
    operation: OperationModel,
    output: Mapping[str, Any],
    *,
    payload_content_type: str | None = None,
) -> Response:
    """The HTTP response for ``output`` (the output members of ``operation``, None = absent).

    Status is the operation's ``responseCode`` (default 200) unless a ``statusCode`` member is
    given. A blob or string ``payload`` member is sent raw with ``payload_content_type``
    (default ``application/octet-stream`` for blobs); otherwise the body is JSON
    (``application/json``), empty when the output has no body members at all. A header member
    named ``Content-Type`` overrides the default. No ``Content-Length`` is set.
    """
    status = int(operation.http.get("responseCode", 200))
    shape = operation.output_shape
    if shape is None:
        return Response(status, [("Content-Type", JSON_CONTENT_TYPE)], b"")
    headers: list[tuple[str, str]] = []
    body_members: list[str] = []
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        value = output.get(name)
        if location is None:
            body_members.append(name)
        elif value is None:
            continue
        elif location == "statusCode":
            status = int(value)
        elif location == "header":
            headers.append((wire_name(name, member), encode_text(member, value)))
        elif location == "headers":
            prefix = wire_name(name, member)
            headers.extend((prefix + str(k), str(v)) for k, v in value.items())
    content_type, body = _render_body(shape, output, body_members, payload_content_type)
    if not any(header.lower() == "content-type" for header, _ in headers):
        headers.append(("Content-Type", content_type))
    return Response(status, headers, body)


def serialize_error(error: LambdaApiError) -> Response:
    """The response for an AWS API error, in the form botocore's rest-json parser reads.

    The code travels in ``x-amzn-ErrorType`` (botocore takes what precedes any ``:``); the
    body carries ``Type`` (when the error class has one), the message under the class's
    ``message_key`` and the extra members of the error shape.
    """
    body: dict[str, str] = {}
    if error.body_type is not None:
        body["Type"] = error.body_type
    body[error.message_key] = error.message
    body.update(error.fields)
    headers = [("x-amzn-ErrorType", error.code), ("Content-Type", JSON_CONTENT_TYPE)]
    return Response(error.status, headers, json.dumps(body).encode())


def _from_query(
    operation: OperationModel,
    shape: StructureShape,
    member: Shape,
    key: str,
    query: Mapping[str, Sequence[str]],
) -> Any:
    if isinstance(member, MapShape):
        # A query map takes every key no other member (nor the template's literal query) owns.
        owned = {
            wire_name(name, other)
            for name, other in shape.members.items()
            if other.serialization.get("location") == "querystring" and other is not member
        }
        owned.update(k for k, _ in template_query(str(operation.http.get("requestUri", ""))))
        found = {k: list(v) for k, v in query.items() if k not in owned and v}
        if member.value.type_name != "list":
            return {k: v[0] for k, v in found.items()} or None
        return found or None
    values = query.get(key)
    if not values:
        return None
    if isinstance(member, ListShape):
        return [decode_text(member.member, v, key) for v in values]
    return decode_text(member, values[0], key)


def _from_body(shape: StructureShape, body_members: list[str], body: bytes) -> dict[str, Any]:
    payload = shape.serialization.get("payload")
    if payload is not None:
        member = shape.members[payload]
        if not body:
            return {}
        if member.type_name == "blob":
            return {payload: bytes(body)}
        if member.type_name == "string":
            try:
                return {payload: body.decode("utf-8")}
            except UnicodeDecodeError as e:
                raise WireFormatError(f"'{payload}' is not valid UTF-8") from e
        return {payload: decode_json(member, _load_json(body), payload)}
    if not body_members or not body.strip():
        return {}
    document = _load_json(body)
    if not isinstance(document, dict):
        raise WireFormatError("the body is not a JSON object")
    params: dict[str, Any] = {}
    for name in body_members:
        member = shape.members[name]
        raw = document.get(wire_name(name, member))
        if raw is not None:
            params[name] = decode_json(member, raw, name)
    return params


def _load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise WireFormatError(str(e)) from e


def _render_body(
    shape: StructureShape,
    output: Mapping[str, Any],
    body_members: list[str],
    payload_content_type: str | None,
) -> tuple[str, bytes]:
    payload = shape.serialization.get("payload")
    if payload is None:
        if not body_members:
            return JSON_CONTENT_TYPE, b""
        return JSON_CONTENT_TYPE, encode_body_members(shape, output, body_members)
    member = shape.members[payload]
    value = output.get(payload)
    if member.type_name in ("blob", "string"):
        default = BLOB_CONTENT_TYPE if member.type_name == "blob" else TEXT_CONTENT_TYPE
        raw = b"" if value is None else value.encode() if isinstance(value, str) else bytes(value)
        return payload_content_type or default, raw
    if value is None:
        return JSON_CONTENT_TYPE, b""
    return JSON_CONTENT_TYPE, json.dumps(encode_json(member, value)).encode()
