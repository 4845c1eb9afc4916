"""The SigV4 verifier against requests signed by botocore's own ``SigV4Auth``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from strato.auth.canonical import canonical_path, canonical_query
from strato.auth.credentials import Credential, make_credential
from strato.auth.sigv4 import SigV4Verifier
from strato.domain.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    LambdaApiError,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)
from tests.support.signing import sign

ENDPOINT = "http://127.0.0.1:9000"
SIGNED_AT = datetime(2025, 1, 1, 0, 0, 0, tzinfo=UTC)
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)


class FakeCredentials:
    """A CredentialLookup over a fixed set of credentials."""

    def __init__(self, *credentials: Credential) -> None:
        self._by_key = {c.access_key_id: c for c in credentials}

    def lookup(self, access_key_id: str) -> Credential | None:
        return self._by_key.get(access_key_id)


ADMIN = make_credential("test", "test", account_id="000000000000", name="admin")
USER = make_credential("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                       account_id="111122223333", name="ci")


def verifier(now: datetime = SIGNED_AT) -> SigV4Verifier:
    return SigV4Verifier(FakeCredentials(ADMIN, USER), clock=lambda: now.timestamp())


def verify(
    method: str, url: str, body: bytes, headers: Mapping[str, str], *, service: str = "lambda",
    now: datetime = SIGNED_AT, sent_body: bytes | None = None,
) -> object:
    """Verify what a server receives for ``method url`` with ``headers`` (Host as sent)."""
    parts = urlsplit(url)
    received = {name.lower(): value for name, value in headers.items()}
    received.setdefault("host", parts.netloc)
    return verifier(now).verify(method, parts.path, parts.query, received,
                                body if sent_body is None else sent_body, service)


def signed(method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | None = None,
           **kwargs: object) -> dict[str, str]:
    kwargs.setdefault("at", SIGNED_AT)
    return sign(method, url, body, headers, **kwargs)  # type: ignore[arg-type]


def refused(method: str, url: str, body: bytes, headers: Mapping[str, str], **kwargs: object) -> LambdaApiError:
    with pytest.raises(LambdaApiError) as caught:
        verify(method, url, body, headers, **kwargs)  # type: ignore[arg-type]
    assert caught.value.status == 403
    return caught.value


# requests that verify -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", f"{ENDPOINT}/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000"
                "%3Afunction%3Amy-fn%3Aprod", b""),
        ("GET", f"{ENDPOINT}/2015-03-31/functions?Marker=a%2Fb%2Bc%3Dd%20e~f&MaxItems=5", b""),
        ("GET", f"{ENDPOINT}/2015-03-31/functions?MaxItems=5&Marker=%C3%A9t%C3%A9&FunctionVersion=ALL", b""),
        ("GET", f"{ENDPOINT}/2015-03-31/functions/fn/configuration?Qualifier=%24LATEST", b""),
        ("POST", f"{ENDPOINT}/2015-03-31/functions/fn/invocations",
         json.dumps({"name": "Zoë — 東京"}, ensure_ascii=False).encode()),
        ("POST", f"{ENDPOINT}/2015-03-31/functions/fn/invocations", bytes(range(256))),
        ("GET", f"{ENDPOINT}/2015-03-31/functions/fn/./policy", b""),
        ("GET", f"{ENDPOINT}/2015-03-31//functions/fn/../fn/policy", b""),
        ("DELETE", f"{ENDPOINT}/2015-03-31/functions/fn?Qualifier=1", b""),
    ],
)
def test_botocore_signed_requests_verify(method: str, url: str, body: bytes) -> None:
    principal = verify(method, url, body, signed(method, url, body))
    assert principal is ADMIN.principal


def test_the_principal_is_the_access_keys_own() -> None:
    url = f"{ENDPOINT}/2015-03-31/functions"
    headers = signed("GET", url, access_key=USER.access_key_id, secret_key=USER.secret_access_key)
    assert verify("GET", url, b"", headers) is USER.principal


def test_a_logs_request_verifies_for_the_logs_service() -> None:
    body = b'{"logGroupName": "/aws/lambda/fn"}'
    headers = signed("POST", f"{ENDPOINT}/", body, {
        "X-Amz-Target": "Logs_20140328.FilterLogEvents",
        "Content-Type": "application/x-amz-json-1.1",
    }, service="logs")
    assert verify("POST", f"{ENDPOINT}/", body, headers, service="logs") is ADMIN.principal


def test_a_session_token_is_accepted_and_ignored() -> None:
    url = f"{ENDPOINT}/2015-03-31/functions"
    headers = signed("GET", url, session_token="FwoGZXIvYXdzEXAMPLETOKEN")
    assert "X-Amz-Security-Token" in headers
    assert verify("GET", url, b"", headers) is ADMIN.principal


def test_signed_headers_with_runs_of_spaces_verify() -> None:
    url = f"{ENDPOINT}/2015-03-31/functions/fn/invocations"
    headers = signed("POST", url, b"{}", {"X-Amz-Client-Context": "  e30=  ", "X-Amz-Log-Type": "Tail   Tail"})
    assert verify("POST", url, b"{}", headers) is ADMIN.principal


def test_a_truthful_content_sha256_header_verifies() -> None:
    url = f"{ENDPOINT}/2015-03-31/functions/fn/invocations"
    headers = signed("POST", url, b"{}", {"X-Amz-Content-Sha256": hashlib.sha256(b"{}").hexdigest()})
    assert verify("POST", url, b"{}", headers) is ADMIN.principal


def test_a_request_signed_now_by_add_auth_verifies() -> None:
    url = f"{ENDPOINT}/2015-03-31/functions"
    headers = sign("GET", url)
    assert verify("GET", url, b"", headers, now=datetime.now(UTC)) is ADMIN.principal


@pytest.mark.parametrize("skew", [timedelta(minutes=-4, seconds=-59), timedelta(minutes=4, seconds=59)])
def test_a_clock_skew_under_five_minutes_is_accepted(skew: timedelta) -> None:
    url = f"{ENDPOINT}/2015-03-31/functions"
    assert verify("GET", url, b"", signed("GET", url), now=SIGNED_AT + skew) is ADMIN.principal


def test_the_derived_key_serves_other_regions_and_repeated_requests() -> None:
    check = verifier()
    url = f"{ENDPOINT}/2015-03-31/functions"
    for region in ("us-east-1", "eu-west-3", "us-east-1"):
        headers = {k.lower(): v for k, v in signed("GET", url, region=region).items()}
        headers["host"] = "127.0.0.1:9000"
        assert check.verify("GET", "/2015-03-31/functions", "", headers, b"", "lambda") is ADMIN.principal


# requests that do not ----------------------------------------------------------------------
def test_no_authorization_header_is_a_missing_token() -> None:
    error = refused("GET", f"{ENDPOINT}/2015-03-31/functions", b"", {})
    assert isinstance(error, MissingAuthenticationTokenException)
    assert error.message == "Missing Authentication Token"


def test_a_wrong_secret_is_a_signature_mismatch() -> None:
    url = f"{ENDPOINT}/2015-03-31/functions"
    error = refused("GET", url, b"", signed("GET", url, secret_key="not-test"))
    assert isinstance(error, InvalidSignatureException) and error.message == MISMATCH


def test_an_unknown_access_key_is_unrecognized() -> None:
    url = f"{ENDPOINT}/2015-03-31/functions"
    error = refused("GET", url, b"", signed("GET", url, access_key="AKIANOBODY0000000000"))
    assert isinstance(error, UnrecognizedClientException)
    assert error.message == "The security token included in the request is invalid."


def test_one_body_byte_changed_is_a_signature_mismatch() -> None:
    url = f"{ENDPOINT}/2015-03-31/functions/fn/invocations"
    headers = signed("POST", url, b'{"amount": 100}')
    error = refused("POST", url, b'{"amount": 100}', headers, sent_body=b'{"amount": 900}')
    assert isinstance(error, InvalidSignatureException) and error.message == MISMATCH


def test_a_lying_content_sha256_header_is_not_trusted() -> None:
    url = f"{ENDPOINT}/2015-03-31/functions/fn/invocations"
    claimed = hashlib.sha256(b'{"amount": 100}').hexdigest()
    headers = signed("POST", url, b'{"amount": 100}', {"X-Amz-Content-Sha256": claimed})
    error = refused("POST", url, b'{"amount": 100}', headers, sent_body=b'{"amount": 900}')
    assert isinstance(error, InvalidSignatureException) and error.message == MISMATCH


def test_a_changed_query_is_a_signature_mismatch() -> None:
    headers = signed("GET", f"{ENDPOINT}/2015-03-31/functions?MaxItems=5")
    error = refused("GET", f"{ENDPOINT}/2015-03-31/functions?MaxItems=50", b"", headers)
    assert error.message == MISMATCH


def test_a_double_encoded_path_is_not_the_same_path() -> None:
    url = f"{ENDPOINT}/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Afn"
    error = refused("GET", url.replace("%3A", ":"), b"", signed("GET", url))
    assert error.message == MISMATCH


def test_an_expired_signature_says_so_as_aws_does() -> None:
    url = f"{ENDPOINT}/2015-03-31/functions"
    error = refused("GET", url, b"", signed("GET", url), now=SIGNED_AT + timedelta(minutes=10))
    assert isinstance(error, InvalidSignatureException)
    assert error.message == (
        "Signature expired: 20250101T000000Z is now earlier than 20250101T000500Z "
        "(20250101T001000Z - 5 min.)"
    )


def test_a_signature_from_the_future_says_so_as_aws_does() -> None:
    url = f"{ENDPOINT}/2015-03-31/functions"
    error = refused("GET", url, b"", signed("GET", url), now=SIGNED_AT - timedelta(minutes=10))
    assert isinstance(error, InvalidSignatureException)
    assert error.message == (
        "Signature not yet current: 20250101T000000Z is still later than 20241231T235500Z "
        "(20241231T235000Z + 5 min.)"
    )


def test_a_scope_date_other_than_the_request_date_is_refused() -> None:
    url = f"{ENDPOINT}/2015-03-31/functions"
    headers = signed("GET", url)
    headers["Authorization"] = headers["Authorization"].replace("/20250101/", "/20241231/")
    error = refused("GET", url, b"", headers)
    assert isinstance(error, InvalidSignatureException)
    assert error.message == (
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '20241231' != '20250101', from '20250101T000000Z'."
    )


@pytest.mark.parametrize(("signed_for", "addressed"), [("s3", "lambda"), ("logs", "lambda"), ("lambda", "logs")])
def test_a_scope_for_another_service_is_refused(signed_for: str, addressed: str) -> None:
    url = f"{ENDPOINT}/2015-03-31/functions"
    error = refused("GET", url, b"", signed("GET", url, service=signed_for), service=addressed)
    assert isinstance(error, InvalidSignatureException)
    assert error.message == f"Credential should be scoped to correct service: '{addressed}'. "


def test_a_scope_with_another_terminator_is_refused() -> None:
    url = f"{ENDPOINT}/2015-03-31/functions"
    headers = signed("GET", url)
    headers["Authorization"] = headers["Authorization"].replace("/aws4_request", "/aws5_request")
    error = refused("GET", url, b"", headers)
    assert isinstance(error, InvalidSignatureException)
    assert "valid terminator: 'aws4_request'" in error.message


def test_host_must_be_a_signed_header() -> None:
    url = f"{ENDPOINT}/2015-03-31/functions"
    headers = signed("GET", url)
    headers["Authorization"] = headers["Authorization"].replace("SignedHeaders=host;x-amz-date",
                                                                "SignedHeaders=x-amz-date")
    error = refused("GET", url, b"", headers)
    assert isinstance(error, InvalidSignatureException)
    assert error.message == "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."


def test_a_changed_host_is_a_signature_mismatch() -> None:
    url = f"{ENDPOINT}/2015-03-31/functions"
    error = refused("GET", url, b"", {**signed("GET", url), "Host": "evil.example:9000"})
    assert error.message == MISMATCH


def test_a_sigv2_style_header_lacks_every_component() -> None:
    header = "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg="
    error = refused("GET", f"{ENDPOINT}/2015-03-31/functions", b"",
                    {"Authorization": header, "X-Amz-Date": "20250101T000000Z"})
    assert isinstance(error, IncompleteSignatureException)
    assert error.message == (
        "Authorization header requires 'Credential' parameter. Authorization header requires "
        f"'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization={header}"
    )


def test_a_request_without_a_date_is_incomplete() -> None:
    url = f"{ENDPOINT}/2015-03-31/functions"
    headers = signed("GET", url)
    del headers["X-Amz-Date"]
    error = refused("GET", url, b"", headers)
    assert isinstance(error, IncompleteSignatureException)
    assert error.message.startswith(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        "Authorization=AWS4-HMAC-SHA256 Credential=test/20250101/"
    )


def test_a_component_without_an_equal_sign_is_incomplete() -> None:
    url = f"{ENDPOINT}/2015-03-31/functions"
    headers = signed("GET", url)
    headers["Authorization"] = headers["Authorization"].replace("Credential=test/", "Credential= test/")
    error = refused("GET", url, b"", headers)
    assert isinstance(error, IncompleteSignatureException)
    assert error.message.startswith(
        "'test/20250101/us-east-1/lambda/aws4_request' not a valid key=value pair (missing "
        "equal-sign) in Authorization header: 'AWS4-HMAC-SHA256 Credential= test/"
    )


def test_a_credential_of_four_elements_is_incomplete() -> None:
    url = f"{ENDPOINT}/2015-03-31/functions"
    headers = signed("GET", url)
    headers["Authorization"] = headers["Authorization"].replace("/us-east-1/", "/")
    error = refused("GET", url, b"", headers)
    assert isinstance(error, IncompleteSignatureException)
    assert error.message == (
        "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
        "got 'test/20250101/lambda/aws4_request'"
    )


# the canonical forms are botocore's --------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        f"{ENDPOINT}/",
        f"{ENDPOINT}/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af",
        f"{ENDPOINT}/2015-03-31/functions/f%20g/",
        f"{ENDPOINT}/a/./b/../c//d/",
        f"{ENDPOINT}/2015-03-31/functions?Marker=a%2Fb%2Bc%3Dd&MaxItems=5&A=&B=2&B=1",
        f"{ENDPOINT}/2015-03-31/functions?Marker=%E6%9D%B1%E4%BA%AC~x",
    ],
)
def test_canonical_path_and_query_match_botocore(url: str) -> None:
    request = AWSRequest(method="GET", url=url)
    request.context["timestamp"] = "20250101T000000Z"
    lines = SigV4Auth(Credentials("test", "test"), "lambda", "us-east-1").canonical_request(request).split("\n")
    parts = urlsplit(url)
    assert canonical_path(parts.path) == lines[1]
    assert canonical_query(parts.query) == lines[2]
