"""Who owns the other end of a local TCP connection: one ``NETLINK_SOCK_DIAG`` lookup.

TCP carries no credentials (``SO_PEERCRED`` is for unix sockets), but when both ends of a
connection are on this host, in this network namespace, the kernel can say which uid made the
peer's socket: an exact ``inet_diag_req_v2`` lookup by the connection's four-tuple answers
one ``inet_diag_msg`` whose ``idiag_uid`` is the uid (the file system uid) the socket was
created with. Runtime API endpoints served on the host's loopback use it to serve only their
own environment's uid (``strato.runtime_api.endpoints``).

One ``SockDiag`` is one netlink socket; a lookup is one ``send`` and one ``recv`` of about
a hundred bytes each (see ``docs/security.md`` for its measured cost). Not thread-safe: one
thread at a time (the event loop's).
"""

from __future__ import annotations

import errno
import socket
import struct

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
_NLMSG_ERROR = 2
_F_REQUEST = 0x1

_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port
#: inet_diag_req_v2 up to its socket id: family, protocol, extensions, pad, states.
_REQUEST = struct.Struct("=BBBxI")
#: inet_diag_sockid: ports and addresses in network order, then interface and cookie.
_SOCKID = struct.Struct("!HH16s16s")
_SOCKID_TAIL = struct.Struct("=III")
_NO_COOKIE = 0xFFFFFFFF
_ALL_STATES = 0xFFFFFFFF
#: Where ``idiag_uid`` sits in an inet_diag_msg: family, state, timer, retransmits (4), the
#: socket id (48), expires, receive queue, send queue (12).
_UID_OFFSET = 4 + 48 + 12
_RECV_BYTES = 8192


class SockDiag:
    """A sock_diag netlink socket of the calling thread's network namespace. Close it when
    done."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC,
                                   NETLINK_SOCK_DIAG)
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def peer_uid(self, connection: socket.socket) -> int | None:
        """The uid that created the socket at the other end of the accepted TCP
        ``connection``, or None when the kernel knows no such socket here (the peer is on
        another host or in another network namespace, or has already gone). Raises OSError
        for a failure of the lookup itself."""
        family = connection.family
        if family not in (socket.AF_INET, socket.AF_INET6):
            return None
        local, peer = connection.getsockname(), connection.getpeername()
        return self.owner_uid(family, peer[0], peer[1], local[0], local[1])

    def owner_uid(self, family: int, address: str, port: int, remote_address: str,
                  remote_port: int) -> int | None:
        """The uid that created the TCP socket bound to ``address:port`` and connected to
        ``remote_address:remote_port``, or None when there is none."""
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        body = (_REQUEST.pack(family, socket.IPPROTO_TCP, 0, _ALL_STATES)
                + _SOCKID.pack(port, remote_port, _packed(family, address),
                               _packed(family, remote_address))
                + _SOCKID_TAIL.pack(0, _NO_COOKIE, _NO_COOKIE))
        self._sock.send(_HEADER.pack(_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY,
                                     _F_REQUEST, self._seq, 0) + body)
        while True:
            data = self._sock.recv(_RECV_BYTES)
            if len(data) < _HEADER.size:
                raise OSError(errno.EPROTO, "a truncated sock_diag answer")
            length, kind, _, seq, _ = _HEADER.unpack_from(data)
            if seq != self._seq:
                continue  # the answer to an earlier lookup that gave up
            payload = data[_HEADER.size:length]
            if kind == _NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", payload)
                if -code == errno.ENOENT:
                    return None
                raise OSError(-code, f"sock_diag lookup: {errno.errorcode.get(-code, code)}")
            if kind != SOCK_DIAG_BY_FAMILY or len(payload) < _UID_OFFSET + 4:
                raise OSError(errno.EPROTO, f"an unexpected sock_diag answer (type {kind})")
            (uid,) = struct.unpack_from("=I", payload, _UID_OFFSET)
            return int(uid)


def _packed(family: int, address: str) -> bytes:
    """``address`` in the 16 bytes of an inet_diag_sockid (IPv4 in the first four)."""
    return socket.inet_pton(family, address).ljust(16, b"\0")
