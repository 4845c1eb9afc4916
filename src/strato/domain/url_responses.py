"""From what a function returned to the HTTP response its URL answers, as AWS maps it
(https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html#urls-payloads, and AWS's
recorded answers): pure functions, no I/O.

- An object with a ``statusCode`` is an HTTP response: ``statusCode`` (a number or a numeric
  string), ``headers``, ``cookies`` (one ``Set-Cookie`` each), ``body`` (a string, sent as is,
  or base64-decoded when ``isBase64Encoded``). Without a ``Content-Type`` it is JSON.
- Anything else valid JSON is a 200 ``application/json`` response: a string's own text, any
  other value in compact JSON (``{"hello":"world"}``, ``3.1``, ``true``).
- A function error, or a result that is not JSON, is 502 ``Internal Server Error``.

Refusals before the function runs (403, 413, 429) are AWS's ``{"Message": ...}`` bodies with
``x-amzn-ErrorType``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

Headers = list[tuple[str, str]]

_JSON = "application/json"
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: Headers the HTTP transport writes itself (framing, connection management).
_TRANSPORT_HEADERS = frozenset({"content-length", "transfer-encoding", "connection",
                                "keep-alive", "upgrade"})
#: https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html: what a refused caller reads.
FORBIDDEN_MESSAGE = ("Forbidden. For troubleshooting Function URL authorization issues, see: "
                     "https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html")


@dataclass(frozen=True)
class UrlResponse:
    """One HTTP answer of a function URL. ``headers`` keep the function's names and order;
    ``Content-Length`` is the transport's to add."""

    status: int
    headers: Headers = field(default_factory=list)
    body: bytes = b""


def _error(status: int, error_type: str, message: str) -> UrlResponse:
    body = json.dumps({"Message": message}, separators=(",", ":")).encode()
    return UrlResponse(status, [("Content-Type", _JSON), ("x-amzn-ErrorType", error_type)], body)


#: A function error (or a response that cannot be mapped).
FUNCTION_ERROR = UrlResponse(502, [("Content-Type", _JSON)], b"Internal Server Error")
FORBIDDEN = _error(403, "AccessDeniedException", FORBIDDEN_MESSAGE)
THROTTLED = _error(429, "TooManyRequestsException", "Rate Exceeded.")


def too_large(limit: int) -> UrlResponse:
    """A request (or the event made of it) over the synchronous payload limit."""
    return _error(413, "RequestEntityTooLargeException",
                  f"Request must be smaller than {limit} bytes for the InvokeFunction operation")


def failed(status: int, error_type: str, message: str) -> UrlResponse:
    """Another refusal of the invoke (the function is not ready, was just deleted...)."""
    return _error(status, error_type, message)


def url_response(payload: bytes) -> UrlResponse:
    """The HTTP response for a function's successful result ``payload`` (JSON bytes)."""
    try:
        result = json.loads(payload) if payload else None
    except (ValueError, UnicodeDecodeError):
        return FUNCTION_ERROR
    if isinstance(result, dict) and "statusCode" in result:
        return _http_response(result)
    if isinstance(result, str):
        body = result.encode()
    elif result is None:
        body = b"" if not payload else b"null"
    else:
        body = json.dumps(result, separators=(",", ":"), ensure_ascii=False).encode()
    return UrlResponse(200, [("Content-Type", _JSON)], body)


def _http_response(result: dict[str, Any]) -> UrlResponse:
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError):
        return FUNCTION_ERROR
    if not 100 <= status <= 599:
        return FUNCTION_ERROR
    headers: Headers = []
    given = result.get("headers")
    if isinstance(given, dict):
        headers = [(name, text) for name, value in given.items() if value is not None
                   and _sendable(name, text := _header_value(value))]
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.insert(0, ("Content-Type", _JSON))
    cookies = result.get("cookies")
    if isinstance(cookies, list):
        headers += [("Set-Cookie", str(c)) for c in cookies if _sendable("Set-Cookie", str(c))]
    body = result.get("body")
    if body is None:
        data = b""
    elif not isinstance(body, str):
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    elif result.get("isBase64Encoded") is True:
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return FUNCTION_ERROR
    else:
        data = body.encode()
    return UrlResponse(status, headers, data)


def _sendable(name: Any, value: str) -> bool:
    """Whether a header the function returned can be sent as given: a token name the
    transport does not set itself, a value of one latin-1 line (no header injection)."""
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        return False
    if name.lower() in _TRANSPORT_HEADERS or "\r" in value or "\n" in value:
        return False
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
