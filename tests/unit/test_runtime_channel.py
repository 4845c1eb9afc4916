"""The platform's end of the runtime channel (``runtime_api/channel.py``): framing, the
operations it turns frames into, and what it does with frames a hostile runtime sends."""

from __future__ import annotations

import struct
from typing import Any

from strato.runtime_api import channel
from strato.runtime_api.channel import MAX_FRAME, RuntimeChannel, frame
from strato.scheduler.environment import Post
from strato.scheduler.invocation import Invocation


class FakeEnvironment:
    """Records what the channel asks of the environment; answers ``outcome`` to posts."""

    env_id = "env-1"

    def __init__(self, outcome: Post = Post.ACCEPTED) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.outcome = outcome

    def runtime_next(self, waiter: Any) -> None:
        self.calls.append(("next", waiter))

    def runtime_response(self, request_id: str, body: bytes | None) -> Post:
        self.calls.append(("response", request_id, body))
        return self.outcome

    def runtime_error(self, request_id: str, body: bytes, error_type: str | None) -> Post:
        self.calls.append(("error", request_id, body, error_type))
        return self.outcome

    def runtime_init_error(self, body: bytes, error_type: str | None) -> Post:
        self.calls.append(("init_error", body, error_type))
        return self.outcome


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True


def _channel(outcome: Post = Post.ACCEPTED) -> tuple[RuntimeChannel, FakeEnvironment, FakeTransport]:
    env = FakeEnvironment(outcome)
    protocol = RuntimeChannel(env)  # type: ignore[arg-type]
    transport = FakeTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, env, transport


def _frames(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    while data:
        length, kind = struct.unpack_from("!IB", data)
        out.append((kind, data[5:4 + length]))
        data = data[4 + length:]
    return out


def test_a_response_and_the_next_that_follows_it_in_one_chunk() -> None:
    protocol, env, transport = _channel()
    protocol.data_received(frame(channel.RESPONSE, b"req-1", b'{"ok": true}') + frame(channel.NEXT))
    assert env.calls == [("response", "req-1", b'{"ok": true}'), ("next", protocol)]
    assert transport.written == []  # an accepted post is not answered


def test_frames_split_anywhere_are_reassembled() -> None:
    body = bytes(range(256)) * 1000  # NULs and every byte value
    data = frame(channel.ERROR, b"req-2", b"Oops", body) + frame(channel.NEXT)
    for cut in (1, 3, 5, 6, 100, len(data) - 1):
        protocol, env, _ = _channel()
        for piece in (data[:cut], data[cut:]):
            protocol.data_received(piece)
        assert env.calls == [("error", "req-2", body, "Oops"), ("next", protocol)], cut
    protocol, env, _ = _channel()
    for i in range(len(data[:2000])):
        protocol.data_received(data[i:i + 1])
    protocol.data_received(data[2000:])
    assert env.calls[0] == ("error", "req-2", body, "Oops")


def test_an_event_frame_carries_the_invocation() -> None:
    protocol, _, transport = _channel()
    invocation = Invocation("req-3", b'{"a": 1}', "arn:aws:lambda:us-east-1:000000000000:function:f",
                            lambda result: None, client_context='{"custom": {}}', trace_id="Root=1-x")
    protocol.deliver(invocation, 1_700_000_000_123)
    [(kind, payload)] = _frames(b"".join(transport.written))
    assert kind == channel.EVENT
    assert payload.split(b"\0", 6) == [b"req-3", b"1700000000123",
                                       b"arn:aws:lambda:us-east-1:000000000000:function:f",
                                       b"Root=1-x", b'{"custom": {}}', b"", b'{"a": 1}']


def test_a_refused_post_is_answered() -> None:
    protocol, env, transport = _channel(Post.INVALID_REQUEST_ID)
    protocol.data_received(frame(channel.RESPONSE, b"stale", b"{}"))
    [(kind, message)] = _frames(b"".join(transport.written))
    assert kind == channel.REFUSED and b"invalid request ID" in message
    assert not transport.closed


def test_an_oversized_response_is_skipped_unbuffered_and_fails_as_too_large() -> None:
    protocol, env, transport = _channel(Post.TOO_LARGE)
    size = MAX_FRAME + 10
    head = struct.pack("!IB", size, channel.RESPONSE) + b"req-4\0"
    protocol.data_received(head + b"x" * 1000)
    assert env.calls == [("response", "req-4", None)]
    remaining = size - 1 - len(b"req-4\0") - 1000
    chunk = b"y" * 65536
    while remaining > len(chunk):
        protocol.data_received(chunk)
        remaining -= len(chunk)
        assert len(protocol._buffer) == 0  # nothing of it is kept
    # The last piece of the big frame and a whole NEXT in one chunk.
    protocol.data_received(b"z" * remaining + frame(channel.NEXT))
    assert env.calls[-1] == ("next", protocol)
    assert not transport.closed


def test_malformed_frames_close_the_channel() -> None:
    for data in (struct.pack("!IB", 0, 0), frame(200, b"what"), frame(channel.ERROR, b"no-fields"),
                 struct.pack("!IB", MAX_FRAME + 1, channel.NEXT),
                 # A stream's parts outside a stream: work for the platform, for nothing.
                 frame(channel.CHUNK, b"x" * 1000), frame(channel.STREAM_END, b"\0")):
        protocol, env, transport = _channel()
        protocol.data_received(data + frame(channel.NEXT))
        assert transport.closed, data[:8]
        assert env.calls == []


def test_a_runtime_that_makes_the_platform_work_for_nothing_loses_its_channel() -> None:
    protocol, env, transport = _channel()
    protocol.data_received(frame(channel.NEXT))
    protocol.data_received(frame(channel.NEXT))
    assert transport.closed and env.calls == [("next", protocol)]

    protocol, env, transport = _channel(Post.INVALID_REQUEST_ID)
    for _ in range(channel.MAX_REFUSALS):
        protocol.data_received(frame(channel.RESPONSE, b"forged", b"{}"))
    assert not transport.closed and len(transport.written) == channel.MAX_REFUSALS
    protocol.data_received(frame(channel.RESPONSE, b"forged", b"{}"))
    assert transport.closed


def test_an_event_resets_what_the_runtime_may_ask() -> None:
    protocol, env, transport = _channel()
    invocation = Invocation("req-5", b"{}", "arn", lambda result: None)
    for _ in range(3):
        protocol.data_received(frame(channel.NEXT))
        protocol.deliver(invocation, 0)
    assert not transport.closed and [c[0] for c in env.calls] == ["next"] * 3
