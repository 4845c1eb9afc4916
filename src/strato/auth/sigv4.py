"""Verifying AWS Signature Version 4 (``AWS4-HMAC-SHA256`` in the ``Authorization`` header).

``SigV4Verifier.verify`` recomputes the signature of a request as received and returns the
principal of its access key, or raises the error AWS gives, in the order AWS checks:

1. no ``Authorization`` header: MissingAuthenticationTokenException;
2. a header that is not ``AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…``, a
   credential that is not ``keyid/date/region/service/aws4_request``, or no request date
   (``X-Amz-Date``, else ``Date``): IncompleteSignatureException;
3. a credential scope whose date is not the request's, whose region is malformed, whose
   service is not the one addressed (``lambda`` or ``logs``), whose terminator is wrong, or
   ``host`` not among the signed headers: InvalidSignatureException;
4. a request date more than 5 minutes from now: InvalidSignatureException (``Signature
   expired`` / ``Signature not yet current``);
5. an unknown access key id: UnrecognizedClientException; temporary credentials (a key of a
   role session, ``role_sessions``, with its ``X-Amz-Security-Token``) past their expiry:
   ExpiredTokenException;
6. a signature that differs from strato's: InvalidSignatureException.

The body hash is always computed by strato from the body it received (after the HTTP edge
enforced the size limit); an ``X-Amz-Content-Sha256`` header is never trusted, so a header
that lies about the body makes the signature mismatch. ``X-Amz-Security-Token`` identifies
the session of temporary credentials (signed like any other header when the client signs
it); with a long-term key it is ignored. Any region is
accepted. Messages are AWS's, from
https://docs.aws.amazon.com/IAM/latest/UserGuide/signature-v4-troubleshooting.html and from
responses recorded from AWS services.

Cost per request: the signing key (four HMACs) is cached per (secret, date, region,
service), so a request costs the canonical request, two SHA-256 (body, canonical request)
and one HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import NamedTuple, Protocol

from strato.auth.canonical import canonical_headers, canonical_path, canonical_query
from strato.auth.credentials import Credential
from strato.domain.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)
from strato.domain.principals import Principal

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
#: How far a request's date may be from the server's clock, either way.
MAX_SKEW_S = 300
_KEYS_CACHED = 1024
_PATHS_CACHED = 1024
#: The components an Authorization header must have, in the order AWS reports them missing.
_REQUIRED = ("Credential", "Signature", "SignedHeaders")
#: The header as SDKs write it, read in one match (a fast path: what it accepts, the general
#: parser would read the same way).
_USUAL_FORM = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^/\s,=]+)/((\d{8})/([a-z0-9-]+)/([a-z0-9-]+)/(aws4_request)),"
    r" ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})"
)
_REGION = re.compile(r"[a-z0-9-]+")
_BASIC_FORMAT = "%Y%m%dT%H%M%SZ"

MISSING_TOKEN = "Missing Authentication Token"
INVALID_TOKEN = "The security token included in the request is invalid."
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)
HOST_NOT_SIGNED = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."


class CredentialLookup(Protocol):
    def lookup(self, access_key_id: str) -> Credential | None: ...


class SessionLookup(Protocol):
    """Temporary credentials (``role_sessions.RoleSessions``)."""

    def resolve(self, access_key_id: str, token: str) -> Credential | None:
        """The credential of a session key and its token, or None; raises
        ExpiredTokenException once they expired."""


class Authorization(NamedTuple):
    """The components of a SigV4 ``Authorization`` header (a tuple: built on every request).

    ``scope`` is the credential scope as written (``date/region/service/terminator``);
    ``signed_headers`` the ``SignedHeaders`` text as written, ``header_names`` its names in
    lower case.
    """

    access_key_id: str
    scope: str
    date: str
    region: str
    service: str
    terminator: str
    signed_headers: str
    header_names: list[str]
    signature: str


def basic_time(epoch: float) -> str:
    """``20250101T000000Z``: ISO 8601 basic format, UTC, as SigV4 writes times."""
    return time.strftime(_BASIC_FORMAT, time.gmtime(epoch))


def request_time(headers: Mapping[str, str]) -> tuple[str, float] | None:
    """The request's date as (basic ISO 8601 text, epoch seconds): ``X-Amz-Date``, else an
    HTTP ``Date`` header; None when neither is present and well-formed."""
    value = headers.get("x-amz-date")
    if value is not None:
        if (len(value) == 16 and value[8] == "T" and value[15] == "Z" and value.isascii()
                and value[:8].isdigit() and value[9:15].isdigit()):
            try:
                moment = datetime(int(value[0:4]), int(value[4:6]), int(value[6:8]),
                                  int(value[9:11]), int(value[11:13]), int(value[13:15]), tzinfo=UTC)
            except ValueError:
                return None
            return value, moment.timestamp()
        return None
    value = headers.get("date")
    if value is None:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    epoch = moment.timestamp()
    return basic_time(epoch), epoch


def parse_authorization(value: str, has_date: bool) -> Authorization:
    """The components of ``value``; IncompleteSignatureException (AWS's text) when one is
    missing or malformed, or when the request has no date (``has_date`` False)."""
    usual = _USUAL_FORM.fullmatch(value)
    if usual is not None and has_date:
        key, scope, date, region, service, terminator, signed_headers, signature = usual.groups()
        return Authorization(key, scope, date, region, service, terminator, signed_headers,
                             signed_headers.split(";"), signature)
    algorithm, _, rest = value.strip().partition(" ")
    fields: dict[str, str] = {}
    if algorithm == ALGORITHM:
        for part in rest.replace(",", " ").split():
            key, equals, item = part.partition("=")
            if not equals:
                raise IncompleteSignatureException(
                    f"'{part}' not a valid key=value pair (missing equal-sign) in Authorization "
                    f"header: '{value}'."
                )
            fields[key] = item
    if not has_date or not ("Credential" in fields and "Signature" in fields
                            and "SignedHeaders" in fields):
        problems = [
            f"Authorization header requires '{name}' parameter."
            for name in _REQUIRED
            if name not in fields
        ]
        if not has_date:
            problems.append(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
                "header."
            )
        raise IncompleteSignatureException(" ".join(problems) + f" Authorization={value}")
    text = fields["Credential"]
    credential = text.split("/")
    if len(credential) != 5:
        raise IncompleteSignatureException(
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            f"keyid/date/region/service/term, got '{text}'"
        )
    access_key_id, date, region, service, terminator = credential
    signed_headers = fields["SignedHeaders"]
    return Authorization(access_key_id, text[len(access_key_id) + 1:], date, region, service,
                         terminator, signed_headers, signed_headers.lower().split(";"),
                         fields["Signature"])


def check_scope(auth: Authorization, timestamp: str, service: str) -> None:
    """InvalidSignatureException unless the credential scope fits the request."""
    if auth.date != timestamp[:8]:
        raise InvalidSignatureException(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
            f"HTTP: '{auth.date}' != '{timestamp[:8]}', from '{timestamp}'."
        )
    if not _REGION.fullmatch(auth.region):
        raise InvalidSignatureException(
            f"Credential should be scoped to a valid region, not '{auth.region}'. "
        )
    if auth.service != service:
        raise InvalidSignatureException(
            f"Credential should be scoped to correct service: '{service}'. "
        )
    if auth.terminator != TERMINATOR:
        raise InvalidSignatureException(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', "
            f"not '{auth.terminator}'. "
        )
    if "host" not in auth.header_names:
        raise InvalidSignatureException(HOST_NOT_SIGNED)


def check_skew(timestamp: str, signed_at: float, now: float) -> None:
    """InvalidSignatureException when the request was signed more than 5 minutes from now."""
    if signed_at < now - MAX_SKEW_S:
        raise InvalidSignatureException(
            f"Signature expired: {timestamp} is now earlier than {basic_time(now - MAX_SKEW_S)} "
            f"({basic_time(now)} - 5 min.)"
        )
    if signed_at > now + MAX_SKEW_S:
        raise InvalidSignatureException(
            f"Signature not yet current: {timestamp} is still later than "
            f"{basic_time(now + MAX_SKEW_S)} ({basic_time(now)} + 5 min.)"
        )


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """``kSigning``: HMAC chain of the secret over date, region, service and terminator."""
    key = _hmac(("AWS4" + secret).encode(), date)
    return _hmac(_hmac(_hmac(key, region), service), TERMINATOR)


class SigV4Verifier:
    """Verifies signed requests against ``credentials``. Use from one thread (the loop's)."""

    def __init__(
        self, credentials: CredentialLookup, *, clock: Callable[[], float] = time.time,
        sessions: SessionLookup | None = None,
    ) -> None:
        self._credentials = credentials
        self._sessions = sessions
        self._clock = clock
        #: HMAC-SHA256 keyed with each signing key in use, copied for every request.
        self._macs: dict[tuple[str, str, str, str], hmac.HMAC] = {}
        # Requests come in runs: the same path (one function invoked), the same X-Amz-Date
        # within a second. Paths are cached once the access key is known, and the cache is
        # bounded; a date only once its request verified.
        self._paths: dict[str, str] = {}
        self._last_time: tuple[str, float] | None = None

    def verify(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        service: str,
    ) -> Principal:
        """The principal that signed the request, or the AWS error (see the module's list).

        ``path`` and ``query`` are exactly as received (percent-encoded, ``str`` of their
        latin-1 bytes); ``headers`` has lower-case names; ``body`` is the whole body, within
        its size limit; ``service`` is the signing name of the API addressed.
        """
        header = headers.get("authorization")
        if header is None:
            raise MissingAuthenticationTokenException(MISSING_TOKEN)
        when = self._last_time
        if when is None or headers.get("x-amz-date") != when[0]:
            when = request_time(headers)
        auth = parse_authorization(header, when is not None)
        assert when is not None  # parse_authorization refuses a request without a date
        timestamp, signed_at = when
        check_scope(auth, timestamp, service)
        check_skew(timestamp, signed_at, self._clock())
        credential = self._credentials.lookup(auth.access_key_id)
        if credential is None and self._sessions is not None:
            token = headers.get("x-amz-security-token")
            if token is not None:
                credential = self._sessions.resolve(auth.access_key_id, token)
        if credential is None:
            raise UnrecognizedClientException(INVALID_TOKEN)
        canonical_request = "\n".join((
            method,
            self._canonical_path(path),
            canonical_query(query),
            canonical_headers(headers, auth.header_names),
            auth.signed_headers,
            hashlib.sha256(body).hexdigest(),
        ))
        string_to_sign = (
            f"{ALGORITHM}\n{timestamp}\n{auth.scope}\n"
            + hashlib.sha256(canonical_request.encode()).hexdigest()
        )
        mac = self._mac(credential.secret_access_key, auth).copy()
        mac.update(string_to_sign.encode())
        expected = mac.hexdigest()
        if not hmac.compare_digest(expected.encode(), auth.signature.encode("latin-1")):
            raise InvalidSignatureException(SIGNATURE_MISMATCH)
        if "x-amz-date" in headers:  # the Date header's text is not the timestamp's
            self._last_time = when
        return credential.principal

    def _canonical_path(self, path: str) -> str:
        canonical = self._paths.get(path)
        if canonical is None:
            if len(self._paths) >= _PATHS_CACHED:
                self._paths.clear()
            canonical = self._paths[path] = canonical_path(path)
        return canonical

    def _mac(self, secret: str, auth: Authorization) -> hmac.HMAC:
        """The HMAC keyed with the signing key of ``secret`` in ``auth``'s scope (derived once
        per secret, date, region and service: four HMACs saved on every request)."""
        cache_key = (secret, auth.date, auth.region, auth.service)
        mac = self._macs.get(cache_key)
        if mac is None:
            if len(self._macs) >= _KEYS_CACHED:
                self._macs.clear()
            key = signing_key(secret, auth.date, auth.region, auth.service)
            mac = self._macs[cache_key] = hmac.new(key, digestmod=hashlib.sha256)
        return mac
