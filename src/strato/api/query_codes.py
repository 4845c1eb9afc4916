"""The codes AWS's query-protocol services give the endpoint's own errors (authentication,
authorisation, a body too large), which the JSON and REST protocols name otherwise. Shared by
SQS (its ``x-amzn-query-error`` header) and by IAM and STS (their XML ``Code``)."""

from __future__ import annotations

QUERY_CODES = {
    "AccessDeniedException": "AccessDenied",
    "MissingAuthenticationTokenException": "MissingAuthenticationToken",
    "UnrecognizedClientException": "InvalidClientTokenId",
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "IncompleteSignatureException": "IncompleteSignature",
    "ExpiredTokenException": "ExpiredToken",
    "RequestEntityTooLargeException": "RequestEntityTooLarge",
    "SerializationException": "SerializationException",
    "UnsupportedOperationException": "InvalidAction",
    "ServiceException": "InternalError",
}


def query_code(code: str) -> str:
    """The query protocol's code of an error whose other protocols' code is ``code``."""
    return QUERY_CODES.get(code, code.removesuffix("Exception"))
