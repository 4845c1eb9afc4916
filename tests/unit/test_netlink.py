"""The rtnetlink messages strato packs itself (``sandbox/netlink.py``): attribute layout and
the kernel's acknowledgements and errors, without a socket."""

from __future__ import annotations

import errno
import struct
from ipaddress import IPv4Address

from strato.sandbox import netlink
from strato.sandbox.netlink import NetlinkError, Rtnl


def test_attributes_are_padded_to_four_bytes_and_read_back() -> None:
    packed = netlink.attr(3, b"eth0\0") + netlink.attr(10, struct.pack("=I", 7))
    assert len(packed) == 12 + 8  # 4 + 5 bytes padded to 12, then 4 + 4
    assert netlink._attrs(packed) == {3: b"eth0\0", 10: struct.pack("=I", 7)}


def test_a_veth_request_carries_the_peer_and_its_namespace() -> None:
    kind, flags, body = netlink.veth_message("br-2", 5, "eth0", 9)
    assert kind == netlink.RTM_NEWLINK and flags & 0x400 and flags & 0x200  # CREATE | EXCL
    attrs = netlink._attrs(body, 16)
    assert attrs[3] == b"br-2\0" and struct.unpack("=I", attrs[10]) == (5,)
    linkinfo = netlink._attrs(attrs[18])
    assert linkinfo[1] == b"veth"
    peer = netlink._attrs(netlink._attrs(linkinfo[2])[1], 16)  # after the peer's ifinfomsg
    assert peer[3] == b"eth0\0" and struct.unpack("=I", peer[28]) == (9,)


def test_an_isolated_port_is_brought_up_by_name_with_its_port_setting() -> None:
    _, _, body = netlink.isolated_port_up_message("br-2")
    family, kind, index, flags, change = struct.unpack_from("=BxHiII", body)
    assert (index, flags & netlink.IFF_UP, change & netlink.IFF_UP) == (0, 1, 1)
    slave = netlink._attrs(netlink._attrs(netlink._attrs(body, 16)[18])[5])
    assert slave == {33: b"\1"}  # IFLA_BRPORT_ISOLATED


def test_addresses_and_routes_name_their_interface_by_index() -> None:
    _, _, address = netlink.add_address_message(4, IPv4Address("10.0.0.2"), 16)
    assert struct.unpack_from("=BBBBI", address) == (2, 16, 0, 0, 4)
    assert netlink._attrs(address, 8)[2] == IPv4Address("10.0.0.2").packed
    _, _, route = netlink.default_route_message(IPv4Address("10.0.0.1"), 4)
    attrs = netlink._attrs(route, 12)
    assert attrs[5] == IPv4Address("10.0.0.1").packed and struct.unpack("=i", attrs[4]) == (4,)


def test_acknowledgements_and_errors_with_the_kernels_message() -> None:
    header = struct.pack("=IHHII", 32, netlink.RTM_NEWLINK, 0, 1, 0)
    assert Rtnl._error(struct.pack("=i", 0) + header) is None
    plain = Rtnl._error(struct.pack("=i", -errno.EEXIST) + header)
    assert isinstance(plain, NetlinkError) and plain.errno == errno.EEXIST
    with_message = struct.pack("=IHHII", 32, netlink.RTM_NEWLINK, 0x200, 1, 0)
    error = Rtnl._error(struct.pack("=i", -errno.EINVAL) + with_message
                        + netlink.attr(1, b"bad attribute\0"))
    assert error is not None and error.errno == errno.EINVAL
    assert "bad attribute" in str(error)
