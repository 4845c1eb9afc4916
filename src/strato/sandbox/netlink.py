"""A small rtnetlink client: the link, address and route requests strato's network needs,
packed and parsed with ``struct``.

One ``Rtnl`` is one ``NETLINK_ROUTE`` socket, bound to the network namespace of the thread
that opened it (a socket keeps its namespace whatever the thread does next). Requests are
synchronous: ``request`` sends any number of messages in one ``sendmsg`` and waits for every
acknowledgement, so a batch costs one system call each way; the kernel handles the messages
in order. Errors are ``NetlinkError`` (an OSError with the errno and, where the kernel gives
one, its extended message), raised for the first message that failed.

Not thread-safe: one thread per ``Rtnl`` at a time.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

NETLINK_ROUTE = 0
_SOL_NETLINK = 270
_NETLINK_CAP_ACK, _NETLINK_EXT_ACK = 10, 11

_NLMSG_ERROR, _NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26

_F_REQUEST, _F_MULTI, _F_ACK = 0x1, 0x2, 0x4
_F_DUMP = 0x300
_F_EXCL, _F_CREATE = 0x200, 0x400
_F_ACK_TLVS = 0x200  # in an error message: extended acknowledgement attributes follow
_NLMSGERR_ATTR_MSG = 1

_IFLA_ADDRESS, _IFLA_IFNAME, _IFLA_MASTER, _IFLA_LINKINFO = 1, 3, 10, 18
_IFLA_NET_NS_FD = 28
_IFLA_INFO_KIND, _IFLA_INFO_DATA, _IFLA_INFO_SLAVE_DATA = 1, 2, 5
_VETH_INFO_PEER = 1
_IFLA_BRPORT_ISOLATED = 33
_IFA_ADDRESS, _IFA_LOCAL = 1, 2
_RTA_DST, _RTA_OIF, _RTA_GATEWAY, _RTA_PRIORITY, _RTA_TABLE = 1, 4, 5, 6, 15
_NLA_TYPE_MASK = 0x3FFF

IFF_UP = 0x1
_RT_TABLE_MAIN, _RTPROT_BOOT, _RTPROT_STATIC, _RT_SCOPE_UNIVERSE = 254, 3, 4, 0
_RTN_UNICAST, _RTN_UNREACHABLE = 1, 7
_ESRCH, _EEXIST = 3, 17

_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefix length, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg
_ATTR = struct.Struct("=HH")  # rtattr: length, type
_RECV_BYTES = 1 << 16


class NetlinkError(OSError):
    """The kernel refused a request (``errno`` is the reason)."""


@dataclass(frozen=True)
class Link:
    index: int
    name: str


@dataclass(frozen=True)
class Route:
    """A route of the main table: its destination and metric (priority)."""

    network: IPv4Network
    metric: int


@dataclass(frozen=True)
class Address:
    index: int
    address: IPv4Address
    prefixlen: int


def attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    length = _ATTR.size + len(payload)
    return _ATTR.pack(length, kind) + payload + b"\0" * (-length % 4)


def nested(kind: int, *attrs: bytes) -> bytes:
    """Attributes inside an attribute (flagged as nested the way iproute2 does: not at all,
    which every kernel's route netlink parser accepts)."""
    return attr(kind, b"".join(attrs))


def _name(value: str) -> bytes:
    return value.encode() + b"\0"


def _attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """The attributes in ``data`` from ``offset``: type → payload (the last one wins)."""
    found: dict[int, bytes] = {}
    while offset + _ATTR.size <= len(data):
        length, kind = _ATTR.unpack_from(data, offset)
        if length < _ATTR.size:
            break
        found[kind & _NLA_TYPE_MASK] = data[offset + _ATTR.size:offset + length]
        offset += (length + 3) & ~3
    return found


def _text(payload: bytes) -> str:
    return payload.split(b"\0", 1)[0].decode(errors="replace")


class Rtnl:
    """A route netlink socket in the calling thread's network namespace. Close it when done
    (also a context manager)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                   NETLINK_ROUTE)
        try:
            self._sock.bind((0, 0))
            for option in (_NETLINK_CAP_ACK, _NETLINK_EXT_ACK):
                # Older kernels: errors come without their extended message.
                with contextlib.suppress(OSError):
                    self._sock.setsockopt(_SOL_NETLINK, option, 1)
        except BaseException:
            self._sock.close()
            raise
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the protocol ---------------------------------------------------------------------
    def _message(self, kind: int, flags: int, body: bytes) -> tuple[int, bytes]:
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        return self._seq, _HEADER.pack(_HEADER.size + len(body), kind,
                                       flags | _F_REQUEST, self._seq, 0) + body

    def request(self, *messages: tuple[int, int, bytes]) -> None:
        """Send ``(type, flags, body)`` messages in one batch, each asking for an
        acknowledgement; wait for all of them. Raises NetlinkError for the first that
        failed (the kernel still handles the others)."""
        sequences: list[int] = []
        data = bytearray()
        for kind, flags, body in messages:
            seq, message = self._message(kind, flags | _F_ACK, body)
            sequences.append(seq)
            data += message
        self._sock.sendall(data)
        errors: dict[int, NetlinkError] = {}
        waiting = set(sequences)
        while waiting:
            for kind, _, seq, payload in self._receive():
                if kind == _NLMSG_ERROR and seq in waiting:
                    waiting.discard(seq)
                    error = self._error(payload)
                    if error is not None:
                        errors[seq] = error
        for seq in sequences:
            if seq in errors:
                raise errors[seq]

    def dump(self, kind: int, body: bytes) -> list[tuple[int, bytes]]:
        """``(type, payload)`` of every message a dump request answers."""
        seq, message = self._message(kind, _F_DUMP, body)
        self._sock.sendall(message)
        found: list[tuple[int, bytes]] = []
        while True:
            for answer, _, answer_seq, payload in self._receive():
                if answer_seq != seq:
                    continue
                if answer == _NLMSG_DONE:
                    return found
                if answer == _NLMSG_ERROR:
                    error = self._error(payload)
                    if error is not None:
                        raise error
                    return found
                found.append((answer, payload))

    def _receive(self) -> Iterator[tuple[int, int, int, bytes]]:
        data = self._sock.recv(_RECV_BYTES)
        offset = 0
        while offset + _HEADER.size <= len(data):
            length, kind, flags, seq, _ = _HEADER.unpack_from(data, offset)
            if length < _HEADER.size:
                break
            yield kind, flags, seq, data[offset + _HEADER.size:offset + length]
            offset += (length + 3) & ~3

    @staticmethod
    def _error(payload: bytes) -> NetlinkError | None:
        """None for an acknowledgement, else the error it carries."""
        (code,) = struct.unpack_from("=i", payload)
        if code == 0:
            return None
        message = os.strerror(-code)
        # With NETLINK_CAP_ACK the request's header follows (without its body), then the
        # extended attributes, of which the message is the one worth showing.
        _, _, flags, _, _ = _HEADER.unpack_from(payload, 4)
        if flags & _F_ACK_TLVS:
            extra = _attrs(payload, 4 + _HEADER.size).get(_NLMSGERR_ATTR_MSG)
            if extra:
                message = f"{message} ({_text(extra)})"
        return NetlinkError(-code, message)

    # --- links ----------------------------------------------------------------------------
    def links(self) -> list[Link]:
        found = []
        for _, payload in self.dump(RTM_GETLINK, _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0)):
            _, _, index, _, _ = _IFINFO.unpack_from(payload)
            name = _attrs(payload, _IFINFO.size).get(_IFLA_IFNAME)
            if name is not None:
                found.append(Link(index, _text(name)))
        return found

    def link_index(self, name: str) -> int | None:
        """The index of interface ``name``, or None when there is none."""
        seq, message = self._message(RTM_GETLINK, 0, _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
                                     + attr(_IFLA_IFNAME, _name(name)))
        self._sock.sendall(message)
        while True:
            for kind, _, answer_seq, payload in self._receive():
                if answer_seq != seq:
                    continue
                if kind == RTM_NEWLINK:
                    return int(_IFINFO.unpack_from(payload)[2])
                error = self._error(payload) if kind == _NLMSG_ERROR else None
                if error is not None and error.errno == 19:  # ENODEV
                    return None
                if error is not None:
                    raise error
                return None

    def delete_link(self, name: str) -> bool:
        """Delete interface ``name`` (a veth pair goes as a whole); False if there was none."""
        try:
            self.request(delete_link_message(name))
        except NetlinkError as exc:
            if exc.errno == 19:  # ENODEV
                return False
            raise
        return True

    def delete_links(self, names: Sequence[str]) -> None:
        """Delete many interfaces in one batch; ones already gone are no error."""
        if not names:
            return
        try:
            self.request(*(delete_link_message(name) for name in names))
        except NetlinkError as exc:
            if exc.errno != 19:
                raise
            for name in names:  # which ones failed is not known: go one by one
                self.delete_link(name)

    def add_bridge(self, name: str, mac: bytes) -> None:
        self.request((RTM_NEWLINK, _F_CREATE | _F_EXCL,
                      _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + attr(_IFLA_IFNAME, _name(name))
                      + attr(_IFLA_ADDRESS, mac)
                      + nested(_IFLA_LINKINFO, attr(_IFLA_INFO_KIND, b"bridge"))))

    def set_up(self, name: str) -> None:
        self.request(set_up_message(name))

    def add_address(self, index: int, address: IPv4Address, prefixlen: int) -> None:
        self.request(add_address_message(index, address, prefixlen))

    def unreachable_routes(self) -> list[Route]:
        """The IPv4 ``unreachable`` routes of the main table."""
        found = []
        for _, payload in self.dump(RTM_GETROUTE, _RTMSG.pack(socket.AF_INET, 0, 0, 0, 0, 0,
                                                              0, 0, 0)):
            _, dst_len, _, _, table, _, _, kind, _ = _RTMSG.unpack_from(payload)
            attrs = _attrs(payload, _RTMSG.size)
            if len(attrs.get(_RTA_TABLE, b"")) == 4:
                (table,) = struct.unpack("=I", attrs[_RTA_TABLE])
            if kind != _RTN_UNREACHABLE or table != _RT_TABLE_MAIN:
                continue
            raw = attrs.get(_RTA_DST, bytes(4))
            priority = attrs.get(_RTA_PRIORITY)
            found.append(Route(IPv4Network((IPv4Address(raw), dst_len)),
                               struct.unpack("=I", priority)[0] if priority else 0))
        return found

    def add_unreachable_route(self, network: IPv4Network, metric: int) -> None:
        """``ip route add unreachable <network> metric <metric>`` in the main table; one
        that is there already is no error."""
        try:
            self.request(unreachable_route_message(RTM_NEWROUTE, network, metric))
        except NetlinkError as exc:
            if exc.errno != _EEXIST:
                raise

    def delete_unreachable_route(self, network: IPv4Network, metric: int) -> bool:
        """Remove that route; False if there was none."""
        try:
            self.request(unreachable_route_message(RTM_DELROUTE, network, metric))
        except NetlinkError as exc:
            if exc.errno == _ESRCH:
                return False
            raise
        return True

    def addresses(self) -> list[Address]:
        found = []
        for _, payload in self.dump(RTM_GETADDR, _IFADDR.pack(socket.AF_INET, 0, 0, 0, 0)):
            _, prefixlen, _, _, index = _IFADDR.unpack_from(payload)
            attrs = _attrs(payload, _IFADDR.size)
            raw = attrs.get(_IFA_LOCAL) or attrs.get(_IFA_ADDRESS)
            if raw is not None and len(raw) == 4:
                found.append(Address(index, IPv4Address(raw), prefixlen))
        return found


# --- messages, for batches ----------------------------------------------------------------

def veth_message(name: str, master: int, peer: str, peer_netns_fd: int) -> tuple[int, int, bytes]:
    """Create a veth pair: ``name`` here, a port of bridge ``master`` (down), and ``peer`` born
    in the network namespace ``peer_netns_fd`` refers to."""
    peer_info = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + attr(_IFLA_IFNAME, _name(peer)) \
        + attr(_IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd))
    linkinfo = nested(_IFLA_LINKINFO, attr(_IFLA_INFO_KIND, b"veth"),
                      nested(_IFLA_INFO_DATA, attr(_VETH_INFO_PEER, peer_info)))
    return (RTM_NEWLINK, _F_CREATE | _F_EXCL,
            _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + attr(_IFLA_IFNAME, _name(name))
            + attr(_IFLA_MASTER, struct.pack("=I", master)) + linkinfo)


def isolated_port_up_message(name: str) -> tuple[int, int, bytes]:
    """Make bridge port ``name`` isolated (it talks to the bridge only, never to other
    ports), then bring it up: the kernel applies the port setting first."""
    return (RTM_NEWLINK, 0,
            _IFINFO.pack(socket.AF_UNSPEC, 0, 0, IFF_UP, IFF_UP) + attr(_IFLA_IFNAME, _name(name))
            + nested(_IFLA_LINKINFO, nested(_IFLA_INFO_SLAVE_DATA,
                                            attr(_IFLA_BRPORT_ISOLATED, b"\1"))))


def set_up_message(name: str) -> tuple[int, int, bytes]:
    return (RTM_NEWLINK, 0,
            _IFINFO.pack(socket.AF_UNSPEC, 0, 0, IFF_UP, IFF_UP) + attr(_IFLA_IFNAME, _name(name)))


def delete_link_message(name: str) -> tuple[int, int, bytes]:
    return (RTM_DELLINK, 0,
            _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + attr(_IFLA_IFNAME, _name(name)))


def add_address_message(index: int, address: IPv4Address, prefixlen: int
                        ) -> tuple[int, int, bytes]:
    packed = address.packed
    return (RTM_NEWADDR, _F_CREATE | _F_EXCL,
            _IFADDR.pack(socket.AF_INET, prefixlen, 0, 0, index)
            + attr(_IFA_LOCAL, packed) + attr(_IFA_ADDRESS, packed))


def default_route_message(gateway: IPv4Address, index: int) -> tuple[int, int, bytes]:
    return (RTM_NEWROUTE, _F_CREATE | _F_EXCL,
            _RTMSG.pack(socket.AF_INET, 0, 0, 0, _RT_TABLE_MAIN, _RTPROT_BOOT,
                        _RT_SCOPE_UNIVERSE, _RTN_UNICAST, 0)
            + attr(_RTA_GATEWAY, gateway.packed) + attr(_RTA_OIF, struct.pack("=i", index)))


def unreachable_route_message(kind: int, network: IPv4Network, metric: int
                              ) -> tuple[int, int, bytes]:
    """Add (``RTM_NEWROUTE``) or delete (``RTM_DELROUTE``) an ``unreachable`` route to
    ``network`` in the main table with ``metric``: what it covers fails with EHOSTUNREACH
    where no more specific or lower-metric route exists, rather than following the default
    route."""
    flags = _F_CREATE | _F_EXCL if kind == RTM_NEWROUTE else 0
    return (kind, flags,
            _RTMSG.pack(socket.AF_INET, network.prefixlen, 0, 0, _RT_TABLE_MAIN, _RTPROT_STATIC,
                        _RT_SCOPE_UNIVERSE, _RTN_UNREACHABLE, 0)
            + attr(_RTA_DST, network.network_address.packed)
            + attr(_RTA_PRIORITY, struct.pack("=I", metric)))
