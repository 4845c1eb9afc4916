"""The egress firewall as nftables text, the resolv.conf reader and the egress settings."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest

from strato.sandbox.network import EgressConfig, EgressNetwork
from strato.sandbox.network_rules import EgressRules, delete_script, nameservers, render_ruleset

SUBNET = IPv4Network("10.213.0.0/16")


def _chain(text: str, name: str) -> list[str]:
    """The rule lines of chain ``name`` in a rendered ruleset."""
    lines = text.splitlines()
    start = lines.index(f"\tchain {name} {{") + 1
    end = lines.index("\t}", start)
    return [line.strip() for line in lines[start:end]]


def test_the_table_is_replaced_as_a_unit() -> None:
    text = render_ruleset(EgressRules("strato", "strato0", SUBNET))
    assert text.splitlines()[:3] == ["add table inet strato", "delete table inet strato",
                                     "table inet strato {"]
    assert text.endswith("}\n")
    assert delete_script("strato") == "add table inet strato\ndelete table inet strato\n"


def test_nothing_from_the_bridge_reaches_the_host() -> None:
    text = render_ruleset(EgressRules("strato", "strato0", SUBNET))
    assert _chain(text, "input") == [
        "type filter hook input priority filter; policy accept;",
        'iifname "strato0" drop',
    ]


def test_forwarding_lets_only_replies_into_the_subnet() -> None:
    text = render_ruleset(EgressRules("strato", "strato0", SUBNET))
    assert _chain(text, "forward") == [
        "type filter hook forward priority filter; policy accept;",
        'iifname "strato0" jump egress',
        'oifname "strato0" ct state established,related accept',
        'oifname "strato0" drop',
    ]


def test_guard_drops_other_forwarded_ipv4_when_strato_turned_forwarding_on() -> None:
    text = render_ruleset(EgressRules("strato", "strato0", SUBNET, guard_forwarding=True))
    # ... but not other strato servers' (bridges strato1, strato2...): their tables judge it.
    assert _chain(text, "forward")[-1] == \
        'iifname != "strato*" oifname != "strato*" meta nfproto ipv4 drop'



def test_egress_blocks_fixed_ranges_the_subnet_and_given_networks_merged() -> None:
    rules = EgressRules("strato", "strato0", SUBNET,
                        blocked=(IPv4Network("192.0.2.0/24"), IPv4Network("10.0.0.0/8"),
                                 IPv4Network("169.254.169.254/32")))
    egress = _chain(render_ruleset(rules), "egress")
    assert egress[:2] == ['oifname "strato0" drop', "meta nfproto != ipv4 drop"]
    # 10.0.0.0/8 swallows the subnet, 169.254/16 the metadata address, 224/4 + 240/4 merge:
    # nftables refuses overlapping intervals in one set.
    assert egress[2] == ("ip daddr { 0.0.0.0/8, 10.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16, "
                         "192.0.2.0/24, 224.0.0.0/3 } drop")
    assert egress[-1] == "accept"


def test_masquerade_only_what_leaves_through_another_interface() -> None:
    text = render_ruleset(EgressRules("strato", "strato0", SUBNET))
    assert _chain(text, "postrouting")[-1] == \
        'ip saddr 10.213.0.0/16 oifname != "strato0" masquerade'


def test_nameservers_get_a_port_53_exception_before_the_blocks() -> None:
    rules = EgressRules("strato", "strato0", SUBNET, blocked=(IPv4Network("192.168.1.0/24"),),
                        nameservers=(IPv4Address("192.168.1.1"), IPv4Address("127.0.0.53"),
                                     IPv4Address("10.213.0.9"), IPv4Address("192.168.1.1"),
                                     IPv4Address("169.254.169.253"), IPv4Address("9.9.9.9")))
    egress = _chain(render_ruleset(rules), "egress")
    assert egress[2] == ("ip daddr { 9.9.9.9, 192.168.1.1 } meta l4proto { tcp, udp } "
                         "th dport 53 accept")
    assert egress[3].endswith(" drop")


def test_no_nameserver_no_exception() -> None:
    rules = EgressRules("strato", "strato0", SUBNET, nameservers=(IPv4Address("127.0.0.53"),))
    assert not any("dport 53" in line for line in render_ruleset(rules).splitlines())


@pytest.mark.parametrize("table, bridge", [("strato; flush ruleset", "strato0"),
                                           ("strato", 'x" accept'), ("", "strato0"),
                                           ("strato", "a-name-too-long-for-linux")])
def test_names_that_would_inject_or_not_fit_are_refused(table: str, bridge: str) -> None:
    with pytest.raises(ValueError):
        EgressRules(table, bridge, SUBNET)


def test_nameservers_are_read_from_resolv_conf() -> None:
    text = ("# generated\nsearch example.internal\nnameserver 10.255.255.53\n"
            "nameserver fd00::53\nnameserver 1.1.1.1 # comment\nnameserver fe80::1%eth0\n"
            "nameserver not-an-address\nnameserver 10.255.255.53\noptions ndots:2\n")
    assert nameservers(text) == [IPv4Address("10.255.255.53"), IPv4Address("1.1.1.1")]


def test_default_config_and_host_end_names() -> None:
    config = EgressConfig()
    assert (config.bridge, config.network, config.gateway, config.table) == \
        ("strato0", SUBNET, IPv4Address("10.213.0.1"), "strato")
    network = EgressNetwork(config)
    assert network.host_ifname(IPv4Address("10.213.0.2")) == "strato0-2"
    assert network.host_ifname(IPv4Address("10.213.255.254")) == "strato0-fffe"


@pytest.mark.parametrize("fields", [{"subnet": "10.213.0.0/30"}, {"subnet": "nonsense"},
                                    {"bridge": "strato-bridge"}, {"bridge": "a" * 11},
                                    {"blocked": ("10.0.0.0/33",)}])
def test_invalid_config_is_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        EgressConfig(**fields)


def test_a_smaller_subnet_allows_a_longer_bridge_name() -> None:
    assert EgressConfig(bridge="a" * 12, subnet="10.9.0.0/24").bridge == "a" * 12
