"""Function URLs: a function's (or an alias's) own HTTP endpoint.

A ``FunctionUrlConfig`` is what Create/Get/Update/ListFunctionUrlConfig(s) answer and what
serving a URL needs: the function and qualifier it invokes, who may call it (``AuthType``),
its CORS rules, and whether its responses are buffered or streamed
(https://docs.aws.amazon.com/lambda/latest/dg/urls-configuration.html).

Each configuration has a ``url_id``, the 32 lower-case letters and digits AWS puts in front
of ``.lambda-url.<region>.on.aws``; it stays the same across updates and is never reused.
Where a URL is reachable on strato is ``UrlScheme``'s to say: by default a path below the
server's own address (``http://127.0.0.1:9000/lambda-url/<id>/``), which works with curl,
browsers and ``requests`` on a machine with no DNS set-up; with ``--url-host`` a host name
below a domain the operator points at the server (``http://<id>.<url host>:9000/``). A
request may use either form; the function sees the path and query as the client sent them
after the URL's own part, never strato's prefix.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from enum import StrEnum


class AuthType(StrEnum):
    """``AuthType``: ``NONE`` (the resource policy must allow ``lambda:InvokeFunctionUrl``
    to anyone) or ``AWS_IAM`` (a SigV4-signed request whose caller is allowed)."""

    NONE = "NONE"
    AWS_IAM = "AWS_IAM"


class InvokeMode(StrEnum):
    """``InvokeMode``: the whole response at once, or streamed as the function writes it."""

    BUFFERED = "BUFFERED"
    RESPONSE_STREAM = "RESPONSE_STREAM"


@dataclass(frozen=True)
class Cors:
    """``Cors`` as configured; every field optional, as in the API. Header and method names
    are kept as given (comparisons are the serving side's, case-insensitive)."""

    allow_credentials: bool | None = None
    allow_headers: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_origins: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None


@dataclass(frozen=True)
class FunctionUrlConfig:
    """One function URL. ``qualifier`` is None for the unqualified function (``$LATEST``),
    else an alias name (AWS accepts no version numbers). Times are ISO 8601 strings as the
    API shows them."""

    url_id: str
    function_name: str
    qualifier: str | None
    auth_type: AuthType
    invoke_mode: InvokeMode = InvokeMode.BUFFERED
    cors: Cors | None = None
    creation_time: str = ""
    last_modified_time: str = ""


_ID_ALPHABET = string.ascii_lowercase + string.digits
URL_ID_LENGTH = 32


def new_url_id() -> str:
    """A fresh, unguessable URL id (32 lower-case letters and digits, as AWS's)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(URL_ID_LENGTH))


def is_url_id(text: str) -> bool:
    """Whether ``text`` has the shape of a URL id."""
    return len(text) == URL_ID_LENGTH and all(c in _ID_ALPHABET for c in text)


#: The path below which the default scheme serves URLs: ``/lambda-url/<id>/...``.
PATH_PREFIX = "/lambda-url/"


@dataclass(frozen=True)
class UrlScheme:
    """How URLs are written and recognised. ``base`` is the server's own address as clients
    reach it (``http://127.0.0.1:9000``); ``url_host`` the operator's wildcard domain, if
    any (``lambda.example.test``: ``<id>.lambda.example.test`` resolves to the server)."""

    base: str
    url_host: str | None = None

    def url_of(self, url_id: str) -> str:
        """``FunctionUrl``: always ending with ``/`` as AWS's."""
        if self.url_host:
            scheme, _, rest = self.base.partition("://")
            port = rest.rpartition(":")[2] if ":" in rest else ""
            return f"{scheme}://{url_id}.{self.url_host}{':' + port if port else ''}/"
        return f"{self.base}{PATH_PREFIX}{url_id}/"

    def match(self, host: str, target: str) -> tuple[str, str] | None:
        """The URL id a request is for and the request target as the function sees it
        (path and query, starting with ``/``), or None when it is not a URL request.
        ``host`` is the Host header; ``target`` the raw request target."""
        if self.url_host:
            name = host.rpartition(":")[0] if host.count(":") == 1 else host
            label, dot, domain = name.lower().partition(".")
            if dot and domain == self.url_host.lower() and is_url_id(label):
                return label, target if target.startswith("/") else "/" + target
        if target.startswith(PATH_PREFIX):
            rest = target[len(PATH_PREFIX):]
            cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
            url_id, tail = rest[:cut], rest[cut:]
            if is_url_id(url_id):
                return url_id, tail if tail.startswith("/") else "/" + tail
        return None
