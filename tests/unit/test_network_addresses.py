"""Environment addresses: allocation in a subnet, round-robin reuse, exhaustion."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from strato.errors import SandboxError
from strato.sandbox.network_pool import AddressAllocator

SUBNET = IPv4Network("10.213.7.0/29")  # hosts .1 to .6
GATEWAY = IPv4Address("10.213.7.1")


def test_hands_out_host_addresses_except_reserved_ones() -> None:
    allocator = AddressAllocator(SUBNET, [GATEWAY])
    assert allocator.capacity == 5
    got = [allocator.allocate() for _ in range(5)]
    assert got == [IPv4Address(f"10.213.7.{n}") for n in range(2, 7)]
    assert allocator.in_use == 5


def test_exhaustion_is_an_error_until_an_address_is_released() -> None:
    allocator = AddressAllocator(SUBNET, [GATEWAY])
    got = [allocator.allocate() for _ in range(5)]
    with pytest.raises(SandboxError, match="no free address"):
        allocator.allocate()
    allocator.release(got[2])
    assert allocator.allocate() == got[2]


def test_a_released_address_comes_back_as_late_as_possible() -> None:
    allocator = AddressAllocator(SUBNET, [GATEWAY])
    first = allocator.allocate()
    allocator.allocate()
    allocator.release(first)
    # The cursor moves on: .4, .5, .6 come before .2 is handed out again.
    assert [allocator.allocate() for _ in range(4)] == \
        [IPv4Address(f"10.213.7.{n}") for n in (4, 5, 6, 2)]
    assert allocator.in_use == 5


def test_releasing_a_free_address_is_an_error() -> None:
    allocator = AddressAllocator(SUBNET, [GATEWAY])
    with pytest.raises(ValueError):
        allocator.release(IPv4Address("10.213.7.3"))
    address = allocator.allocate()
    allocator.release(address)
    with pytest.raises(ValueError):
        allocator.release(address)


def test_reserved_addresses_outside_the_subnet_are_ignored() -> None:
    allocator = AddressAllocator(SUBNET, [IPv4Address("192.0.2.1")])
    assert allocator.capacity == 6
    assert allocator.allocate() == IPv4Address("10.213.7.1")


def test_a_large_subnet() -> None:
    allocator = AddressAllocator(IPv4Network("10.213.0.0/16"), [IPv4Address("10.213.0.1")])
    assert allocator.capacity == 65533
    addresses = {allocator.allocate() for _ in range(1000)}
    assert len(addresses) == 1000
    assert IPv4Address("10.213.0.1") not in addresses
