"""``strato.http.listener.Listener`` on real sockets, and the ``sock_diag`` lookup it is given
for host ports: a connection over the cap is left in the kernel's backlog (no descriptor in
this process) until one closes; a refused peer is closed at accept; the owner of a peer
socket is the uid that made it."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from strato.http.listener import Listener
from strato.sandbox.sock_diag import SockDiag
from tests.support.waiting import until


class Recorder(asyncio.Protocol):
    """Counts its connections; ``listener.closed`` is told when one ends."""

    def __init__(self, listener: list[Listener], live: list[asyncio.Transport]) -> None:
        self._listener = listener
        self._live = live
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._live.append(self._transport)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        self._live.remove(self._transport)  # type: ignore[arg-type]
        self._listener[0].closed()


def test_connections_over_the_cap_wait_in_the_backlog_until_one_closes() -> None:
    async def main() -> None:
        server = socket.create_server(("127.0.0.1", 0), backlog=16)
        port = server.getsockname()[1]
        live: list[asyncio.Transport] = []
        holder: list[Listener] = []
        listener = Listener(server, lambda: Recorder(holder, live), limit=3)
        holder.append(listener)
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
        fds_before = len(os.listdir("/proc/self/fd"))
        listener.start()
        await until(lambda: len(live) == 3, "three connections served")
        # The point is what does not happen: for a while, the other five stay in the backlog.
        await asyncio.sleep(0.1)
        assert len(live) == 3 and listener.open == 3
        assert len(os.listdir("/proc/self/fd")) == fds_before + 3
        first = live[0]
        first.close()
        await until(lambda: first not in live and len(live) == 3, "the next one accepted")
        assert listener.open == 3
        listener.close()
        for transport in list(live):
            transport.close()
        for client in clients:
            client.close()

    asyncio.run(main())


def test_a_refused_peer_is_closed_at_accept_and_holds_no_place() -> None:
    async def main() -> None:
        server = socket.create_server(("127.0.0.1", 0))
        port = server.getsockname()[1]
        live: list[asyncio.Transport] = []
        holder: list[Listener] = []
        listener = Listener(server, lambda: Recorder(holder, live), limit=1,
                            admit=lambda sock: False)
        holder.append(listener)
        listener.start()
        client = socket.create_connection(("127.0.0.1", port))
        client.setblocking(False)
        loop = asyncio.get_running_loop()
        assert await asyncio.wait_for(loop.sock_recv(client, 16), 5) == b""  # closed
        assert listener.open == 0 and live == []
        client.close()
        listener.close()

    asyncio.run(main())


def test_the_owner_of_a_peer_socket_is_the_uid_that_made_it() -> None:
    if os.geteuid() != 0:
        pytest.skip("making a socket as another uid needs root")
    server = socket.create_server(("127.0.0.1", 0))
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # connect as another uid, hold the connection until told
        os.setresuid(1_499_999, 1_499_999, 1_499_999)
        sock = socket.socket()
        sock.connect(server.getsockname())
        os.read(read_end, 1)
        os._exit(0)
    diag = SockDiag()
    try:
        connection, _ = server.accept()
        own = socket.create_connection(server.getsockname())
        mine, _ = server.accept()
        assert diag.peer_uid(connection) == 1_499_999
        assert diag.peer_uid(mine) == os.geteuid()
        assert diag.owner_uid(socket.AF_INET, "127.0.0.1", 1, "127.0.0.1", 2) is None
        for sock in (connection, own, mine):
            sock.close()
    finally:
        os.write(write_end, b"x")
        os.waitpid(child, 0)
        diag.close()
        server.close()
        os.close(read_end)
        os.close(write_end)
