"""Ready network namespaces for environments in internet mode, so that a cold start never
waits on network set-up.

One worker thread keeps ``size`` namespaces ready. Making one is all netlink from Python (no
program is spawned), a few milliseconds:

1. ``unshare(CLONE_NEWNET)`` in the worker thread (it moves that thread only), open
   ``/proc/thread-self/ns/net`` (the namespace lives as long as an fd or a process holds
   it), open a netlink socket there, and ``setns`` the thread straight back to the host's
   namespace;
2. on the host, create a veth pair whose peer is born inside the namespace as ``eth0``
   (IFLA_NET_NS_FD) and whose host end ``<bridge>-<n>`` is a port of the bridge;
3. inside, through the socket opened there: ``lo`` up, the address, ``eth0`` up, a default
   route via the bridge's address;
4. on the host: make the port isolated (IFLA_BRPORT_ISOLATED), then bring it up.

How a sandbox uses one: ``ns = await pool.acquire()``, pass ``ns.fd`` to the forked
environment, which calls ``setns(fd, CLONE_NEWNET)`` while it is still root in the host's
user namespace and before it unshares a user namespace of its own, so the namespace belongs
to the host's user namespace and the environment never holds CAP_NET_ADMIN over it. Once the
environment has exited, ``pool.release(ns)``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from strato.errors import SandboxError
from strato.sandbox.network import (
    EgressNetwork,
    _delete_link,
    _index,
    _reason,
    close_iproute,
    close_thread_loop,
    iproute,
    open_iproute,
    setns_net,
    unshare_net,
)

log = logging.getLogger(__name__)

#: How long the worker waits before trying again after failing to make a namespace.
RETRY_AFTER_S = 1.0


class AddressAllocator:
    """Hands out the host addresses of a subnet, except reserved ones, round-robin: the next
    free address after the last one handed out. A released address thus comes back as late
    as possible, long after conntrack entries of its previous holder (whose late replies
    would otherwise reach the new one) have expired. Not thread-safe."""

    def __init__(self, subnet: IPv4Network, reserved: Iterable[IPv4Address] = ()) -> None:
        self._base = int(subnet.network_address)
        #: Usable host numbers: 1 .. size-2 (network and broadcast addresses excluded).
        self._last = subnet.num_addresses - 2
        self._reserved = {int(a) - self._base for a in reserved if a in subnet}
        self._in_use: set[int] = set()
        self._cursor = 0
        self.capacity = self._last - len(self._reserved - {0, self._last + 1})

    def allocate(self) -> IPv4Address:
        """A free address. Raises SandboxError when every address is in use."""
        if len(self._in_use) >= self.capacity:
            raise SandboxError(f"no free address left for an environment ({self.capacity} "
                               "in use)")
        number = self._cursor
        while True:
            number = number % self._last + 1
            if number not in self._in_use and number not in self._reserved:
                break
        self._cursor = number
        self._in_use.add(number)
        return IPv4Address(self._base + number)

    def release(self, address: IPv4Address) -> None:
        """Make ``address`` available again. Releasing a free address is an error."""
        number = int(address) - self._base
        if number not in self._in_use:
            raise ValueError(f"{address} is not allocated")
        self._in_use.remove(number)

    @property
    def in_use(self) -> int:
        return len(self._in_use)


class NetworkNamespace:
    """A ready network namespace: ``fd`` (owned by the pool, closed by ``release``; a
    sandbox passes it on to the environment) and ``address``, the environment's address on
    ``eth0``."""

    __slots__ = ("fd", "address", "host_ifname", "released")

    def __init__(self, fd: int, address: IPv4Address, host_ifname: str) -> None:
        self.fd = fd
        self.address = address
        self.host_ifname = host_ifname
        self.released = False

    def __repr__(self) -> str:
        return f"NetworkNamespace(fd={self.fd}, address={self.address}, {self.host_ifname})"


@dataclass(frozen=True)
class PoolStats:
    ready: int
    leased: int
    created: int
    #: Mean time to make one namespace, in milliseconds (0.0 before the first).
    mean_create_ms: float


class _Waiter:
    """Someone waiting for a namespace: a future on an event loop, or a blocked thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop
        self.future: asyncio.Future[NetworkNamespace] | None = \
            loop.create_future() if loop is not None else None
        self.event = threading.Event()
        self.namespace: NetworkNamespace | None = None
        self.error: BaseException | None = None


class NetnsPool:
    """Keeps ``size`` namespaces of ``network`` ready. ``start`` after ``network.setup()``;
    ``close`` before ``network.teardown()``. ``acquire``, ``acquire_blocking`` and
    ``release`` may be called from any thread; none of them waits on netlink unless the pool
    is empty."""

    def __init__(self, network: EgressNetwork, size: int = 4) -> None:
        if size < 0:
            raise ValueError("pool size must be >= 0")
        self.network = network
        self.size = size
        self._addresses = AddressAllocator(network.subnet, [network.gateway])
        self._cv = threading.Condition()
        self._ready: collections.deque[NetworkNamespace] = collections.deque()
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._doomed: collections.deque[NetworkNamespace] = collections.deque()
        self._leased: set[NetworkNamespace] = set()
        self._closing = False
        self._broken: str | None = None
        self._retry_at = 0.0
        self._created = 0
        self._create_seconds = 0.0
        self._thread: threading.Thread | None = None
        self._started = threading.Event()

    # --- the caller's side ----------------------------------------------------------------

    def start(self) -> None:
        """Start the worker and wait until it has found the bridge. Raises SandboxError."""
        if self._thread is not None:
            raise SandboxError("the network namespace pool is already started")
        self._thread = threading.Thread(target=self._work, name="strato-netns", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._broken is not None:
            self._thread.join()
            raise SandboxError(self._broken)

    async def acquire(self) -> NetworkNamespace:
        """A ready namespace, at once when one is ready, else as soon as the worker has
        made one. Raises SandboxError when the pool cannot make any."""
        with self._cv:
            namespace = self._take()
            if namespace is not None:
                return namespace
            waiter = _Waiter(asyncio.get_running_loop())
            self._waiters.append(waiter)
            self._cv.notify_all()
        assert waiter.future is not None
        try:
            return await waiter.future
        except asyncio.CancelledError:
            with self._cv:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            raise

    def acquire_blocking(self, timeout: float | None = None) -> NetworkNamespace:
        """``acquire`` for a thread without an event loop. Raises SandboxError, also when
        ``timeout`` seconds pass without a namespace."""
        with self._cv:
            namespace = self._take()
            if namespace is not None:
                return namespace
            waiter = _Waiter()
            self._waiters.append(waiter)
            self._cv.notify_all()
        waiter.event.wait(timeout)
        with self._cv:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        if waiter.namespace is not None:
            return waiter.namespace
        if waiter.error is not None:
            raise SandboxError(str(waiter.error)) from waiter.error
        raise SandboxError(f"no network namespace within {timeout} s")

    def release(self, namespace: NetworkNamespace) -> None:
        """Give ``namespace`` up: its fd is closed now; its interfaces are deleted by the
        worker before it makes another namespace (``settle`` waits for that). Idempotent.
        Only once the environment that used it has exited."""
        with self._cv:
            if namespace.released:
                return
            namespace.released = True
            self._leased.discard(namespace)
            with contextlib.suppress(OSError):
                os.close(namespace.fd)
            self._doomed.append(namespace)
            self._cv.notify_all()

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until every released namespace's interfaces are gone; False on timeout."""
        with self._cv:
            return self._cv.wait_for(lambda: not self._doomed or self._thread is None
                                     or not self._thread.is_alive(), timeout)

    def stats(self) -> PoolStats:
        with self._cv:
            mean = self._create_seconds / self._created * 1000 if self._created else 0.0
            return PoolStats(len(self._ready), len(self._leased), self._created, mean)

    def close(self) -> None:
        """Stop the worker and delete every interface the pool made, including those of
        namespaces still leased (their fds stay open until ``release``). Waiters get
        SandboxError. Idempotent."""
        with self._cv:
            self._closing = True
            self._fail_waiters("the network namespace pool is closed")
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join()

    def _take(self) -> NetworkNamespace | None:
        """Under the lock: a ready namespace, or None; raises when none can come."""
        if self._closing:
            raise SandboxError("the network namespace pool is closed")
        if self._broken is not None:
            raise SandboxError(self._broken)
        if self._thread is None:
            raise SandboxError("the network namespace pool is not started")
        if not self._ready:
            return None
        namespace = self._ready.popleft()
        self._leased.add(namespace)
        self._cv.notify_all()  # refill
        return namespace

    def _fail_waiters(self, reason: str) -> None:
        """Under the lock."""
        while self._waiters:
            waiter = self._waiters.popleft()
            waiter.error = SandboxError(reason)
            waiter.event.set()
            if waiter.loop is not None and waiter.future is not None:
                with contextlib.suppress(RuntimeError):  # the loop is closed
                    waiter.loop.call_soon_threadsafe(_fail, waiter.future, waiter.error)

    def _hand_over(self, namespace: NetworkNamespace) -> None:
        """Under the lock: to the first waiter still waiting, else to the ready ones."""
        while self._waiters:
            waiter = self._waiters.popleft()
            self._leased.add(namespace)
            if waiter.loop is None:
                waiter.namespace = namespace
                waiter.event.set()
                return
            try:
                waiter.loop.call_soon_threadsafe(self._resolve, waiter, namespace)
                return
            except RuntimeError:  # its loop is closed: try the next waiter
                self._leased.discard(namespace)
        self._ready.append(namespace)

    def _resolve(self, waiter: _Waiter, namespace: NetworkNamespace) -> None:
        """On the waiter's loop: deliver, or take the namespace back if it gave up."""
        assert waiter.future is not None
        if not waiter.future.done():
            waiter.future.set_result(namespace)
            return
        with self._cv:
            self._leased.discard(namespace)
            if self._closing:
                self._doomed.append(namespace)
            else:
                self._ready.appendleft(namespace)
            self._cv.notify_all()

    # --- the worker thread ----------------------------------------------------------------

    def _work(self) -> None:
        host_fd = -1
        try:
            host_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            with iproute() as host:
                bridge = _index(host, self.network.bridge)
                self._started.set()
                self._serve(host, host_fd, bridge)
        except BaseException as exc:
            with self._cv:
                self._broken = f"network namespace pool: {_reason(exc)}"
                self._fail_waiters(self._broken)
                self._cv.notify_all()
            if self._started.is_set():
                log.error("%s; environments in internet mode cannot start", self._broken)
            self._started.set()
        finally:
            if host_fd >= 0:
                os.close(host_fd)
            close_thread_loop()

    def _serve(self, host: Any, host_fd: int, bridge: int) -> None:
        while True:
            with self._cv:
                job = self._next_job()
            if job == "stop":
                self._clean_up(host)
                return
            if job == "delete":
                with self._cv:
                    namespace = self._doomed[0]
                self._delete(host, namespace)
                with self._cv:
                    self._doomed.popleft()
                    self._cv.notify_all()
                continue
            started = time.perf_counter()
            try:
                namespace = self._create(host, host_fd, bridge)
            except _LostHostNamespace:
                raise
            except Exception as exc:
                reason = f"cannot make a network namespace: {_reason(exc)}"
                log.warning("%s (trying again in %.0f s)", reason, RETRY_AFTER_S)
                with self._cv:
                    self._retry_at = time.monotonic() + RETRY_AFTER_S
                    self._fail_waiters(reason)
                continue
            with self._cv:
                self._created += 1
                self._create_seconds += time.perf_counter() - started
                self._hand_over(namespace)

    def _next_job(self) -> str:
        """Under the lock: "delete" (the first doomed namespace), "create" or "stop"."""
        while True:
            if self._doomed:
                return "delete"
            if self._closing:
                return "stop"
            if self._waiters or len(self._ready) < self.size:
                wait = self._retry_at - time.monotonic()
                if wait <= 0:
                    return "create"
                self._cv.wait(wait)
            else:
                self._cv.wait()

    def _create(self, host: Any, host_fd: int, bridge: int) -> NetworkNamespace:
        address = self._addresses.allocate()
        name = self.network.host_ifname(address)
        fd = -1
        inside: Any = None
        made = False
        try:
            try:
                unshare_net()
                fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                inside = open_iproute()
            finally:
                try:
                    setns_net(host_fd)
                except OSError as exc:
                    raise _LostHostNamespace(str(exc)) from exc
            _delete_link(host, name)  # left by a namespace that outlived its release
            host.link("add", ifname=name, kind="veth", master=bridge,
                      peer={"ifname": "eth0", "net_ns_fd": fd})
            made = True
            port = _index(host, name)
            inside.link("set", index=_index(inside, "lo"), state="up")
            eth0 = _index(inside, "eth0")
            inside.addr("add", index=eth0, address=str(address),
                        prefixlen=self.network.subnet.prefixlen)
            inside.link("set", index=eth0, state="up")
            inside.route("add", dst="0.0.0.0/0", gateway=str(self.network.gateway))
            host.brport("set", index=port, isolated=1)
            host.link("set", index=port, state="up")
        except BaseException:
            if made:
                with contextlib.suppress(Exception):
                    _delete_link(host, name)
            if fd >= 0:
                os.close(fd)
            self._addresses.release(address)
            raise
        finally:
            if inside is not None:
                close_iproute(inside)
        return NetworkNamespace(fd, address, name)

    def _delete(self, host: Any, namespace: NetworkNamespace) -> None:
        try:
            _delete_link(host, namespace.host_ifname)
        except SandboxError as exc:
            log.warning("releasing network namespace %s: %s", namespace.address, exc)
        self._addresses.release(namespace.address)

    def _clean_up(self, host: Any) -> None:
        with self._cv:
            ready = list(self._ready)
            self._ready.clear()
            leased = list(self._leased)
            doomed = list(self._doomed)
            self._doomed.clear()
        for namespace in ready:
            os.close(namespace.fd)
            namespace.released = True
        for namespace in ready + leased + doomed:
            with contextlib.suppress(SandboxError):
                _delete_link(host, namespace.host_ifname)
        with self._cv:
            self._cv.notify_all()


def _fail(future: asyncio.Future[NetworkNamespace], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


class _LostHostNamespace(Exception):
    """The worker could not return to the host's namespace: it must stop at once, since
    everything it would make from there on would be in the wrong place."""
