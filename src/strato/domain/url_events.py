"""The event a function receives from its URL: API Gateway's payload format 2.0, as function
URLs send it (https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html#urls-payloads).

``url_event`` is pure: the edge gives it the request as the client sent it (the path and query
after the URL's own part, header names lower-cased, a repeated header's values comma-joined)
and what it knows of the call (URL id, caller, request id, time). What AWS does, it does:

- ``rawPath`` and ``requestContext.http.path`` are the path as sent (still percent-encoded),
  ``rawQueryString`` the query as sent; ``queryStringParameters`` holds the decoded values,
  those of a repeated key joined with commas; it is absent without a query.
- The ``cookie`` header moves to ``cookies`` (one entry per cookie); absent without one.
- ``body`` is absent when the request has none; otherwise it is the body's text, or its
  base64 with ``isBase64Encoded`` when the content type is not a text type
  (``is_text_content_type``).
- ``requestContext.accountId`` is ``anonymous`` for an unsigned caller (AuthType NONE) and the
  caller's account under AuthType AWS_IAM, which also fills ``authorizer.iam``.
"""

from __future__ import annotations

import base64
import functools
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

#: ``requestContext.accountId`` of a caller that did not sign its request.
ANONYMOUS = "anonymous"

#: Media types that arrive as text besides ``text/*``; everything else (forms, multipart,
#: images, octet streams, a request without a content type) arrives base64-encoded, as AWS's
#: HTTP front end does it (observed on AWS: even ``application/x-www-form-urlencoded``).
_TEXT_TYPES = frozenset({"application/json", "application/javascript", "application/xml"})
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class IamCaller:
    """Who signed a request to an AWS_IAM URL (``requestContext.authorizer.iam``)."""

    access_key: str
    account_id: str
    user_arn: str
    user_id: str


def is_text_content_type(content_type: str | None) -> bool:
    """Whether a body of this ``Content-Type`` reaches the function as text (else base64)."""
    if not content_type:
        return False
    media = content_type.partition(";")[0].strip().lower()
    return media.startswith("text/") or media in _TEXT_TYPES


def request_time(epoch_ms: int) -> str:
    """``requestContext.time``: ``12/Mar/2020:19:03:58 +0000`` (English month, whatever the
    locale)."""
    return _second(epoch_ms // 1000)


@functools.lru_cache(maxsize=4)  # requests of the same second share their text
def _second(epoch_s: int) -> str:
    t = time.gmtime(epoch_s)
    return (f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000")


def query_parameters(raw_query: str) -> dict[str, str]:
    """``queryStringParameters``: decoded, a repeated key's values joined with commas."""
    joined: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


def url_event(
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
    *,
    url_id: str,
    domain_name: str,
    source_ip: str,
    request_id: str,
    epoch_ms: int,
    account_id: str = ANONYMOUS,
    caller: IamCaller | None = None,
) -> dict[str, Any]:
    """The payload 2.0 event of one URL request. ``target`` is the path and query as the
    function sees them (``/a/b?x=1``); ``headers`` the request's, names lower-case;
    ``domain_name`` the host the client addressed. The result is JSON-serialisable."""
    raw_path, _, raw_query = target.partition("?")
    passed = dict(headers)
    cookie = passed.pop("cookie", None)
    context: dict[str, Any] = {
        "accountId": caller.account_id if caller is not None else account_id,
        "apiId": url_id,
    }
    if caller is not None:
        context["authorizer"] = {"iam": {
            "accessKey": caller.access_key,
            "accountId": caller.account_id,
            "callerId": caller.user_id,
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": caller.user_arn,
            "userId": caller.user_id,
        }}
    context.update({
        "domainName": domain_name,
        "domainPrefix": url_id,
        "http": {
            "method": method,
            "path": raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": request_time(epoch_ms),
        "timeEpoch": epoch_ms,
    })
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    if cookie:
        event["cookies"] = [c.strip() for c in cookie.split(";") if c.strip()]
    event["headers"] = passed
    if raw_query:
        event["queryStringParameters"] = query_parameters(raw_query)
    event["requestContext"] = context
    if body:
        if is_text_content_type(headers.get("content-type")):
            try:
                event["body"] = body.decode()
                event["isBase64Encoded"] = False
                return event
            except UnicodeDecodeError:
                pass  # text in name only: it reaches the function intact as base64
        event["body"] = base64.b64encode(body).decode()
        event["isBase64Encoded"] = True
        return event
    event["isBase64Encoded"] = False
    return event
