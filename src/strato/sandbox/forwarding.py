"""IPv4 forwarding, one switch for the whole host, shared by every strato server on it.

A server with internet egress needs ``/proc/sys/net/ipv4/ip_forward`` on. Several servers run
at once on a host (each with its own bridge and table, ``network_slots.py``), and the switch
must stay on while any of them runs: a stopping server never turns it off while another uses
it. The host's own setting is put back by the last one to stop.

Each user holds an exclusive ``flock`` on ``<dir>/<pid>-<random>.user`` for as long as it uses
forwarding (the kernel releases it when the process dies, even by SIGKILL). ``<dir>/host``
records the host's value from before the first user turned the switch on; it is written by
the first user and removed by the last, so that a server that finds the switch on because a
killed server left it so still knows what to restore. Every acquire and release runs under
``<dir>/.lock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator

LEASE_DIR = "/run/strato/forwarding"
IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"


class ForwardingLease:
    """This process's use of IPv4 forwarding. ``acquire`` once, ``release`` once (idempotent);
    both block briefly on the host-wide lock."""

    def __init__(self, lease_dir: str = LEASE_DIR, switch: str = IP_FORWARD) -> None:
        self._dir = lease_dir
        self._switch = switch
        # One file per lease, not per process: flock locks of one process on two open files
        # conflict, and a process may hold two leases (two EgressNetworks, in tests).
        self._own = os.path.join(lease_dir, f"{os.getpid()}-{secrets.token_hex(4)}.user")
        self._fd = -1
        #: The host's value before any strato turned forwarding on ("0" or "1").
        self.host_value = "1"

    def host_had_it_off(self) -> bool:
        """Whether the host had forwarding off before any strato server turned it on (what
        ``acquire`` will return, for the firewall loaded before it). Raises OSError."""
        os.makedirs(self._dir, mode=0o700, exist_ok=True)
        with self._locked():
            record = os.path.join(self._dir, "host")
            if os.path.exists(record):
                return _read(record) == "0"
            return _read(self._switch) == "0"

    def acquire(self) -> bool:
        """Turn forwarding on (if it is off) and hold it on. Returns whether the host had it
        off, before this or any other strato server turned it on: then every forwarded packet
        that is not strato's is the firewall's to drop (``EgressRules.guard_forwarding``).
        Raises OSError."""
        os.makedirs(self._dir, mode=0o700, exist_ok=True)
        with self._locked():
            current = _read(self._switch)
            record = os.path.join(self._dir, "host")
            if not self._others() and not os.path.exists(record):
                _write(record, current)
            self.host_value = _read(record) if os.path.exists(record) else current
            fd = os.open(self._own, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._fd = fd
            if current == "0":
                _write(self._switch, "1")
        return self.host_value == "0"

    def release(self) -> None:
        """Stop using forwarding; the last user puts the host's value back. Raises OSError."""
        if self._fd < 0:
            return
        with self._locked():
            os.close(self._fd)
            self._fd = -1
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._own)
            if self._others():
                return
            if self.host_value == "0":
                _write(self._switch, "0")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self._dir, "host"))

    def _others(self) -> bool:
        """Whether another live process uses forwarding; removes the files of dead ones.
        Caller holds the lock."""
        alive = False
        for name in os.listdir(self._dir):
            path = os.path.join(self._dir, name)
            if not name.endswith(".user") or path == self._own:
                continue
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                alive = True
            else:
                os.unlink(path)  # its process died without releasing
            finally:
                os.close(fd)
        return alive

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(os.path.join(self._dir, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _read(path: str) -> str:
    with open(path) as handle:
        return handle.read().strip()


def _write(path: str, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)
