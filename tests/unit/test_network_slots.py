"""Egress slots: what each slot's bridge, table and subnet are, and that two claims never
get the same slot."""

from __future__ import annotations

import os
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from strato.sandbox.network_slots import SLOTS, claim, slot_config, slots_of


def test_slots_name_and_address_servers_apart() -> None:
    first, second = slot_config(0, "strato", "10.213.0.0/16"), slot_config(1, "strato",
                                                                           "10.213.0.0/16")
    assert (first.bridge, first.table, first.subnet) == ("strato0", "strato0", "10.213.0.0/22")
    assert (second.bridge, second.table, second.subnet) == ("strato1", "strato1",
                                                            "10.213.4.0/22")
    assert str(first.gateway) == "10.213.0.1"
    last = slot_config(SLOTS - 1, "strato", "10.213.0.0/16")
    assert last.network.subnet_of(IPv4Network("10.213.0.0/16"))
    assert len({slot_config(i, "s", "10.213.0.0/16").subnet for i in range(SLOTS)}) == SLOTS


@pytest.mark.parametrize(("prefix", "pool"), [("strato", "10.213.0.0/23"),
                                               ("a" * 10, "10.213.0.0/16"),
                                               ("bad-name", "10.213.0.0/16")])
def test_unusable_settings_are_refused(prefix: str, pool: str) -> None:
    with pytest.raises(ValueError):
        slot_config(10, prefix, pool)


def test_a_small_pool_has_fewer_slots() -> None:
    assert slots_of("10.213.0.0/20") == 4
    assert slots_of("10.0.0.0/8") == SLOTS


@pytest.mark.skipif(os.geteuid() != 0, reason="reads the host's interfaces and nftables")
def test_claims_never_share_a_slot(tmp_path: Path) -> None:
    prefix = f"zq{os.getpid() % 1000}"
    first = claim(prefix, "10.213.0.0/20", str(tmp_path))
    second = claim(prefix, "10.213.0.0/20", str(tmp_path))
    try:
        assert {first.index, second.index} == {0, 1}
        assert (tmp_path / f"{first.index}.lock").read_text().split() == [
            str(os.getpid()), first.config.bridge, first.config.table, first.config.subnet]
        first.release()
        first.release()  # idempotent
        again = claim(prefix, "10.213.0.0/20", str(tmp_path))
        assert again.index == first.index
        again.release()
    finally:
        first.release()
        second.release()
