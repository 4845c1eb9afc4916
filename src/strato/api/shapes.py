"""Conversion between wire values and Python values, driven by botocore shapes.

Shared by the ``rest-json`` and ``json`` protocol modules; nothing here knows an operation or
a service. Two directions, each the inverse of what botocore's client does:

* ``decode_json`` / ``decode_text`` turn what a client sent (a ``json.loads`` result, or the
  text of a URI label, query value or header) into the Python values the client's caller
  passed to boto3: ``bytes`` for blobs, aware UTC ``datetime`` for timestamps, ``dict`` for
  structures and maps keyed by *member* name (not the wire ``locationName``).
* ``encode_json`` / ``encode_text`` do the opposite for responses, in the form botocore's
  parsers accept.

A wire value that does not fit its shape raises ``WireFormatError``; the protocol module that
called turns it into the AWS error of its protocol. Incoming timestamps are accepted in every
form botocore writes; outgoing ones follow botocore's defaults (``unixtimestamp`` in JSON
bodies, ``rfc822`` in headers) unless the shape's ``timestampFormat`` says otherwise.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from botocore.model import (  # type: ignore[import-untyped, unused-ignore]
    ListShape,
    MapShape,
    Shape,
    StructureShape,
)

from strato.errors import StratoError

JSON_TIMESTAMP_FORMAT = "unixtimestamp"
HEADER_TIMESTAMP_FORMAT = "rfc822"


class WireFormatError(StratoError):
    """A value on the wire does not have the type its shape declares.

    Never leaves ``strato.api``: the protocol modules map it to their AWS error
    (InvalidRequestContentException for rest-json, SerializationException for json).
    """


def wire_name(member_name: str, shape: Shape) -> str:
    """The key or header name a member travels under (its ``locationName``, else its name)."""
    name = shape.serialization.get("name", member_name)
    assert isinstance(name, str)
    return name


# ---------------------------------------------------------------------------- timestamps


def parse_timestamp(value: object) -> datetime:
    """Parse any timestamp form botocore sends (epoch number or string, ISO 8601, RFC 822).

    Returns an aware datetime in UTC; raises ``WireFormatError`` for anything else.
    """
    if isinstance(value, bool):
        raise WireFormatError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        text = value.strip()
        try:
            return datetime.fromtimestamp(float(text), UTC)
        except (ValueError, OverflowError):
            pass
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            try:
                parsed = parsedate_to_datetime(text)
            except (TypeError, ValueError) as e:
                raise WireFormatError(f"not a timestamp: {value!r}") from e
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    raise WireFormatError(f"not a timestamp: {value!r}")


def format_timestamp(value: object, timestamp_format: str) -> str | float:
    """Render a datetime (naive means UTC) or epoch number in ``timestamp_format``."""
    moment = value if isinstance(value, datetime) else parse_timestamp(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    fmt = timestamp_format.lower()
    if fmt == "unixtimestamp":
        return moment.timestamp()
    if fmt == "rfc822":
        return format_datetime(moment.replace(microsecond=0), usegmt=True)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _timestamp_format(shape: Shape, default: str) -> str:
    fmt = shape.serialization.get("timestampFormat", default)
    assert isinstance(fmt, str)
    return fmt


# ---------------------------------------------------------------------------- JSON bodies


def decode_json(shape: Shape, value: Any, path: str) -> Any:
    """Convert one ``json.loads`` value to the Python value of ``shape``.

    ``path`` names the value in error messages (``Code.ZipFile``). JSON nulls inside
    structures are dropped (as if absent); members the shape does not model are ignored.
    """
    if value is None:
        return None
    kind = shape.type_name
    if isinstance(shape, StructureShape):
        if shape.is_document_type:
            return value
        obj = _expect(value, dict, "an object", path)
        members: dict[str, Any] = {}
        for name, member in shape.members.items():
            raw = obj.get(wire_name(name, member))
            if raw is not None:
                members[name] = decode_json(member, raw, f"{path}.{name}" if path else name)
        return members
    if isinstance(shape, ListShape):
        items = _expect(value, list, "an array", path)
        return [decode_json(shape.member, v, f"{path}[{i}]") for i, v in enumerate(items)]
    if isinstance(shape, MapShape):
        obj = _expect(value, dict, "an object", path)
        return {k: decode_json(shape.value, v, f"{path}.{k}") for k, v in obj.items()}
    if kind == "blob":
        return decode_base64(_expect(value, str, "a base64 string", path), path)
    if kind == "timestamp":
        try:
            return parse_timestamp(value)
        except WireFormatError as e:
            raise WireFormatError(f"{e} at '{path}'") from e
    if kind == "boolean":
        return _expect(value, bool, "a boolean", path)
    if kind in ("integer", "long", "short", "byte"):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise WireFormatError(f"expected an integer at '{path}', got {value!r}")
        return value
    if kind in ("float", "double"):
        if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
            return float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise WireFormatError(f"expected a number at '{path}', got {value!r}")
        return float(value)
    return _expect(value, str, "a string", path)


def encode_json(shape: Shape, value: Any) -> Any:
    """Convert a Python value of ``shape`` to what ``json.dumps`` should write.

    Structure members that are None or not modelled are left out; bytes become base64,
    datetimes epoch seconds (or the shape's ``timestampFormat``), non-finite floats the
    strings botocore expects.
    """
    kind = shape.type_name
    if value is None:
        return None
    if isinstance(shape, StructureShape):
        if shape.is_document_type:
            return value
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            member_value = value.get(name)
            if member_value is not None:
                out[wire_name(name, member)] = encode_json(member, member_value)
        return out
    if isinstance(shape, ListShape):
        return [encode_json(shape.member, v) for v in value]
    if isinstance(shape, MapShape):
        return {str(k): encode_json(shape.value, v) for k, v in value.items()}
    if kind == "blob":
        return encode_base64(value)
    if kind == "timestamp":
        return format_timestamp(value, _timestamp_format(shape, JSON_TIMESTAMP_FORMAT))
    if kind in ("float", "double"):
        return _encode_float(float(value))
    return value


def encode_body_members(
    shape: StructureShape, output: Mapping[str, Any], names: list[str]
) -> bytes:
    """Serialise the members ``names`` of structure ``shape`` taken from ``output`` as JSON."""
    members = shape.members
    body = {
        wire_name(name, members[name]): encode_json(members[name], output[name])
        for name in names
        if output.get(name) is not None
    }
    return json.dumps(body, separators=(",", ":")).encode()


def decode_base64(text: str, path: str) -> bytes:
    """Decode base64 leniently about missing padding, strictly about the alphabet."""
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error as e:
        raise WireFormatError(f"'{path}' is not valid base64: {e}") from e


def encode_base64(value: bytes | bytearray | str) -> str:
    raw = value.encode() if isinstance(value, str) else bytes(value)
    return base64.b64encode(raw).decode("ascii")


def _encode_float(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _expect(value: Any, kind: type, what: str, path: str) -> Any:
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise WireFormatError(f"expected {what} at '{path}', got {json.dumps(value)[:64]}")
    return value


# ---------------------------------------------------------------------------- text locations


def decode_text(shape: Shape, text: str, path: str) -> Any:
    """Convert the text of a URI label, query value or header to the Python value of ``shape``.

    Headers carrying a ``jsonvalue`` string are base64 JSON; list-typed headers are
    comma-separated with optional double quotes, as botocore writes them.
    """
    kind = shape.type_name
    try:
        if kind == "string" and shape.serialization.get("jsonvalue"):
            return json.loads(decode_base64(text, path))
        if kind in ("integer", "long", "short", "byte"):
            return int(text)
        if kind in ("float", "double"):
            return float(text)
    except ValueError as e:
        raise WireFormatError(f"'{text}' is not a valid {kind} for '{path}'") from e
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise WireFormatError(f"'{text}' is not a valid boolean for '{path}'")
        return text.lower() == "true"
    if kind == "timestamp":
        return parse_timestamp(text)
    if kind == "blob":
        return decode_base64(text, path)
    if isinstance(shape, ListShape):
        return [decode_text(shape.member, item, path) for item in split_header(text)]
    return text


def encode_text(shape: Shape, value: Any) -> str:
    """Render a header value the way botocore's rest parsers read it back."""
    kind = shape.type_name
    if kind == "string" and shape.serialization.get("jsonvalue"):
        return encode_base64(json.dumps(value, separators=(",", ":")))
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        return str(format_timestamp(value, _timestamp_format(shape, HEADER_TIMESTAMP_FORMAT)))
    if kind == "blob":
        return encode_base64(value)
    if isinstance(shape, ListShape):
        return ", ".join(encode_text(shape.member, item) for item in value)
    if kind in ("float", "double"):
        return str(_encode_float(float(value)))
    return str(value)


def split_header(text: str) -> list[str]:
    """Split a list header on commas, honouring double-quoted items (RFC 7230)."""
    items: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    items.append("".join(current).strip())
    return items
