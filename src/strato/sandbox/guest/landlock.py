"""Landlock for the fallback tier: file system and TCP access by allow-list.

Where the host lacks namespaces, an environment still sees the host's file system; Landlock
(Linux 5.13+) narrows that to what the runtime needs: read and execute below the system and
interpreter directories and the function's code, read-write below its own temporary
directory, nothing else. From ABI 4 it also limits TCP ``connect``/``bind`` to listed ports,
and from ABI 6 it stops signals and abstract unix sockets from crossing the domain.

Used from the forked child after ``no_new_privs``; the ruleset is built in the child (a few
system calls per path). Stdlib only.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct

TYPE_CHECKING = False  # not typing's: the annotations need no import at run time
if TYPE_CHECKING:
    from collections.abc import Iterable

_SYS = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1, 2, 4, 8
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 16, 32, 64, 128
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 256, 512, 1024, 2048, 4096
REFER, TRUNCATE, IOCTL_DEV = 8192, 16384, 32768
NET_BIND_TCP, NET_CONNECT_TCP = 1, 2
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1, 2

READ = EXECUTE | READ_FILE | READ_DIR
_WRITE_V1 = (WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_CHAR | MAKE_DIR | MAKE_REG
             | MAKE_SOCK | MAKE_FIFO | MAKE_BLOCK | MAKE_SYM)


class LandlockError(Exception):
    pass


def _handled_fs(abi: int) -> int:
    handled = READ | _WRITE_V1
    if abi >= 2:
        handled |= REFER
    if abi >= 3:
        handled |= TRUNCATE
    if abi >= 5:
        handled |= IOCTL_DEV
    return handled


class Landlock:
    """Resolved in the zygote; ``restrict`` runs in the child."""

    def __init__(self) -> None:
        self.abi = 0
        machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine(),
                                                              platform.machine())
        numbers = _SYS.get(machine)
        if numbers is None:
            return
        self._create, self._add, self._restrict = numbers
        self._syscall = ctypes.CDLL(None, use_errno=True).syscall
        self._syscall.restype = ctypes.c_long
        version = self._syscall(self._create, None, ctypes.c_size_t(0),
                                ctypes.c_uint32(_CREATE_RULESET_VERSION))
        self.abi = max(int(version), 0)

    def restrict(self, read_paths: Iterable[str], write_paths: Iterable[str],
                 tcp_ports: Iterable[int] | None = None) -> None:
        """Confine the calling thread (and what it starts) to ``read_paths`` (read and
        execute) and ``write_paths`` (everything). ``tcp_ports``: the only ports TCP may
        connect to, or None to leave the network alone. Missing paths are skipped."""
        if self.abi < 1:
            raise LandlockError("Landlock is unavailable")
        handled_fs = _handled_fs(self.abi)
        handled_net = NET_BIND_TCP | NET_CONNECT_TCP if (tcp_ports is not None
                                                         and self.abi >= 4) else 0
        scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if self.abi >= 6 else 0
        if self.abi >= 6:
            attr = struct.pack("=QQQ", handled_fs, handled_net, scoped)
        elif self.abi >= 4:
            attr = struct.pack("=QQ", handled_fs, handled_net)
        else:
            attr = struct.pack("=Q", handled_fs)
        buffer = ctypes.create_string_buffer(attr, len(attr))
        ruleset = self._syscall(self._create, buffer, ctypes.c_size_t(len(attr)),
                                ctypes.c_uint32(0))
        if ruleset < 0:
            raise LandlockError(f"create ruleset: {os.strerror(ctypes.get_errno())}")
        try:
            for paths, access in ((read_paths, READ), (write_paths, handled_fs)):
                for path in paths:
                    self._allow_path(ruleset, path, access & handled_fs)
            for port in tcp_ports or () if handled_net else ():
                rule = struct.pack("=QQ", NET_CONNECT_TCP, port)
                self._add_rule(ruleset, _RULE_NET_PORT, rule, f"port {port}")
            if self._syscall(self._restrict, ruleset, ctypes.c_uint32(0)) != 0:
                raise LandlockError(f"restrict self: {os.strerror(ctypes.get_errno())}")
        finally:
            os.close(ruleset)

    def _allow_path(self, ruleset: int, path: str, access: int) -> None:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return
        try:
            if not os.path.isdir(path):
                # Directory-only rights cannot be granted on a file.
                access &= ~(READ_DIR | REMOVE_DIR | REMOVE_FILE | MAKE_CHAR | MAKE_DIR
                            | MAKE_REG | MAKE_SOCK | MAKE_FIFO | MAKE_BLOCK | MAKE_SYM | REFER)
            rule = struct.pack("=Qi", access, fd)
            self._add_rule(ruleset, _RULE_PATH_BENEATH, rule, path)
        finally:
            os.close(fd)

    def _add_rule(self, ruleset: int, kind: int, rule: bytes, what: str) -> None:
        buffer = ctypes.create_string_buffer(rule, len(rule))
        if self._syscall(self._add, ruleset, ctypes.c_int(kind), buffer,
                         ctypes.c_uint32(0)) != 0:
            raise LandlockError(f"allow {what}: {os.strerror(ctypes.get_errno())}")
