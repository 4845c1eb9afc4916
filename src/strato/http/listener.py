"""Accepting on a listening socket with a hard cap on open connections and a peer check.

``asyncio.Server`` accepts whatever arrives (up to its backlog per wake-up) and has no way to
stop: past ``ConnectionSlots``' waiting room it accepts and turns connections away, which
costs the process a file descriptor and a write for each. A ``Listener`` accepts itself
instead: with ``limit`` connections open it stops watching the socket, so that newcomers
wait in the kernel's backlog (and, once that is full, are not even answered) at no cost to
this process, and it resumes when one of its connections closes. ``admit`` is asked about
each accepted socket before a transport is made for it; a refused one is closed at once and
holds nothing.

A ``Listener`` counts a connection from its accept until the protocol reports it closed
(``closed``, which the caller wires into its protocol's ``connection_lost``). Loop thread
only.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Out of file descriptors or buffers: accepting pauses this long rather than spin.
_RESOURCE_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_RETRY_S = 1.0

ProtocolFactory = Callable[[], asyncio.Protocol]
#: Whether to serve the peer of an accepted connection (its socket, still blocking-agnostic).
PeerCheck = Callable[[socket.socket], bool]


class Listener:
    def __init__(self, sock: socket.socket, factory: ProtocolFactory, limit: int,
                 admit: PeerCheck | None = None) -> None:
        """Serve ``sock`` (listening; the listener owns it from here) with protocols from
        ``factory``, at most ``limit`` at once. Accepting starts with ``start``."""
        if limit < 1:
            raise ValueError(f"a listener needs a limit of at least 1, not {limit}")
        sock.setblocking(False)
        self._sock: socket.socket | None = sock
        self._factory = factory
        self._limit = limit
        self._admit = admit
        self._open = 0
        self._watching = False
        self._retry: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.get_running_loop()

    @property
    def open(self) -> int:
        """Connections accepted and not yet closed."""
        return self._open

    @property
    def address(self) -> tuple[str, int]:
        if self._sock is None:
            raise ValueError("the listener is closed")
        host, port = self._sock.getsockname()[:2]
        return host, port

    def start(self) -> None:
        """Begin accepting (connections made before wait in the backlog). Idempotent."""
        self._watch()

    def closed(self) -> None:
        """One of this listener's connections closed: its place goes to the backlog."""
        self._open -= 1
        if self._open < self._limit and self._retry is None:
            self._watch()

    def close(self) -> None:
        """Stop listening and close the listening socket; open connections stay open (as
        with ``asyncio.Server.close``). Idempotent."""
        if self._sock is None:
            return
        self._unwatch()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._sock.close()
        self._sock = None

    # accepting ---------------------------------------------------------------------------
    def _watch(self) -> None:
        if self._sock is not None and not self._watching:
            self._loop.add_reader(self._sock.fileno(), self._acceptable)
            self._watching = True

    def _unwatch(self) -> None:
        if self._sock is not None and self._watching:
            self._loop.remove_reader(self._sock.fileno())
            self._watching = False

    def _acceptable(self) -> None:
        sock = self._sock
        while sock is not None and self._open < self._limit:
            try:
                connection, _ = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRORS:
                    raise
                log.warning("cannot accept a connection on %s: %s; retrying in %.0f s",
                            sock.getsockname(), exc, _RETRY_S)
                self._unwatch()
                self._retry = self._loop.call_later(_RETRY_S, self._resume)
                return
            if self._admit is not None and not self._admitted(connection):
                continue
            self._open += 1
            task = self._loop.create_task(self._serve(connection))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._unwatch()  # at the limit: the backlog holds newcomers until one closes

    def _admitted(self, connection: socket.socket) -> bool:
        """Whether ``connection`` may be served; closes it (without an answer) if not."""
        assert self._admit is not None
        try:
            admitted = self._admit(connection)
        except Exception:
            log.exception("checking the peer of a connection failed; refusing it")
            admitted = False
        if not admitted:
            connection.close()
        return admitted

    def _resume(self) -> None:
        self._retry = None
        if self._open < self._limit:
            self._watch()

    async def _serve(self, connection: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, sock=connection)
        except Exception as exc:  # the connection never reached its protocol
            connection.close()
            log.warning("cannot serve an accepted connection: %s", exc)
            self.closed()
