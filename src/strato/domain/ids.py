"""Identifiers the invoke path makes for every request: request ids and X-Ray trace ids.

Both are random, drawn from the operating system's generator in blocks (one ``getrandom``
call per few hundred ids, instead of one or two per invocation); a block belongs to the
thread that drew it.
"""

from __future__ import annotations

import os
import threading
import time

_BLOCK = 4096


class _Entropy(threading.local):
    def __init__(self) -> None:
        self.block = b""
        self.offset = 0


_entropy = _Entropy()


def random_bytes(count: int) -> bytes:
    """``count`` (at most 4096) bytes from the OS generator, served from a block."""
    state = _entropy
    start = state.offset
    end = start + count
    if end > len(state.block):
        state.block, start, end = os.urandom(_BLOCK), 0, count
    state.offset = end
    return state.block[start:end]


def request_id() -> str:
    """A random (version 4) UUID in its text form."""
    h = bytearray(random_bytes(16))
    h[6] = (h[6] & 0x0F) | 0x40
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def trace_id(now: float | None = None) -> str:
    """A new X-Ray trace header, not sampled: ``Root=1-<epoch hex>-<96 bits>;Parent=<64 bits>``
    (https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-tracingheader)."""
    noise = random_bytes(20).hex()
    epoch = int(time.time() if now is None else now)
    return f"Root=1-{epoch:08x}-{noise[:24]};Parent={noise[24:]};Sampled=0"
