"""IPv4 forwarding shared by several strato servers: each server is a process holding a
``ForwardingLease``; the switch is a file standing in for ``/proc/sys/net/ipv4/ip_forward``
(the real one is the whole host's, which other servers on this machine use meanwhile)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

_SERVER = """
import sys
from strato.sandbox.forwarding import ForwardingLease
lease = ForwardingLease(sys.argv[1], sys.argv[2])
print("guard" if lease.acquire() else "no-guard", flush=True)
sys.stdin.readline()
lease.release()
print("released", flush=True)
"""


class Server:
    """A process that uses forwarding until told to stop (or killed)."""

    def __init__(self, lease_dir: Path, switch: Path) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", _SERVER, str(lease_dir), str(switch)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.guard = self.process.stdout.readline().strip() == "guard"

    def stop(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("stop\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline() == "released\n"
        assert self.process.wait(timeout=10) == 0
        self._close()

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self._close()

    def _close(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.stdout.close()


def test_a_stopping_server_leaves_forwarding_on_while_another_uses_it(tmp_path: Path) -> None:
    switch = tmp_path / "ip_forward"
    switch.write_text("0\n")
    first = Server(tmp_path / "leases", switch)
    assert switch.read_text() == "1" and first.guard
    second = Server(tmp_path / "leases", switch)
    # The second finds the switch on, but knows the host had it off: it guards too.
    assert second.guard
    first.stop()
    assert switch.read_text() == "1"
    second.stop()
    assert switch.read_text() == "0"  # the last one puts the host's setting back


def test_a_host_with_forwarding_on_keeps_it_on(tmp_path: Path) -> None:
    switch = tmp_path / "ip_forward"
    switch.write_text("1\n")
    server = Server(tmp_path / "leases", switch)
    assert not server.guard
    server.stop()
    assert switch.read_text().strip() == "1"


def test_a_killed_servers_record_of_the_host_setting_survives_it(tmp_path: Path) -> None:
    switch = tmp_path / "ip_forward"
    switch.write_text("0\n")
    Server(tmp_path / "leases", switch).kill()
    assert switch.read_text() == "1"  # SIGKILLed: nothing put it back
    after = Server(tmp_path / "leases", switch)
    assert after.guard
    after.stop()
    assert switch.read_text() == "0"
    assert sorted(p.name for p in (tmp_path / "leases").iterdir()) == [".lock"]
