"""Egress slots: which bridge, nftables table and subnet a strato server uses for internet
egress, so that no two servers on a host ever share any of them.

A server takes the first free slot ``n`` (0 to ``SLOTS - 1``), held by an exclusive ``flock``
on ``/run/strato/egress/<n>.lock`` for as long as its process lives (the kernel releases it
when the process dies, even by SIGKILL), as uid blocks are held (``uids.py``). From ``n`` it
derives its names and its subnet::

    bridge and table   <prefix><n>                      strato0, strato1, ...
    subnet             the n-th /22 of the pool         10.213.0.0/22, 10.213.4.0/22, ...

(``prefix`` and the pool are the settings ``egress_bridge`` and ``egress_subnet``.) The lock
file says who holds the slot: ``<pid> <bridge> <table> <subnet>``, one line.

A server killed before its teardown leaves its bridge, table and unreachable route behind.
``claim`` removes those of every slot nobody holds, of the same prefix and pool, before it
returns (each while holding that slot's lock, so that no server takes it meanwhile).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from ipaddress import IPv4Network

from strato.errors import SandboxError
from strato.sandbox.host_locks import try_lock
from strato.sandbox.netlink import Rtnl
from strato.sandbox.network import UNREACHABLE_METRIC, EgressConfig, nft_program, run_nft
from strato.sandbox.network_rules import delete_script

log = logging.getLogger(__name__)

LOCK_DIR = "/run/strato/egress"
#: Slots on a host: servers with internet egress at once.
SLOTS = 64
#: Each server's subnet: 1,022 addresses (the gateway and 1,021 environments).
SLOT_PREFIXLEN = 22


class EgressSlot:
    """A held slot: its number and the configuration derived from it. The lock's fd stays
    open until ``release``: closing it frees the slot."""

    def __init__(self, index: int, lock_fd: int, config: EgressConfig) -> None:
        self.index = index
        self.config = config
        self._lock_fd = lock_fd

    def release(self) -> None:
        """Free the slot (after ``EgressNetwork.teardown``). Idempotent."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1


def slot_config(index: int, prefix: str, pool: str) -> EgressConfig:
    """The configuration of slot ``index``: bridge and table ``<prefix><index>``, the
    ``index``-th /22 of ``pool``. Raises ValueError when the pool has no such subnet or the
    name is unusable."""
    network = IPv4Network(pool)
    if network.prefixlen > SLOT_PREFIXLEN:
        raise ValueError(f"the egress pool {network} is smaller than a /{SLOT_PREFIXLEN}")
    subnets = 1 << (SLOT_PREFIXLEN - network.prefixlen)
    if index >= subnets:
        raise ValueError(f"the egress pool {network} has {subnets} subnets of "
                         f"/{SLOT_PREFIXLEN}, not {index + 1}")
    subnet = IPv4Network((int(network.network_address) + (index << (32 - SLOT_PREFIXLEN)),
                          SLOT_PREFIXLEN))
    name = f"{prefix}{index}"
    return EgressConfig(bridge=name, subnet=str(subnet), table=name)


def slots_of(pool: str) -> int:
    """How many slots ``pool`` holds (at most ``SLOTS``)."""
    network = IPv4Network(pool)
    return min(SLOTS, 1 << max(0, SLOT_PREFIXLEN - network.prefixlen))


def claim(prefix: str, pool: str, lock_dir: str = LOCK_DIR) -> EgressSlot:
    """Take the first free slot, after removing what servers killed earlier left in the
    free ones. Raises SandboxError when every slot is held, ValueError for a configuration
    that cannot be used."""
    os.makedirs(lock_dir, mode=0o700, exist_ok=True)
    slot_config(0, prefix, pool)  # refuses an unusable prefix or pool first
    held: EgressSlot | None = None
    free: list[tuple[int, int]] = []
    try:
        for index in range(slots_of(pool)):
            fd = try_lock(os.path.join(lock_dir, f"{index}.lock"))
            if fd is None:
                continue
            if held is None:
                config = slot_config(index, prefix, pool)
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()} {config.bridge} {config.table} "
                              f"{config.subnet}\n".encode(), 0)
                held = EgressSlot(index, fd, config)
            else:
                free.append((index, fd))
        if held is None:
            raise SandboxError(f"every egress slot is held by another strato (locks in "
                               f"{lock_dir})")
        remove_leftovers([slot_config(index, prefix, pool) for index, _ in free]
                         + [held.config])
    except BaseException:
        if held is not None:
            held.release()
        raise
    finally:
        for _, fd in free:
            os.close(fd)
    return held


def remove_leftovers(configs: list[EgressConfig]) -> None:
    """Remove the bridges (with their ports), nftables tables and unreachable routes of
    ``configs``, where they exist; the caller holds their slots. Problems are logged: a
    leftover that cannot go is no reason not to start."""
    try:
        with Rtnl() as rtnl:
            names = [link.name for link in rtnl.links()]
            routes = set(rtnl.unreachable_routes())
            for config in configs:
                ports = [n for n in names if n.startswith(f"{config.bridge}-")]
                if config.bridge in names or ports:
                    log.info("removing bridge %s left by a strato that was killed",
                             config.bridge)
                    rtnl.delete_links([*ports, config.bridge])
                if any(r.network == config.network and r.metric == UNREACHABLE_METRIC
                       for r in routes):
                    rtnl.delete_unreachable_route(config.network, UNREACHABLE_METRIC)
    except OSError as exc:
        log.warning("cannot remove the interfaces of killed stratos: %s", exc)
    tables = _tables()
    for config in configs:
        if config.table in tables:
            log.info("removing nftables table inet %s left by a strato that was killed",
                     config.table)
            try:
                run_nft(delete_script(config.table))
            except SandboxError as exc:
                log.warning("cannot remove nftables table inet %s: %s", config.table, exc)


def _tables() -> set[str]:
    """The names of the host's ``inet`` nftables tables (empty when nft cannot tell)."""
    nft = nft_program()
    if nft is None:
        return set()
    try:
        done = subprocess.run([nft, "list", "tables"], capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return set(re.findall(r"^table inet (\S+)$", done.stdout, re.MULTILINE))
