"""Internet egress for execution environments: the bridge, forwarding and firewall.

Two egress modes exist (``sandbox/base.py``). In ``none`` mode (and for functions with a
VpcConfig) the forked environment unshares a network namespace of its own and brings its
loopback up (``guest/netsetup.py``): nothing is reachable but itself. In ``internet`` mode,
Lambda's default outside a VPC, it joins a namespace prepared by ``NetnsPool``
(``network_pool.py``), whose ``eth0`` is one end of a veth pair; the other end is an isolated
port of the bridge this module sets up::

    environment netns                 host
    eth0 10.213.0.2/16 ── veth ── strato0-2 ─┐
    eth0 10.213.0.3/16 ── veth ── strato0-3 ─┼─ strato0 10.213.0.1/16 ─ (routing, NAT) ─ eth0
                                    ...   ───┘   (ports isolated from each other)

``EgressNetwork.setup`` runs once at platform start: it loads strato's own nftables table
(``network_rules.py`` explains every rule), adds an ``unreachable`` route to the subnet with
the highest metric, creates the bridge and turns IPv4 forwarding on (a switch shared with the
host's other strato servers, ``forwarding.py``); ``teardown`` undoes all four, the route last.
The route is shadowed by the bridge's own (connected, metric 0) while the bridge exists;
should the bridge go (deleted by hand, or by another program), the subnet fails closed: the
host answers "no route to host" for the gateway and every environment's address instead of
sending packets for them out of its default route. Only ``setup`` and ``teardown`` spawn a
program (``nft``); everything per environment is netlink from Python (``netlink.py``). Which
bridge, table and subnet a server uses is its own (``network_slots.py``).

What stays out of reach of an environment, and how:

- strato's API, other services on the host, the bridge gateway, eth0's address, any address
  the host has: the firewall drops everything an environment sends to the host itself. The
  host's loopback is a different interface from the environment's own.
- other environments, including their Runtime API (which listens on 127.0.0.1 inside each
  environment's namespace): isolated bridge ports (layer 2) and a drop of anything routed
  from the bridge back into it (layer 3).
- link-local addresses (169.254.169.254), multicast, reserved ranges, and, unless
  ``EgressConfig.block_host_networks`` is off, the networks the host is directly connected
  to (its LAN or VPC), taken from the host's addresses when ``setup`` runs. Networks the host
  reaches only through a router, VPN or overlay are "the internet" to environments; list them
  in ``EgressConfig.blocked`` to keep them out.

DNS: an environment sees the host's ``/etc/resolv.conf`` (``rootfs.py`` binds it) and sends
its queries, like any other traffic, through the bridge and NAT. That works when the host's
nameservers are upstream servers (on the machine this was written on, ``nameserver
10.255.255.53``); a nameserver on a directly connected network is allowed on port 53 even
though that network is blocked. A resolver on the host's loopback (systemd-resolved's
127.0.0.53, a local dnsmasq) or on another host address is out of reach by design, and
``setup`` logs a warning: point the host's resolv.conf at an upstream resolver (with
systemd-resolved, make /etc/resolv.conf a link to /run/systemd/resolve/resolv.conf), or bind
a resolv.conf naming one into environments as an extra bind.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import ipaddress
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any, TypeVar

from strato.errors import SandboxError
from strato.sandbox import netlink
from strato.sandbox.forwarding import ForwardingLease
from strato.sandbox.netlink import Rtnl
from strato.sandbox.network_rules import EgressRules, delete_script, nameservers, render_ruleset

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
_CAP_NET_ADMIN, _CAP_SYS_ADMIN = 12, 21
_IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"
_NFT_TIMEOUT_S = 30
#: Longest interface name Linux accepts (IFNAMSIZ - 1).
_IFNAME_MAX = 15
#: The metric of the subnet's unreachable route: below every other route to it.
UNREACHABLE_METRIC = 0xFFFFFFFF
#: How often ``teardown`` looks whether the kernel has removed given-up interfaces.
_SETTLE_POLL_S = 0.02
_T = TypeVar("_T")


@dataclass(frozen=True)
class EgressConfig:
    """Where environments in internet mode live and what they may not reach."""

    #: The bridge; host ends of the veth pairs are named ``<bridge>-<hex host number>``.
    bridge: str = "strato0"
    #: The environments' subnet; its first address is the bridge's (the gateway).
    subnet: str = "10.213.0.0/16"
    #: strato's nftables table (family ``inet``), created and deleted as a unit.
    table: str = "strato"
    #: Keep environments out of the networks the host is directly connected to.
    block_host_networks: bool = True
    #: More destinations to keep environments out of (CIDR strings).
    blocked: tuple[str, ...] = ()
    #: Where the host's nameservers are read from.
    resolv_conf: str = "/etc/resolv.conf"
    network: IPv4Network = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            network = IPv4Network(self.subnet)
            for item in self.blocked:
                IPv4Network(item)
        except ValueError as exc:
            raise ValueError(f"invalid egress network: {exc}") from exc
        if network.prefixlen > 29:
            raise ValueError(f"subnet {network} is too small for environments")
        digits = len(f"{network.num_addresses - 2:x}")
        if not re.fullmatch(r"[A-Za-z0-9_]+", self.bridge) \
                or len(self.bridge) + 1 + digits > _IFNAME_MAX:
            raise ValueError(f"bridge name {self.bridge!r} must be letters, digits or _ and at "
                             f"most {_IFNAME_MAX - 1 - digits} characters for subnet {network}")
        EgressRules(self.table, self.bridge, network)  # refuses an unusable table name
        object.__setattr__(self, "network", network)

    @property
    def gateway(self) -> IPv4Address:
        return self.network.network_address + 1


class EgressNetwork:
    """The host side of internet egress: bridge, forwarding and firewall.

    ``setup`` and ``teardown`` are called once each, at platform start and stop, from any
    thread of the host's network namespace; they block for their netlink requests (short)
    and the ``nft`` program. Namespaces are made by ``NetnsPool``, which needs ``setup``
    done."""

    def __init__(self, config: EgressConfig | None = None,
                 forwarding: ForwardingLease | None = None) -> None:
        self.config = config or EgressConfig()
        self.rules: EgressRules | None = None
        self._forwarding = forwarding or ForwardingLease()
        self._forwarding_held = False

    @property
    def bridge(self) -> str:
        return self.config.bridge

    @property
    def subnet(self) -> IPv4Network:
        return self.config.network

    @property
    def gateway(self) -> IPv4Address:
        return self.config.gateway

    def host_ifname(self, address: IPv4Address) -> str:
        """The host end of the veth pair of the environment at ``address``."""
        return f"{self.bridge}-{int(address) - int(self.subnet.network_address):x}"

    def probe(self) -> str | None:
        """None if internet mode can be provided here, else why not (for a loud warning and
        a fallback to no egress). Tries the real thing: nftables validates the ruleset, and a
        bridge and a veth pair into a new namespace are made and removed again."""
        if sys.platform != "linux":
            return "internet egress needs Linux network namespaces"
        caps = _effective_capabilities()
        for bit, name in ((_CAP_NET_ADMIN, "CAP_NET_ADMIN"), (_CAP_SYS_ADMIN, "CAP_SYS_ADMIN")):
            if not caps >> bit & 1:
                return f"strato lacks {name} (run it as root)"
        if nft_program() is None:
            return "the nft program is not installed (apt-get install nftables)"
        if not os.access(_IP_FORWARD, os.W_OK):
            return f"{_IP_FORWARD} is not writable (read-only /proc/sys)"
        rules = EgressRules(self.config.table, self.bridge, self.subnet)
        try:
            run_nft(render_ruleset(rules), check=True)
        except SandboxError as exc:
            return f"the kernel refused strato's nftables ruleset: {exc}"
        try:
            in_thread(self._trial)
        except (OSError, SandboxError) as exc:
            return str(exc)
        return None

    def _trial(self) -> None:
        """In a thread of its own (it moves between namespaces): a bridge, and a veth pair
        into a new namespace as an isolated port of it, made and deleted again."""
        bridge, veth = f"{self.bridge}-pb", f"{self.bridge}-pv"
        host_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        netns_fd = -1
        try:
            with Rtnl() as host:
                host.delete_links([veth, bridge])
                try:
                    unshare_net()
                    netns_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                except OSError as exc:
                    raise SandboxError(f"cannot create a network namespace: {exc}") from exc
                finally:
                    setns_net(host_fd)
                try:
                    try:
                        host.add_bridge(bridge, _local_mac())
                        index = host.link_index(bridge)
                    except OSError as exc:
                        raise SandboxError(f"cannot create a bridge: {exc}") from exc
                    try:
                        host.request(netlink.veth_message(veth, index or 0, "eth0", netns_fd),
                                     netlink.isolated_port_up_message(veth))
                    except OSError as exc:
                        raise SandboxError(f"cannot attach a veth pair to a bridge: {exc}") \
                            from exc
                finally:
                    host.delete_links([veth, bridge])
        finally:
            for fd in (netns_fd, host_fd):
                if fd >= 0:
                    os.close(fd)

    def setup(self) -> None:
        """Load the firewall, create the bridge, turn IPv4 forwarding on. Replaces what a
        crashed run with the same names left behind. Raises SandboxError (after undoing what
        was done) with the step that failed."""
        step = "read the host's addresses"
        try:
            with Rtnl() as rtnl:
                own, connected = self._host_addresses(rtnl)
            servers = self._nameservers(own)
            step = f"read {_IP_FORWARD}"
            host_off = self._forwarding.host_had_it_off()
            rules = EgressRules(
                table=self.config.table, bridge=self.bridge, subnet=self.subnet,
                blocked=tuple(IPv4Network(n) for n in self.config.blocked)
                + (tuple(connected) if self.config.block_host_networks else ()),
                nameservers=tuple(servers), guard_forwarding=host_off)
            step = "load the nftables ruleset"
            run_nft(render_ruleset(rules))
            self.rules = rules
            with Rtnl() as rtnl:
                step = f"add the unreachable route to {self.subnet}"
                rtnl.add_unreachable_route(self.subnet, UNREACHABLE_METRIC)
                step = f"create the bridge {self.bridge}"
                self._create_bridge(rtnl)
            step = "turn IPv4 forwarding on"
            self._forwarding.acquire()
            self._forwarding_held = True
        except (OSError, SandboxError) as exc:
            with contextlib.suppress(SandboxError):
                self.teardown()
            raise SandboxError(f"internet egress: {step}: {exc}") from exc
        log.info("internet egress through bridge %s (%s), nftables table inet %s; blocked: %s",
                 self.bridge, self.subnet, self.config.table,
                 ", ".join(str(n) for n in rules.blocked_networks()))

    def teardown(self, *, settle_s: float = 5.0) -> None:
        """Stop using IPv4 forwarding (the last strato server to stop on the host puts back the
        host's own setting, ``forwarding.py``), remove the bridge and every
        ``<bridge>-*`` interface, the nftables table, then the unreachable route (kept when
        something before it failed). Idempotent. Raises SandboxError
        listing what could not be undone, after trying everything.

        Interfaces of namespaces already given up go with their namespaces, which the kernel
        destroys in batches, far faster than one deletion after another: this waits up to
        ``settle_s`` seconds for that, then deletes what is left in one batch.

        Forwarding is one switch for the whole host: a stopping server leaves it on while
        another strato server (another process, or the integration tests beside a running
        strato) uses it, and no server's forwarding guard drops another's traffic."""
        problems: list[str] = []
        if self._forwarding_held:
            try:
                self._forwarding.release()
                self._forwarding_held = False
            except OSError as exc:
                problems.append(f"release {_IP_FORWARD}: {exc}")
        try:
            with Rtnl() as rtnl:
                self._delete_bridge(rtnl, settle_s)
        except OSError as exc:
            problems.append(f"delete the bridge {self.bridge}: {exc}")
        try:
            run_nft(delete_script(self.config.table))
            self.rules = None
        except SandboxError as exc:
            problems.append(f"delete the nftables table: {exc}")
        if not problems:  # a bridge that could not go keeps the route that closes it
            try:
                with Rtnl() as rtnl:
                    rtnl.delete_unreachable_route(self.subnet, UNREACHABLE_METRIC)
            except OSError as exc:
                problems.append(f"delete the unreachable route to {self.subnet}: {exc}")
        if problems:
            raise SandboxError("internet egress teardown: " + "; ".join(problems))

    def ports(self, rtnl: Rtnl) -> list[str]:
        """The names of the ``<bridge>-*`` interfaces that exist now."""
        prefix = f"{self.bridge}-"
        return [link.name for link in rtnl.links() if link.name.startswith(prefix)]

    # --- netlink steps ------------------------------------------------------------------

    def _host_addresses(self, rtnl: Rtnl) -> tuple[list[IPv4Address], list[IPv4Network]]:
        """The host's own IPv4 addresses, and the networks they connect it to (except
        loopback and strato's bridges)."""
        names = {link.index: link.name for link in rtnl.links()}
        own: list[IPv4Address] = []
        connected: list[IPv4Network] = []
        for entry in rtnl.addresses():
            interface = ipaddress.ip_interface(f"{entry.address}/{entry.prefixlen}")
            own.append(IPv4Address(interface.ip))
            name = names.get(entry.index, "")
            if interface.ip.is_loopback or name == self.bridge \
                    or name.startswith(f"{self.bridge}-") or entry.prefixlen >= 32:
                continue
            network = IPv4Network(interface.network)
            if network not in connected:
                connected.append(network)
        return own, connected

    def _nameservers(self, own: list[IPv4Address]) -> list[IPv4Address]:
        try:
            with open(self.config.resolv_conf) as handle:
                listed = nameservers(handle.read())
        except OSError as exc:
            log.warning("cannot read %s (%s): environments in internet mode may not resolve "
                        "names", self.config.resolv_conf, exc)
            return []
        reachable = [s for s in listed if not (s.is_loopback or s.is_link_local or s in own)]
        for server in listed:
            if server not in reachable:
                log.warning("nameserver %s (%s) is on the host itself, out of reach of "
                            "environments in internet mode by design; point resolv.conf at "
                            "an upstream resolver", server, self.config.resolv_conf)
        if listed and not reachable:
            log.warning("environments in internet mode cannot resolve names")
        return reachable

    def _create_bridge(self, rtnl: Rtnl) -> None:
        self._delete_bridge(rtnl, settle_s=0)
        # A fixed, locally administered MAC: a bridge otherwise takes the lowest MAC of its
        # ports, and every change would leave stale gateway entries in environments' ARP caches.
        rtnl.add_bridge(self.bridge, _local_mac())
        index = rtnl.link_index(self.bridge)
        if index is None:
            raise SandboxError(f"the bridge {self.bridge} vanished")
        rtnl.add_address(index, self.gateway, self.subnet.prefixlen)
        rtnl.set_up(self.bridge)

    def _delete_bridge(self, rtnl: Rtnl, settle_s: float) -> None:
        deadline = time.monotonic() + settle_s
        ports = self.ports(rtnl)
        while ports and time.monotonic() < deadline:
            time.sleep(_SETTLE_POLL_S)
            ports = self.ports(rtnl)
        rtnl.delete_links(ports)
        rtnl.delete_link(self.bridge)


# --- helpers shared with network_pool.py -------------------------------------------------

def _local_mac() -> bytes:
    """A random, locally administered unicast MAC address."""
    return b"\x02" + os.urandom(5)


def in_thread(work: Callable[[], _T]) -> _T:
    """Run ``work`` in a short-lived thread and return its result (or raise its exception):
    namespace changes made by ``work`` (``unshare_net``) stay in that thread."""
    outcome: list[tuple[bool, Any]] = []

    def target() -> None:
        try:
            outcome.append((True, work()))
        except BaseException as exc:  # handed to the calling thread
            outcome.append((False, exc))

    thread = threading.Thread(target=target, name="strato-netns-trial")
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    result: _T = value
    return result


@functools.cache
def _c() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def unshare_net() -> None:
    """Move the calling thread (only) into a new network namespace."""
    if _c().unshare(CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"unshare(CLONE_NEWNET): {os.strerror(code)}")


def setns_net(fd: int) -> None:
    """Move the calling thread (only) into the network namespace ``fd`` refers to."""
    if _c().setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns(CLONE_NEWNET): {os.strerror(code)}")


def _effective_capabilities() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def nft_program() -> str | None:
    """The path of the ``nft`` program, or None when it is not installed."""
    return shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")


def run_nft(script: str, *, check: bool = False) -> None:
    """Run ``nft -f -`` (with ``check``: ``--check``) on ``script``. Raises SandboxError."""
    nft = nft_program()
    if nft is None:
        raise SandboxError("the nft program is not installed")
    argv = [nft, "--check", "-f", "-"] if check else [nft, "-f", "-"]
    try:
        done = subprocess.run(argv, input=script, capture_output=True, text=True,
                              timeout=_NFT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(f"nft: {exc}") from exc
    if done.returncode != 0:
        raise SandboxError(f"nft: {done.stderr.strip() or f'exit status {done.returncode}'}")


