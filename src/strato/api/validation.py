"""Model constraints of a request, reported in AWS's exact words.

``validate`` checks what botocore's service model declares (``required``, ``min``/``max``,
``pattern``, ``enum``), generically for any shape; service-specific limits stricter than the
model (Lambda's 10,240 MB memory ceiling while the model says 32,768) are applied by the
services. Each violation is one item of AWS's ValidationException text::

    Value 'my-function!' at 'functionName' failed to satisfy constraint: Member must ...

Conventions copied from AWS's (Coral's) validator, as seen in recorded Lambda responses:

* the member path is the member name with its first letter lower-cased, nested members
  dotted (``routingConfig.additionalVersionWeights``); structures inside a list are
  ``list.<1-based index>.member.field``;
* values are rendered as Java would: lists ``[a, b]``, maps ``{k=v}``, floats ``2.0``,
  booleans ``true``; values of ``sensitive`` shapes are left out (``Value at 'x' ...``);
* per member the pattern is reported before the length or value bound, then the enum;
* a scalar list element or map key/value that breaks its shape's constraints is reported
  once for the whole list or map, listing *every* constraint of the element shape:
  ``Member must satisfy constraint: [Member must have length less than or equal to 6, ...,
  Member must not be null]`` (``Map keys must ...`` / ``Map value must ...`` for maps; no
  ``not null`` entry for a sensitive element shape, as for environment variable names).

Patterns are Java regexes matched whole (``re.fullmatch``); one Python cannot compile (or
would read differently, e.g. a nested character class) is not checked.
"""

from __future__ import annotations

import functools
import math
import re
import warnings
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from botocore.model import (  # type: ignore[import-untyped, unused-ignore]
    ListShape,
    MapShape,
    Shape,
    StructureShape,
)

from strato.domain.errors import ValidationException

_NOT_NULL = "Member must not be null"

#: Patterns AWS checks and reports for a shape (by its model name) where they differ from
#: the model botocore ships. Lambda's ``TaggableResource``: AWS answered TagResource,
#: UntagResource and ListTags with this pattern (layers taggable, no network connectors) in
#: the recording of 2025-11-25, while the model lists other resource kinds.
_PATTERN_AS_SERVED = {
    "TaggableResource": (
        r"arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:"
        r"\d{12}:(function:[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?|layer:([a-zA-Z0-9-_]+)"
        r"|code-signing-config:csc-[a-z0-9]{17}|event-source-mapping:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}"
        r"-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|capacity-provider:[a-zA-Z0-9-_]+)"
    ),
    # GetLayerVersionByArn's Arn, as AWS reported it in the recording of 2026-01-12 (the
    # model wraps the same alternatives in one more group).
    "LayerVersionArn": (
        r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:"
        r"\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)"
    ),
}

#: Enum values in the order AWS lists them (a Java set's), by shape name, where it is not the
#: model's: ``InvokeMode`` as recorded on 2025-11-24 (``[RESPONSE_STREAM, BUFFERED]``).
_ENUM_AS_SERVED = {"InvokeMode": ("RESPONSE_STREAM", "BUFFERED")}


def _enum_text(shape: Shape) -> str:
    values = _ENUM_AS_SERVED.get(shape.name, shape.metadata["enum"])
    return f"Member must satisfy enum value set: [{', '.join(values)}]"


def _pattern(shape: Shape) -> str | None:
    """The pattern a string of ``shape`` must match, as AWS reports it."""
    pattern: str | None = _PATTERN_AS_SERVED.get(shape.name, shape.metadata.get("pattern"))
    return pattern


def validate(shape: Shape, params: Mapping[str, Any]) -> list[str]:
    """Every constraint violation of ``params`` (input members of structure ``shape``).

    Returns AWS's item texts in model member order, depth first; empty when valid. Values of
    an unexpected Python type are not checked (``parse_request`` has typed them already).
    """
    items: list[str] = []
    if isinstance(shape, StructureShape):
        _check_structure(shape, params, "", items)
    return items


def validation_error(items: list[str]) -> ValidationException:
    """AWS's ``N validation error(s) detected: ...`` for the items of ``validate``."""
    return ValidationException.from_items(items)


def _check_structure(
    shape: StructureShape, value: Mapping[str, Any], prefix: str, items: list[str]
) -> None:
    required = set(shape.required_members)
    for name, member in shape.members.items():
        path = prefix + name[:1].lower() + name[1:]
        member_value = value.get(name)
        if member_value is None:
            if name in required:
                items.append(f"Value null at '{path}' failed to satisfy constraint: {_NOT_NULL}")
            continue
        _check_value(member, member_value, path, items)


def _check_value(shape: Shape, value: Any, path: str, items: list[str]) -> None:
    items.extend(_item(shape, value, path, text) for text in _violations(shape, value))
    if isinstance(shape, StructureShape) and isinstance(value, Mapping):
        if not shape.is_document_type:
            _check_structure(shape, value, path + ".", items)
    elif isinstance(shape, ListShape) and isinstance(value, list):
        element = shape.member
        if _is_container(element):
            for index, item in enumerate(value, start=1):
                if item is not None:
                    _check_value(element, item, f"{path}.{index}.member", items)
        elif any(item is None or _violations(element, item) for item in value):
            items.append(_item(shape, value, path, f"Member must {_all_of(element)}"))
    elif isinstance(shape, MapShape) and isinstance(value, Mapping):
        if any(_violations(shape.key, key) for key in value):
            items.append(_item(shape, value, path, f"Map keys must {_all_of(shape.key, not_null=False)}"))
        if _is_container(shape.value):
            for key, item in value.items():
                if item is not None:
                    _check_value(shape.value, item, f"{path}.{key}", items)
        elif any(item is None or _violations(shape.value, item) for item in value.values()):
            items.append(_item(shape, value, path, f"Map value must {_all_of(shape.value)}"))


def _violations(shape: Shape, value: Any) -> list[str]:
    """The constraint texts of ``shape`` that ``value`` itself breaks (not its members)."""
    found: list[str] = []
    pattern = _pattern(shape)
    if pattern is not None and isinstance(value, str):
        compiled = _compile(pattern)
        if compiled is not None and compiled.fullmatch(value) is None:
            found.append(f"Member must satisfy regular expression pattern: {pattern}")
    size, noun = _measure(value)
    if size is not None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and size < low:
            found.append(f"Member must have {noun} greater than or equal to {_java(low)}")
        if high is not None and size > high:
            found.append(f"Member must have {noun} less than or equal to {_java(high)}")
    enum = shape.metadata.get("enum")
    if enum and isinstance(value, str) and value not in enum:
        found.append(_enum_text(shape))
    return found


def _all_of(shape: Shape, *, not_null: bool = True) -> str:
    """``satisfy constraint: [<every constraint of shape>, Member must not be null]``; map
    keys (``not_null=False``) are listed without the last one, as AWS lists them."""
    texts: list[str] = []
    noun = "value" if shape.type_name in _NUMERIC else "length"
    for key, relation in (("max", "less than"), ("min", "greater than")):
        bound = shape.metadata.get(key)
        if bound is not None:
            texts.append(f"Member must have {noun} {relation} or equal to {_java(bound)}")
    pattern = _pattern(shape)
    if pattern is not None:
        texts.append(f"Member must satisfy regular expression pattern: {pattern}")
    if shape.metadata.get("enum"):
        texts.append(_enum_text(shape))
    if not_null and not shape.metadata.get("sensitive"):
        # Recorded: "[..., Member must not be null]" for Lambda's alias weights and CORS
        # methods, but no such entry for environment variable names, which are sensitive.
        texts.append(_NOT_NULL)
    return f"satisfy constraint: [{', '.join(texts)}]"


_NUMERIC = ("integer", "long", "short", "byte", "float", "double")


def _measure(value: Any) -> tuple[float | None, str]:
    """What ``min``/``max`` bound for ``value``: its number or its length (Java's UTF-16)."""
    if isinstance(value, bool):
        return None, ""
    if isinstance(value, int | float):
        return value, "value"
    if isinstance(value, str):
        return len(value.encode("utf-16-le")) // 2, "length"
    if isinstance(value, bytes | bytearray | list | Mapping):
        return len(value), "length"
    return None, ""


def _item(shape: Shape, value: Any, path: str, constraint: str) -> str:
    shown = "" if shape.metadata.get("sensitive") else f" '{_java(value)}'"
    return f"Value{shown} at '{path}' failed to satisfy constraint: {constraint}"


def _is_container(shape: Shape) -> bool:
    return isinstance(shape, StructureShape | ListShape | MapShape)


def _java(value: Any) -> str:
    """``value`` as Java's ``toString`` renders it in AWS's messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e7:
            return f"{value:.1f}"
        return repr(value).replace("e+", "E").replace("e-", "E-").replace("inf", "Infinity")
    if isinstance(value, bytes | bytearray):
        return f"java.nio.HeapByteBuffer[pos=0 lim={len(value)} cap={len(value)}]"
    if isinstance(value, datetime):
        return value.strftime("%a %b %d %H:%M:%S UTC %Y")
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_java(k)}={_java(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_java(v) for v in value) + "]"
    return str(value)


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str] | None:
    """Memoised compilation of a model pattern; None when Python cannot read it as Java does."""
    with warnings.catch_warnings():
        # A FutureWarning marks syntax (nested sets, "--") whose meaning differs from Java's.
        warnings.simplefilter("error", FutureWarning)
        try:
            return re.compile(pattern)
        except (re.error, FutureWarning):
            return None
