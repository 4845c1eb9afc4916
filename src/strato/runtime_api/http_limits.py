"""The HTTP limits of one environment's Runtime API, tighter than the API edge's.

A runtime makes a handful of small requests (``next``, a response or error post, perhaps an
INIT error) on one or two keep-alive connections, and the function's own code can send
anything to the same endpoint. So each environment's endpoint gets limits sized for runtimes,
not for API clients: what one hostile environment can make strato hold is a few megabytes and
a few file descriptors, however it goes about it (``tests/e2e/test_runtime_api_abuse.py``).
The deadlines are the operator's (``--http-header-timeout`` …), the idle timeout stretched over
the function's timeout (``RuntimeApiServer``).
"""

from __future__ import annotations

from dataclasses import replace

from strato.http.limits import HttpLimits

#: The longest target is ``/2018-06-01/runtime/invocation/<request id>/response`` (about 80
#: bytes); 2 KiB leaves room for a runtime that adds a query string.
MAX_URL_BYTES = 2 * 1024
#: awslambdaric sends an error's X-Ray cause (the stack, as JSON, about 100 bytes a frame) in
#: the ``Lambda-Runtime-Function-XRay-Error-Cause`` field of an error post, up to 1 MiB (AWS's
#: own limit). 128 KiB holds a stack as deep as Python's default recursion limit; a deeper
#: one's error post is refused (431). A full 1 MiB let a function's endless heads on its 8
#: connections raise strato's resident memory by about 100 MB (each head is buffered as it
#: grows); 128 KiB keeps it near 30 MB.
MAX_HEADER_BYTES = 128 * 1024
#: Runtimes send fewer than ten fields.
MAX_HEADERS = 32
#: A runtime waits for each answer; one request read ahead is plenty, and each one queued may
#: hold a body of up to 6 MB.
MAX_PIPELINED = 1
#: Connections of one environment open at once. A runtime keeps one (awslambdaric, strato's
#: own HTTP clients) or opens one per request and closes it (curl in a shell loop); more wait
#: in the kernel's backlog, unaccepted, costing strato nothing (``strato.http.listener``).
MAX_CONNECTIONS = 8
#: Pending connections the kernel keeps for an endpoint strato listens on in the host's
#: network (fallback tier); the namespaces tier's socket is the environment's, made by its
#: own process.
BACKLOG = 16


def runtime_api_limits(edge: HttpLimits) -> HttpLimits:
    """The Runtime API's limits: the edge's deadlines with the sizes above."""
    return replace(edge, max_url_bytes=MAX_URL_BYTES, max_header_bytes=MAX_HEADER_BYTES,
                   max_headers=MAX_HEADERS, max_pipelined=MAX_PIPELINED,
                   max_connections=MAX_CONNECTIONS)
