"""What the ``strato`` client commands say when a request fails: one line, with what to do.

``strato logs`` and ``strato events`` are clients of a server's HTTP API; a server that is not
there, refuses the key or answers an error is the user's situation to fix, not a bug to show a
traceback for.
"""

from __future__ import annotations

ENDPOINT_HINT = (
    "is `strato serve` running there? Point the command at the server with --endpoint-url or "
    "STRATO_ENDPOINT (default http://127.0.0.1:9000)"
)
CREDENTIALS_HINT = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) to a strato access key "
    "(`strato credentials create` issues one)"
)


def unreachable(endpoint: str, reason: object) -> str:
    """The line for a server that could not be reached at ``endpoint``."""
    return f"strato: cannot reach {endpoint} ({reason}): {ENDPOINT_HINT}"


def describe(error: BaseException, endpoint: str) -> str | None:
    """The one line for ``error`` raised by a botocore client of ``endpoint``, or None when it
    is not a client failure (a bug, to be shown in full)."""
    from botocore import exceptions

    if isinstance(error, exceptions.EndpointConnectionError | exceptions.ConnectionClosedError):
        return unreachable(endpoint, "connection refused or closed")
    if isinstance(error, exceptions.ConnectTimeoutError | exceptions.ReadTimeoutError):
        return unreachable(endpoint, "timed out")
    if isinstance(error, exceptions.NoCredentialsError):
        return f"strato: no AWS credentials to sign with: {CREDENTIALS_HINT}"
    if isinstance(error, exceptions.ClientError):
        detail = error.response.get("Error", {})
        code = detail.get("Code", "Error")
        message = detail.get("Message") or ""
        line = f"strato: {code}: {message}".rstrip(": ")
        if code in ("UnrecognizedClientException", "InvalidSignatureException"):
            line += f" ({CREDENTIALS_HINT})"
        return line
    if isinstance(error, exceptions.BotoCoreError):
        return f"strato: {error}"
    return None
