"""The parts of a Signature Version 4 canonical request, built from a request as received.

The rules are those of
https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html for services
other than S3, as botocore's ``SigV4Auth`` applies them when it signs:

- the path is taken as it travelled (already URI-encoded once by the client), relative and
  empty segments are removed, and the result is URI-encoded once more (``/`` and ``~`` kept);
  it is never decoded first, so ``%3A`` in a function ARN signs as ``%253A``;
- each query name and value is URI-encoded (RFC 3986 unreserved characters kept), and the
  pairs are sorted by name, then value;
- each signed header is its lower-case name, ``:``, and its value with leading, trailing and
  repeated inner whitespace collapsed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import quote, unquote_to_bytes

_PATH_SAFE = "/~"
_QUERY_SAFE = "-_.~"


def remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, plus what AWS adds: empty segments (``//``) are dropped too.

    The leading and a trailing ``/`` are kept; an empty path is ``/``.
    """
    if not path:
        return "/"
    if "//" not in path and "/." not in path and not path.startswith("."):
        return path
    segments: list[str] = []
    for segment in path.split("/"):
        if not segment or segment == ".":
            continue
        if segment == "..":
            if segments:
                segments.pop()
        else:
            segments.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and segments else ""
    return first + "/".join(segments) + last


def canonical_path(raw_path: str) -> str:
    """The canonical URI of a path exactly as it arrived (``str`` of its latin-1 bytes)."""
    return quote(remove_dot_segments(raw_path).encode("latin-1"), safe=_PATH_SAFE)


def canonical_query(raw_query: str) -> str:
    """The canonical query string of a query exactly as it arrived (without the ``?``).

    Names and values are decoded and encoded again, so that a client that encodes more (or
    fewer) characters than RFC 3986 requires still verifies; ``+`` is a literal plus, as in
    the canonical form. A name without ``=`` has an empty value.
    """
    if not raw_query:
        return ""
    pairs: list[tuple[str, str]] = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((
            quote(unquote_to_bytes(name), safe=_QUERY_SAFE),
            quote(unquote_to_bytes(value), safe=_QUERY_SAFE),
        ))
    pairs.sort()
    return "&".join(f"{name}={value}" for name, value in pairs)


def canonical_headers(headers: Mapping[str, str], signed: Sequence[str]) -> str:
    """The canonical headers block (each line ending in a newline) of the ``signed`` header
    names, which must be lower-case; ``headers`` has lower-case keys. A signed header that the
    request lacks counts as empty, so the signature fails to match rather than erroring."""
    return "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed)
