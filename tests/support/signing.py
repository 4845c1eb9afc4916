"""Signing raw HTTP requests with botocore's own SigV4 signer, for tests and the benchmark.

``sign`` returns the headers botocore's ``SigV4Auth`` adds (``X-Amz-Date``,
``Authorization``, and any given), signed now or at a chosen time; ``send`` sends a request as
given (path and query untouched) with ``http.client``.
"""

from __future__ import annotations

import http.client
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS_KEY = "test"
SECRET_KEY = "test"


def sign(
    method: str,
    url: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    *,
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
    region: str = "us-east-1",
    service: str = "lambda",
    at: datetime | None = None,
    session_token: str | None = None,
) -> dict[str, str]:
    """The headers of ``method url`` signed by botocore (``at``: sign as of that UTC time)."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    signer = SigV4Auth(Credentials(access_key, secret_key, session_token), service, region)
    if at is None:
        signer.add_auth(request)
    else:
        # add_auth with botocore's own steps, at a timestamp of our choosing.
        stamp = at.strftime("%Y%m%dT%H%M%SZ")
        request.context["timestamp"] = stamp
        request.headers["X-Amz-Date"] = stamp
        if session_token:
            request.headers["X-Amz-Security-Token"] = session_token
        canonical = signer.canonical_request(request)
        signature = signer.signature(signer.string_to_sign(request, canonical), request)
        signed = signer.signed_headers(signer.headers_to_sign(request))
        request.headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, SignedHeaders={signed}, "
            f"Signature={signature}"
        )
    return {name: value.decode() if isinstance(value, bytes) else value
            for name, value in request.headers.items()}


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def send(method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | None = None) -> RawResponse:
    """Send exactly ``method url`` (path and query as written) and read the whole response."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    connection = http.client.HTTPConnection(parts.netloc, timeout=60)
    try:
        connection.request(method, target, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return RawResponse(response.status, {k.lower(): v for k, v in response.getheaders()},
                           response.read())
    finally:
        connection.close()
