"""botocore's ``query`` protocol (IAM's and STS's): form-encoded requests in, XML out.

A request is ``POST /`` with an ``application/x-www-form-urlencoded`` body: ``Action`` names
the operation, ``Version`` the API version, and each input member is a key (a structure's
members dotted, ``Tags.member.1.Key``; a list's items ``<name>.member.<n>``, or ``<name>.<n>``
when flattened; a map's ``<name>.entry.<n>.key``/``.value``). A response is
``<{Op}Response xmlns="<the model's xmlNamespace>"><{Op}Result>…</{Op}Result>
<ResponseMetadata><RequestId>…</RequestId></ResponseMetadata></{Op}Response>``; an error is
``<ErrorResponse><Error><Type>Sender|Receiver</Type><Code>…</Code><Message>…</Message>
</Error><RequestId>…</RequestId></ErrorResponse>``, as botocore's ``QueryParser`` reads them.
Scalars convert as ``strato.api.shapes`` does for text; timestamps are written in ISO 8601.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from botocore.model import (  # type: ignore[import-untyped, unused-ignore]
    ListShape,
    MapShape,
    OperationModel,
    ServiceModel,
    Shape,
    StructureShape,
)

from strato.api.rest_json import Response
from strato.api.shapes import WireFormatError, decode_text
from strato.domain.errors import LambdaApiError

CONTENT_TYPE = "text/xml"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def parse_form(body: bytes) -> dict[str, str]:
    """The form's keys and values (the first of a repeated key); WireFormatError when the body
    is not UTF-8."""
    try:
        text = body.decode()
    except UnicodeDecodeError as e:
        raise WireFormatError("the form is not UTF-8") from e
    form: dict[str, str] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        form.setdefault(key, value)
    return form


def operation_for(service: ServiceModel, form: Mapping[str, str]) -> OperationModel | None:
    """The operation ``Action`` names, or None when the service has no such operation."""
    action = form.get("Action", "")
    if action not in service.operation_names:
        return None
    operation: OperationModel = service.operation_model(action)
    return operation


def parse_request(operation: OperationModel, form: Mapping[str, str]) -> dict[str, Any]:
    """The input parameters of ``operation`` from the form. Absent members stay absent;
    ``required`` is not checked here. WireFormatError for a value of the wrong type."""
    shape = operation.input_shape
    if shape is None:
        return {}
    params: dict[str, Any] = _structure(shape, form, "")
    return params


def _key(name: str, shape: Shape) -> str:
    return str(shape.serialization.get("name", name))


def _structure(shape: StructureShape, form: Mapping[str, str], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, member in shape.members.items():
        value = _value(member, form, prefix + _key(name, member))
        if value is not None:
            out[name] = value
    return out


def _value(shape: Shape, form: Mapping[str, str], key: str) -> Any:
    if isinstance(shape, StructureShape):
        if not any(k.startswith(key + ".") for k in form):
            return None
        return _structure(shape, form, key + ".")
    if isinstance(shape, ListShape):
        item_prefix = key if shape.serialization.get("flattened") else f"{key}.member"
        items: list[Any] = []
        while (item := _value(shape.member, form, f"{item_prefix}.{len(items) + 1}")) is not None:
            items.append(item)
        if not items and key in form:  # an empty list is sent as the bare key
            return []
        return items or None
    if isinstance(shape, MapShape):
        entries: dict[Any, Any] = {}
        entry_prefix = key if shape.serialization.get("flattened") else f"{key}.entry"
        index = 1
        while f"{entry_prefix}.{index}.key" in form:
            entry = f"{entry_prefix}.{index}"
            entries[form[f"{entry}.key"]] = _value(shape.value, form, f"{entry}.value")
            index += 1
        return entries or None
    text = form.get(key)
    if text is None:
        return None
    return decode_text(shape, text, key)


def serialize_response(service: ServiceModel, operation: OperationModel,
                       output: Mapping[str, Any], request_id: str) -> Response:
    """The HTTP 200 response carrying ``output`` (the output members; None means absent)."""
    name = operation.name
    shape = operation.output_shape
    result = ""
    if shape is not None:
        wrapper = shape.serialization.get("resultWrapper", f"{name}Result")
        result = f"<{wrapper}>{_members(shape, output)}</{wrapper}>"
    body = (f'<{name}Response xmlns="{service.metadata.get("xmlNamespace", "")}">{result}'
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
            f"</{name}Response>")
    return Response(200, [("Content-Type", CONTENT_TYPE)], body.encode())


def _members(shape: StructureShape, values: Mapping[str, Any]) -> str:
    parts = []
    for name, member in shape.members.items():
        value = values.get(name)
        if value is not None:
            tag = _key(name, member)
            parts.append(_element(member, tag, value))
    return "".join(parts)


def _element(shape: Shape, tag: str, value: Any) -> str:
    if isinstance(shape, StructureShape):
        return f"<{tag}>{_members(shape, value)}</{tag}>"
    if isinstance(shape, ListShape):
        item_tag = _key("member", shape.member)
        items = "".join(_element(shape.member, item_tag, v) for v in value)
        if shape.serialization.get("flattened"):
            return "".join(_element(shape.member, tag, v) for v in value)
        return f"<{tag}>{items}</{tag}>"
    if isinstance(shape, MapShape):
        entries = "".join(
            f"<entry>{_element(shape.key, 'key', k)}{_element(shape.value, 'value', v)}</entry>"
            for k, v in value.items())
        return f"<{tag}>{entries}</{tag}>"
    return f"<{tag}>{escape(_text(shape, value))}</{tag}>"


def _text(shape: Shape, value: Any) -> str:
    kind = shape.type_name
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def serialize_error(error: LambdaApiError, request_id: str, *, code: str | None = None,
                    sender_fault: bool = True) -> Response:
    """``error`` in the query protocol's form; ``code`` replaces ``error.code`` (the query
    code of an error the other protocols name otherwise)."""
    fault = "Sender" if sender_fault else "Receiver"
    body = (f"<ErrorResponse><Error><Type>{fault}</Type><Code>{escape(code or error.code)}</Code>"
            f"<Message>{escape(error.message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>")
    return Response(error.status, [("Content-Type", CONTENT_TYPE)], body.encode())
