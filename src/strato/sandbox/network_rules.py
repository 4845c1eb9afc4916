"""The egress firewall of environments in internet mode, as nftables text (pure).

``render_ruleset`` turns an ``EgressRules`` into the script ``nft -f -`` loads. The table is
strato's own (``table inet strato`` by default) and is always replaced or removed as a unit:
the script first adds then deletes it, so loading it twice, or over a table left behind by a
crashed run, gives the same result and never touches any other table.

What the rules do, chain by chain (``<bridge>`` is the environments' bridge)::

    input        iifname <bridge> drop
        Nothing from an environment is delivered to the host itself, whatever the destination
        address: the bridge gateway, eth0's address, any address the host has now or adds
        later, IPv4 and IPv6 alike. This is what keeps the host's own services (strato's API,
        a database on 0.0.0.0, sshd) out of reach; the host's loopback is already out of reach
        because an environment has a loopback of its own.
    forward      iifname <bridge> jump egress
                 oifname <bridge> ct state established,related accept
                 oifname <bridge> drop
                 [meta nfproto ipv4 drop]         (only when strato turned forwarding on)
        Replies come back in; nothing else is routed into the environments' subnet. When
        IPv4 forwarding was off before strato, the last rule keeps it off for everything but
        the environments, so that the host does not become a router for its own networks.
    egress       oifname <bridge> drop             one environment to another, via the gateway
                 meta nfproto != ipv4 drop         environments have IPv4 only
                 ip daddr {nameservers} tcp/udp dport 53 accept
                 ip daddr {blocked} drop
                 accept
    postrouting  ip saddr <subnet> oifname != <bridge> masquerade

``blocked`` always holds what no environment may reach: the unspecified, loopback,
link-local (169.254.169.254 and other metadata services), multicast and reserved ranges, and
the environments' own subnet. ``EgressNetwork`` adds the host's directly connected networks
(the host's neighbours: a LAN, a cloud VPC, the router's admin page), which a function outside
a VPC does not reach on Lambda either. The host's nameservers are allowed on port 53 even when
they sit in a blocked network, so that name resolution keeps working.

Layer 2 is closed separately: bridge ports are isolated, so environments never exchange frames.
Another firewall on the host can still drop what these rules accept (Docker sets the iptables
FORWARD policy to drop): there, the bridge must be allowed in that firewall too.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

#: Destinations no environment may reach, whatever the host's networks are.
ALWAYS_BLOCKED = tuple(IPv4Network(n) for n in (
    "0.0.0.0/8",        # "this network"
    "127.0.0.0/8",      # loopback
    "169.254.0.0/16",   # link-local: instance metadata services live here
    "224.0.0.0/4",      # multicast
    "240.0.0.0/4",      # reserved, and the limited broadcast address
))

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_IFNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}")


@dataclass(frozen=True)
class EgressRules:
    """Everything the ruleset depends on."""

    table: str
    bridge: str
    subnet: IPv4Network
    #: Networks environments may not reach, beyond ``ALWAYS_BLOCKED`` and ``subnet``.
    blocked: tuple[IPv4Network, ...] = ()
    #: Resolvers reachable on port 53 even inside a blocked network.
    nameservers: tuple[IPv4Address, ...] = ()
    #: Drop forwarded IPv4 traffic that is no strato bridge's (set when the host had
    #: forwarding off before strato servers turned it on, ``forwarding.py``).
    guard_forwarding: bool = False

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.table):
            raise ValueError(f"invalid nftables table name {self.table!r}")
        if not _IFNAME.fullmatch(self.bridge):
            raise ValueError(f"invalid interface name {self.bridge!r}")

    def blocked_networks(self) -> list[IPv4Network]:
        """Every blocked destination, overlaps merged (nftables rejects overlapping
        intervals in one set)."""
        return list(ipaddress.collapse_addresses(
            [*ALWAYS_BLOCKED, self.subnet, *self.blocked]))

    def allowed_nameservers(self) -> list[IPv4Address]:
        """The nameservers that get a port-53 exception: never one on loopback, link-local
        or other always-blocked ranges, nor in the environments' own subnet."""
        never = [*ALWAYS_BLOCKED, self.subnet]
        return sorted({s for s in self.nameservers if not any(s in n for n in never)})


def render_ruleset(rules: EgressRules) -> str:
    """The ``nft -f`` script that (re)creates strato's table with ``rules``."""
    table = f"inet {rules.table}"
    bridge = f'"{rules.bridge}"'
    blocked = ", ".join(str(n) for n in rules.blocked_networks())
    egress = [
        f"oifname {bridge} drop",
        "meta nfproto != ipv4 drop",
    ]
    allowed = rules.allowed_nameservers()
    if allowed:
        servers = ", ".join(str(a) for a in allowed)
        egress.append(f"ip daddr {{ {servers} }} meta l4proto {{ tcp, udp }} th dport 53 accept")
    egress += [f"ip daddr {{ {blocked} }} drop", "accept"]
    forward = [
        f"iifname {bridge} jump egress",
        f"oifname {bridge} ct state established,related accept",
        f"oifname {bridge} drop",
    ]
    if rules.guard_forwarding:
        # Every strato server's bridge is ``<prefix><slot>`` (network_slots.py): the guard of
        # one leaves the others' traffic to their own tables.
        others = '"' + re.sub(r"\d+$", "", rules.bridge) + '*"'
        forward.append(f"iifname != {others} oifname != {others} meta nfproto ipv4 drop")
    chains = {
        "input": ["type filter hook input priority filter; policy accept;",
                  f"iifname {bridge} drop"],
        "forward": ["type filter hook forward priority filter; policy accept;", *forward],
        "egress": egress,
        "postrouting": ["type nat hook postrouting priority srcnat; policy accept;",
                        f"ip saddr {rules.subnet} oifname != {bridge} masquerade"],
    }
    lines = [f"add table {table}", f"delete table {table}", f"table {table} {{"]
    for name, body in chains.items():
        lines.append(f"\tchain {name} {{")
        lines += [f"\t\t{line}" for line in body]
        lines.append("\t}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def delete_script(table: str) -> str:
    """The ``nft -f`` script that removes strato's table, present or not."""
    return f"add table inet {table}\ndelete table inet {table}\n"


def nameservers(resolv_conf: str) -> list[IPv4Address]:
    """The IPv4 ``nameserver`` entries of a resolv.conf text, in order."""
    found: list[IPv4Address] = []
    for line in resolv_conf.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            try:
                address = ipaddress.ip_address(fields[1].split("%")[0])
            except ValueError:
                continue
            if isinstance(address, IPv4Address) and address not in found:
                found.append(address)
    return found

