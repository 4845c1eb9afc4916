"""The function URL event (payload 2.0) and response mapping, against AWS's documented example
event and AWS's recorded answers."""

from __future__ import annotations

import base64
import json

import pytest

from strato.domain.url_events import IamCaller, is_text_content_type, request_time, url_event
from strato.domain.url_responses import FUNCTION_ERROR, url_response

#: https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html#urls-request-payload
#: (the documented example; the ids, caller and request time are its placeholders).
DOCUMENTED = {
    "version": "2.0",
    "routeKey": "$default",
    "rawPath": "/my/path",
    "rawQueryString": "parameter1=value1&parameter1=value2&parameter2=value",
    "cookies": ["cookie1", "cookie2"],
    "headers": {"header1": "value1", "header2": "value1,value2"},
    "queryStringParameters": {"parameter1": "value1,value2", "parameter2": "value"},
    "requestContext": {
        "accountId": "123456789012",
        "apiId": "<urlid>",
        "authorizer": {"iam": {
            "accessKey": "AKIA...", "accountId": "111122223333", "callerId": "AIDA...",
            "cognitoIdentity": None, "principalOrgId": None,
            "userArn": "arn:aws:iam::111122223333:user/example-user", "userId": "AIDA...",
        }},
        "domainName": "<url-id>.lambda-url.us-west-2.on.aws",
        "domainPrefix": "<url-id>",
        "http": {"method": "POST", "path": "/my/path", "protocol": "HTTP/1.1",
                 "sourceIp": "123.123.123.123", "userAgent": "agent"},
        "requestId": "id",
        "routeKey": "$default",
        "stage": "$default",
        "time": "12/Mar/2020:19:03:58 +0000",
        "timeEpoch": 1584039838000,
    },
    "body": "Hello from client!",
    "isBase64Encoded": False,
}


def _documented_request(content_type: str | None = "text/plain") -> dict[str, object]:
    headers = {"header1": "value1", "header2": "value1,value2", "cookie": "cookie1; cookie2",
               "user-agent": "agent"}
    if content_type is not None:
        headers["content-type"] = content_type
    return url_event(
        "POST", "/my/path?parameter1=value1&parameter1=value2&parameter2=value", headers,
        b"Hello from client!", url_id="<url-id>", domain_name="<url-id>.lambda-url.us-west-2.on.aws",
        source_ip="123.123.123.123", request_id="id", epoch_ms=1584039838000,
        caller=IamCaller("AKIA...", "111122223333", "arn:aws:iam::111122223333:user/example-user",
                         "AIDA..."),
    )


def test_the_documented_example_event() -> None:
    event = _documented_request()
    # The example shows neither the user agent nor the content type among its headers (its
    # userAgent and text body say they were sent); the rest is the example's, key for key.
    assert event["headers"] == {**DOCUMENTED["headers"], "user-agent": "agent",  # type: ignore[dict-item]
                                "content-type": "text/plain"}
    expected = {**DOCUMENTED, "headers": event["headers"]}
    expected["requestContext"] = {**DOCUMENTED["requestContext"], "apiId": "<url-id>",  # type: ignore[dict-item]
                                  "accountId": "111122223333"}
    assert event == expected


def test_an_unsigned_caller_is_anonymous_without_authorizer() -> None:
    event = url_event("GET", "/", {}, b"", url_id="u", domain_name="h", source_ip="1.2.3.4",
                      request_id="r", epoch_ms=0)
    context = event["requestContext"]
    assert context["accountId"] == "anonymous" and "authorizer" not in context
    assert event["rawQueryString"] == "" and event["isBase64Encoded"] is False
    for absent in ("body", "cookies", "queryStringParameters"):
        assert absent not in event


def test_path_and_query_as_sent_with_decoded_parameters() -> None:
    # AWS's recorded echo: the path keeps its percent-encoding, parameters are decoded.
    event = url_event("POST", "/pa2%Fth/1?q=query&multiQuery=foo&multiQuery=%2Fbar", {}, b"",
                      url_id="u", domain_name="h", source_ip="1.2.3.4", request_id="r",
                      epoch_ms=0)
    assert event["rawPath"] == event["requestContext"]["http"]["path"] == "/pa2%Fth/1"
    assert event["rawQueryString"] == "q=query&multiQuery=foo&multiQuery=%2Fbar"
    assert event["queryStringParameters"] == {"q": "query", "multiQuery": "foo,/bar"}


@pytest.mark.parametrize(("content_type", "text"), [
    ("text/plain", True), ("text/html; charset=utf-8", True), ("application/json", True),
    ("Application/JSON", True), ("application/xml", True), ("application/javascript", True),
    ("application/x-www-form-urlencoded", False), ("multipart/form-data; boundary=x", False),
    ("application/octet-stream", False), ("image/png", False), (None, False), ("", False),
])
def test_which_bodies_arrive_as_text(content_type: str | None, text: bool) -> None:
    assert is_text_content_type(content_type) is text


def test_binary_bodies_arrive_base64() -> None:
    data = bytes(range(256))
    event = url_event("PUT", "/", {"content-type": "application/octet-stream"}, data,
                      url_id="u", domain_name="h", source_ip="1.2.3.4", request_id="r", epoch_ms=0)
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == data
    # Not UTF-8 although it claims to be text: it reaches the function intact, as base64.
    event = url_event("PUT", "/", {"content-type": "text/plain"}, b"\xff\xfe", url_id="u",
                      domain_name="h", source_ip="1.2.3.4", request_id="r", epoch_ms=0)
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"\xff\xfe"


def test_request_time_is_english_and_utc() -> None:
    assert request_time(1583348638390) == "04/Mar/2020:19:03:58 +0000"


# responses: AWS's recorded answers (url.invoke.*, url.status_and_headers) ----------------------

@pytest.mark.parametrize(("returned", "body"), [
    ("hello", b"hello"),
    ({"hello": "world"}, b'{"hello":"world"}'),
    (3, b"3"),
    (3.1, b"3.1"),
    (True, b"true"),
    (["hello", 3, True], b'["hello",3,true]'),
    ({"statusCode": 200, "body": "body123"}, b"body123"),
    ({"statusCode": 200, "body": json.dumps({"hello": "world"})}, b'{"hello": "world"}'),
])
def test_recorded_result_mappings(returned: object, body: bytes) -> None:
    answer = url_response(json.dumps(returned).encode())
    assert answer.status == 200 and answer.body == body
    assert answer.headers == [("Content-Type", "application/json")]


def test_status_headers_and_cookies() -> None:
    answer = url_response(json.dumps({
        "statusCode": "418", "body": "i'm a teapot",
        "headers": {"my-custom-header": "Custom Value", "Content-Type": "text/plain"},
        "cookies": ["a=1; Path=/", "b=2"],
    }).encode())
    assert answer.status == 418 and answer.body == b"i'm a teapot"
    assert answer.headers == [("my-custom-header", "Custom Value"), ("Content-Type", "text/plain"),
                              ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2")]


def test_base64_bodies_are_decoded() -> None:
    data = bytes(range(256))
    answer = url_response(json.dumps({"statusCode": 200, "isBase64Encoded": True,
                                      "body": base64.b64encode(data).decode()}).encode())
    assert answer.body == data


@pytest.mark.parametrize("payload", [
    b"not json",
    json.dumps({"statusCode": "teapot"}).encode(),
    json.dumps({"statusCode": 99}).encode(),
    json.dumps({"statusCode": 200, "isBase64Encoded": True, "body": "%%%"}).encode(),
])
def test_results_that_cannot_be_mapped_are_502(payload: bytes) -> None:
    assert url_response(payload) == FUNCTION_ERROR


def test_headers_that_cannot_be_sent_as_given_are_dropped() -> None:
    answer = url_response(json.dumps({"statusCode": 200, "headers": {
        "x-injected": "a\r\nSet-Cookie: evil=1", "Content-Length": "999", "bad name": "x",
        "x-unicode": "\u2603", "x-ok": 5, "x-flag": True,
    }, "cookies": ["c=1\r\nx: y"]}).encode())
    assert answer.headers == [("Content-Type", "application/json"), ("x-ok", "5"),
                              ("x-flag", "true")]
