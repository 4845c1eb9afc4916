"""CORS for function URLs, from the URL's ``Cors`` configuration: pure decisions, no I/O
(https://docs.aws.amazon.com/lambda/latest/dg/urls-configuration.html#urls-cors).

With a ``Cors`` configuration, Lambda answers a preflight (``OPTIONS`` carrying ``Origin`` and
``Access-Control-Request-Method``) itself, without invoking the function, and puts the
``Access-Control-*`` headers on every response to a request from an allowed origin, in place of
any the function returned. Without one, CORS is the function's business: preflights reach it
and its headers pass unchanged.

An origin is allowed when ``AllowOrigins`` holds it (compared case-insensitively) or ``*``.
``Access-Control-Allow-Origin`` is ``*`` for a wildcard without credentials, and otherwise the
request's origin, with ``Vary: Origin`` so caches keep the answers to each origin apart.
A request from an origin that is not allowed gets no ``Access-Control-*`` header at all, so
the browser refuses the response.
"""

from __future__ import annotations

from collections.abc import Mapping

from strato.domain.function_urls import Cors

Headers = list[tuple[str, str]]
_PREFIX = "access-control-"


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    """Whether a request (header names lower-case) is a CORS preflight."""
    return (method == "OPTIONS" and "origin" in headers
            and "access-control-request-method" in headers)


def _allowed_origin(cors: Cors, origin: str | None) -> str | None:
    """The ``Access-Control-Allow-Origin`` for ``origin``, or None when it is not allowed."""
    if not origin:
        return None
    wanted = origin.lower()
    if any(allowed.lower() == wanted for allowed in cors.allow_origins if allowed != "*"):
        return origin
    if "*" in cors.allow_origins:
        return origin if cors.allow_credentials else "*"
    return None


def _common(cors: Cors, allow_origin: str) -> Headers:
    headers: Headers = [("Access-Control-Allow-Origin", allow_origin)]
    if cors.allow_credentials:
        headers.append(("Access-Control-Allow-Credentials", "true"))
    if allow_origin != "*":
        headers.append(("Vary", "Origin"))
    return headers


def preflight_headers(cors: Cors, headers: Mapping[str, str]) -> Headers:
    """The headers of strato's answer (200, no body) to a preflight; none when its origin is
    not allowed."""
    allow_origin = _allowed_origin(cors, headers.get("origin"))
    if allow_origin is None:
        return []
    answer = _common(cors, allow_origin)
    if cors.allow_methods:
        answer.append(("Access-Control-Allow-Methods", ",".join(cors.allow_methods)))
    if cors.allow_headers:
        answer.append(("Access-Control-Allow-Headers", ",".join(cors.allow_headers)))
    if cors.expose_headers:
        answer.append(("Access-Control-Expose-Headers", ",".join(cors.expose_headers)))
    if cors.max_age is not None:
        answer.append(("Access-Control-Max-Age", str(cors.max_age)))
    return answer


def apply_to_response(cors: Cors, origin: str | None, headers: Headers) -> Headers:
    """A response's headers with the function's own ``Access-Control-*`` replaced by the
    configuration's for the request's ``origin`` (none when it is not allowed)."""
    kept = [(name, value) for name, value in headers if not name.lower().startswith(_PREFIX)]
    allow_origin = _allowed_origin(cors, origin)
    if allow_origin is None:
        return kept
    added = _common(cors, allow_origin)
    if cors.expose_headers:
        added.append(("Access-Control-Expose-Headers", ",".join(cors.expose_headers)))
    if allow_origin != "*":
        kept = [(n, v) for n, v in kept if not (n.lower() == "vary" and v.lower() == "origin")]
    return kept + added
