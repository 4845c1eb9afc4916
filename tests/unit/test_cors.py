"""CORS for function URLs (``strato.domain.cors``), as AWS documents it
(https://docs.aws.amazon.com/lambda/latest/dg/urls-configuration.html#urls-cors)."""

from __future__ import annotations

import pytest

from strato.domain.cors import apply_to_response, is_preflight, preflight_headers
from strato.domain.function_urls import Cors

FULL = Cors(allow_credentials=True, allow_headers=("x-custom", "content-type"),
            allow_methods=("GET", "POST"), allow_origins=("https://app.example.com",),
            expose_headers=("x-request",), max_age=300)


@pytest.mark.parametrize(("method", "headers", "expected"), [
    ("OPTIONS", {"origin": "https://a", "access-control-request-method": "POST"}, True),
    ("OPTIONS", {"origin": "https://a"}, False),
    ("OPTIONS", {"access-control-request-method": "POST"}, False),
    ("GET", {"origin": "https://a", "access-control-request-method": "POST"}, False),
])
def test_what_a_preflight_is(method: str, headers: dict[str, str], expected: bool) -> None:
    assert is_preflight(method, headers) is expected


def test_preflight_from_an_allowed_origin() -> None:
    headers = preflight_headers(FULL, {"origin": "https://APP.example.com",
                                       "access-control-request-method": "POST"})
    assert headers == [
        ("Access-Control-Allow-Origin", "https://APP.example.com"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Vary", "Origin"),
        ("Access-Control-Allow-Methods", "GET,POST"),
        ("Access-Control-Allow-Headers", "x-custom,content-type"),
        ("Access-Control-Expose-Headers", "x-request"),
        ("Access-Control-Max-Age", "300"),
    ]


def test_preflight_from_another_origin_gets_no_cors_headers() -> None:
    assert preflight_headers(FULL, {"origin": "https://evil.example.com",
                                    "access-control-request-method": "POST"}) == []


def test_wildcard_origin() -> None:
    cors = Cors(allow_origins=("*",), allow_methods=("*",))
    assert preflight_headers(cors, {"origin": "https://x", "access-control-request-method": "PUT"}) == [
        ("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "*")]
    # With credentials, "*" is not allowed by browsers: the origin is echoed instead.
    credentialed = Cors(allow_origins=("*",), allow_credentials=True)
    assert apply_to_response(credentialed, "https://x", []) == [
        ("Access-Control-Allow-Origin", "https://x"), ("Access-Control-Allow-Credentials", "true"),
        ("Vary", "Origin")]


def test_response_headers_replace_the_functions() -> None:
    function_headers = [("Content-Type", "text/plain"), ("Access-Control-Allow-Origin", "*"),
                        ("access-control-max-age", "1")]
    assert apply_to_response(FULL, "https://app.example.com", function_headers) == [
        ("Content-Type", "text/plain"),
        ("Access-Control-Allow-Origin", "https://app.example.com"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Vary", "Origin"),
        ("Access-Control-Expose-Headers", "x-request"),
    ]
    assert apply_to_response(FULL, "https://other", function_headers) == [
        ("Content-Type", "text/plain")]
    assert apply_to_response(FULL, None, function_headers) == [("Content-Type", "text/plain")]
