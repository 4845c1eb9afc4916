"""Internet egress of a server's environments (namespaces tier, ``--egress internet``).

``InternetEgress.start`` claims this server's slot (a bridge, nftables table and subnet of its
own, ``network_slots``), probes and sets up the host side (``network.EgressNetwork``) and
starts the pool of prepared network namespaces (``network_pool.NetnsPool``) the sandbox
hands to environments. When the host cannot give egress, environments get loopback only and
a warning says why. ``close`` undoes what ``start`` did, in reverse order.
"""

from __future__ import annotations

import asyncio
import logging

from strato.errors import SandboxError
from strato.sandbox import network_slots as egress_slots
from strato.sandbox.network import EgressNetwork
from strato.sandbox.network_pool import NetnsPool

log = logging.getLogger(__name__)


class InternetEgress:
    def __init__(self) -> None:
        self._network: EgressNetwork | None = None
        self._slot: egress_slots.EgressSlot | None = None
        self._pool: NetnsPool | None = None

    def start(self, bridge_prefix: str, subnet_pool: str) -> NetnsPool | None:
        """Set up egress; the started namespace pool, or None (loopback only) with the reason
        logged. Once, before the sandbox is built. A failure of the setup itself (not a host
        that cannot give egress) releases the slot and raises."""
        try:
            slot = egress_slots.claim(bridge_prefix, subnet_pool)
        except (OSError, SandboxError) as exc:
            log.warning("NO INTERNET EGRESS: %s; environments get loopback only", exc)
            return None
        network = EgressNetwork(slot.config)
        try:
            reason = network.probe()
            if reason is not None:
                log.warning("NO INTERNET EGRESS: %s; environments get loopback only", reason)
                slot.release()
                return None
            network.setup()
        except BaseException:
            slot.release()
            raise
        self._network = network
        self._slot = slot
        self._pool = NetnsPool(network)
        self._pool.start()
        return self._pool

    async def close(self) -> None:
        """Stop the namespace pool, tear the host side down and free the slot (after the
        sandbox is closed). Does nothing when ``start`` set nothing up."""
        if self._pool is not None:
            await asyncio.to_thread(self._pool.close)
        if self._network is not None:
            await asyncio.to_thread(self._network.teardown)
        if self._slot is not None:
            self._slot.release()
