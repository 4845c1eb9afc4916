"""The limits of the HTTP transport, and why each default is what it is.

One ``HttpLimits`` applies to a server (``strato.http.server.serve``): the API endpoint gets
the operator's (``Settings.http_limits``); each execution environment's Runtime API gets the
operator's deadlines with sizes of its own (``strato.runtime_api.http_limits``), its idle
timeout stretched over the function's timeout (a runtime's connection is quiet while the
function runs).

What a client meets at each limit (nothing reaches the handler, and the connection is closed
after the answer):

=====================================  =============================================
request target over ``max_url_bytes``  414 URI Too Long
header section over ``max_header_bytes``
or more than ``max_headers`` fields    431 Request Header Fields Too Large
head not complete in ``header_timeout_s``,
or whole request not in ``request_timeout_s``  408 Request Timeout
declared body over the route's limit   413 from the handler (in AWS's form), at once
no request for ``idle_timeout_s``      closed without an answer
=====================================  =============================================

``max_pipelined`` and ``max_connections`` are back-pressure, not errors: past them strato stops
reading (a connection's next requests; a new connection's first ones) until a slot frees (a
``Listener``, as the Runtime API's endpoints use, stops accepting instead).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class HttpLimits:
    #: The request target (path and query). Lambda's longest are a function ARN with a
    #: qualifier and a pagination marker, and strato's signed code URLs: well under 2 KiB.
    #: 16 KiB is twice what nginx and Apache accept by default (8 KiB).
    max_url_bytes: int = 16 * 1024
    #: All header fields of a request, names and values. A SigV4 request with a session token
    #: and a 3.5 KiB ``X-Amz-Client-Context`` stays under 8 KiB; 64 KiB leaves room for
    #: proxies' additions and is still bounded.
    max_header_bytes: int = 64 * 1024
    #: Header fields per request, a repeated field counted each time (Apache's default
    #: ``LimitRequestFields``). AWS SDKs send about ten.
    max_headers: int = 100
    #: From a request's first byte to the end of its head. A real client writes its head at
    #: once; only a slow-headers attack ("slowloris") needs more than a few milliseconds.
    header_timeout_s: float = 10.0
    #: From a request's first byte to the end of its body: enough for a 70 MB CreateFunction
    #: upload at about 5 Mbit/s. Also how long the answers a client leaves unread may keep
    #: the connection's write buffer over its high-water mark (it is dropped then).
    request_timeout_s: float = 120.0
    #: A keep-alive connection with no request in progress is closed after this long (AWS's
    #: Application Load Balancer's default). Clients reopen one as needed.
    idle_timeout_s: float = 60.0
    #: Requests read ahead of the one being served on a connection; reading pauses beyond.
    #: Pipelining gains nothing deeper, and each queued request holds its body.
    max_pipelined: int = 16
    #: Connections served at once. As many more are accepted and wait unread for a slot (in
    #: arrival order); past that, new connections are answered 503 and closed. Each
    #: synchronous invocation in flight holds one connection, so this stays well above the
    #: account's concurrency limit (1,000 by default).
    max_connections: int = 4096
    #: After an answer that closes the connection, how long strato reads and discards what
    #: the client still sends before it closes: closing with unread data would reset the
    #: connection and could destroy the answer before the client reads it.
    linger_s: float = 5.0

    def __post_init__(self) -> None:
        for name in ("max_url_bytes", "max_header_bytes", "max_headers", "max_pipelined",
                     "max_connections"):
            if getattr(self, name) < 1:
                raise ValueError(f"HttpLimits.{name} must be at least 1, not {getattr(self, name)}")
        for name in ("header_timeout_s", "request_timeout_s", "idle_timeout_s", "linger_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"HttpLimits.{name} must be positive, not {getattr(self, name)}")

    def idle_at_least(self, seconds: float) -> HttpLimits:
        """These limits with an idle timeout of at least ``seconds``."""
        if self.idle_timeout_s >= seconds:
            return self
        return replace(self, idle_timeout_s=seconds)
