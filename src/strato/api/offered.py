"""Which AWS services strato's endpoint serves, and the refusal of a request for another.

An AWS SDK pointed at strato for a service strato does not have (``aws cloudwatch
list-metrics``, ``aws s3 ls``…) signs its request for that service (the credential scope's
service, ``…/us-east-1/monitoring/aws4_request``) and, for JSON-protocol services, names it in
``X-Amz-Target``. Such a request is answered with one error that names the service, before
authentication: checking its signature against strato's services could only say that the
scope is wrong, which reads as a credentials problem. The error is in the form the client's
protocol parses: XML for the query protocol (form-encoded ``Action=…``), the JSON protocol's for
an ``X-Amz-Target``, REST-JSON otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from xml.sax.saxutils import escape

from strato.api import json_protocol, rest_json
from strato.domain.errors import UnsupportedOperationException
from strato.http.request import Request

#: Signing names of the services strato serves, and what a reader knows them as.
OFFERED = {"lambda": "Lambda", "logs": "CloudWatch Logs", "sqs": "SQS", "iam": "IAM (roles)",
           "sts": "STS (GetCallerIdentity)"}
#: ``X-Amz-Target`` prefixes of the JSON-protocol services strato serves.
OFFERED_TARGET_PREFIXES = ("Logs_20140328.", "AmazonSQS.")

#: Every Lambda REST path starts with its API version (``/2015-03-31/functions``…): a request
#: there signed for another service is Lambda's to refuse, as AWS does, with
#: InvalidSignatureException.
_LAMBDA_PATH = re.compile(r"/\d{4}-\d{2}-\d{2}/")
_SIGNING_SERVICE = re.compile(r"Credential=[^/,]*/\d{8}/[^/,]*/([^/,]+)/")


def refusal(path: str, headers: Mapping[str, str]) -> UnsupportedOperationException | None:
    """The error for a request addressed to a service strato does not serve, or None.

    ``headers`` are the request's, keys in lower case. A Lambda REST path is always Lambda's.
    Elsewhere the signing scope decides when there is one (an unsigned request is left to
    authentication to refuse); else an ``X-Amz-Target`` naming another service does.
    """
    if _LAMBDA_PATH.match(path):
        return None
    match = _SIGNING_SERVICE.search(headers.get("authorization", ""))
    if match is not None:
        service = match.group(1)
        if service in OFFERED:
            return None
        return _not_offered(f"the '{service}' service")
    target = headers.get("x-amz-target")
    if target is not None and not target.startswith(OFFERED_TARGET_PREFIXES):
        return _not_offered(f"the API of X-Amz-Target '{target.split('.', 1)[0]}'")
    return None


def _not_offered(what: str) -> UnsupportedOperationException:
    served = ", ".join(f"{name} ({signing})" for signing, name in OFFERED.items())
    return UnsupportedOperationException(
        f"strato does not offer {what}: this endpoint serves {served} only"
    )


def response(error: UnsupportedOperationException, request: Request,
             request_id: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """``error`` as the protocol of ``request`` expects its errors."""
    headers = request.headers
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        body = (
            '<?xml version="1.0"?><ErrorResponse><Error><Type>Sender</Type>'
            f"<Code>{error.code}</Code><Message>{escape(str(error))}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return error.status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], \
            body.encode()
    if "x-amz-target" in headers:
        wire = json_protocol.serialize_error(error)
        extra = [("x-amzn-ErrorType", error.code)]
    else:
        wire = rest_json.serialize_error(error)
        extra = []
    return wire.status, [*wire.headers, *extra, ("x-amzn-RequestId", request_id)], wire.body
