"""The seccomp filter's socket rules (``restrict_sockets``: the fallback tier with egress
``none``), by the interpreter of ``seccomp.run`` and, where the host allows, by the kernel."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.unit.test_sandbox_rules import GUEST, seccomp

ARCHES = ["x86_64", "aarch64"]
AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_VSOCK = 1, 2, 10, 16, 40
SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_SEQPACKET = 1, 2, 3, 5
SOCK_NONBLOCK, SOCK_CLOEXEC = 0o4000, 0o2000000
IPPROTO_TCP, IPPROTO_UDP, IPPROTO_MPTCP = 6, 17, 262
EPERM = seccomp.RET_ERRNO | seccomp.EPERM
ALLOW = seccomp.RET_ALLOW


def _socket(arch: str, domain: int, kind: int, proto: int = 0, *,
            restrict_sockets: bool = True) -> int:
    program = seccomp.build_program(arch, restrict_sockets=restrict_sockets)
    return int(seccomp.run(program, seccomp.SYSCALLS[arch]["socket"], seccomp.audit_arch(arch),
                           arg0=domain, arg1=kind, arg2=proto))


def _socketpair(arch: str, domain: int, kind: int) -> int:
    program = seccomp.build_program(arch, restrict_sockets=True)
    return int(seccomp.run(program, seccomp.SYSCALLS[arch]["socketpair"],
                           seccomp.audit_arch(arch), arg0=domain, arg1=kind))


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize(("domain", "kind", "proto"), [
    (AF_UNIX, SOCK_STREAM, 0), (AF_UNIX, SOCK_DGRAM, 0), (AF_UNIX, SOCK_SEQPACKET, 0),
    (AF_INET, SOCK_DGRAM, 0), (AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0), (AF_INET, SOCK_RAW, 0),
    (AF_NETLINK, SOCK_RAW, 0), (AF_INET, SOCK_STREAM, IPPROTO_UDP),
    (AF_INET, SOCK_STREAM, IPPROTO_MPTCP), (AF_INET6, SOCK_STREAM, IPPROTO_MPTCP),
    # SOCK_STREAM's bit in a type that is not SOCK_STREAM: SOCK_STREAM | SOCK_DGRAM is 3.
    (AF_INET, SOCK_STREAM | SOCK_DGRAM, 0),
])
def test_sockets_other_than_tcp_are_refused(arch: str, domain: int, kind: int, proto: int) -> None:
    assert _socket(arch, domain, kind, proto) == EPERM


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize(("domain", "kind", "proto"), [
    (AF_INET, SOCK_STREAM, 0), (AF_INET6, SOCK_STREAM, 0),
    (AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), (AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0),
    (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP),
    (AF_INET6, SOCK_STREAM, IPPROTO_TCP),
])
def test_tcp_sockets_are_allowed(arch: str, domain: int, kind: int, proto: int) -> None:
    assert _socket(arch, domain, kind, proto) == ALLOW


@pytest.mark.parametrize("arch", ARCHES)
def test_only_the_low_words_of_the_arguments_count(arch: str) -> None:
    """The kernel reads socket's arguments as C ints: high bits change nothing, either way."""
    assert _socket(arch, (1 << 32) | AF_INET, SOCK_STREAM) == ALLOW
    assert _socket(arch, (1 << 32) | AF_UNIX, SOCK_STREAM) == EPERM
    assert _socket(arch, AF_INET, (1 << 40) | SOCK_STREAM, (1 << 33) | IPPROTO_TCP) == ALLOW


@pytest.mark.parametrize("arch", ARCHES)
def test_unix_pairs_are_allowed_connected_only(arch: str) -> None:
    assert _socketpair(arch, AF_UNIX, SOCK_STREAM) == ALLOW
    assert _socketpair(arch, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC) == ALLOW
    assert _socketpair(arch, AF_UNIX, SOCK_DGRAM) == EPERM
    assert _socketpair(arch, AF_INET, SOCK_STREAM) == EPERM


@pytest.mark.parametrize("arch", ARCHES)
def test_without_restrict_sockets_every_socket_is_allowed(arch: str) -> None:
    for domain, kind in ((AF_UNIX, SOCK_STREAM), (AF_INET, SOCK_DGRAM), (AF_NETLINK, SOCK_RAW),
                         (AF_INET, SOCK_STREAM | SOCK_NONBLOCK)):
        assert _socket(arch, domain, kind, restrict_sockets=False) == ALLOW
    program = seccomp.build_program(arch)
    number = seccomp.SYSCALLS[arch]["socketpair"]
    assert seccomp.run(program, number, seccomp.audit_arch(arch), AF_UNIX, SOCK_DGRAM) == ALLOW


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("restrict_sockets", [False, True])
def test_vsock_is_refused_in_every_tier(arch: str, restrict_sockets: bool) -> None:
    """A vsock reaches the hypervisor's side of the machine, past any network namespace."""
    program = seccomp.build_program(arch, restrict_sockets=restrict_sockets)
    audit = seccomp.audit_arch(arch)
    for call in ("socket", "socketpair"):
        for kind in (SOCK_STREAM, SOCK_DGRAM | SOCK_CLOEXEC, SOCK_SEQPACKET):
            assert seccomp.run(program, seccomp.SYSCALLS[arch][call], audit,
                               AF_VSOCK, kind) == EPERM, (call, kind)


@pytest.mark.parametrize("arch", ARCHES)
def test_restrict_sockets_changes_nothing_else(arch: str) -> None:
    """Every other system call, with clone's flags and a foreign ABI, as without it."""
    plain = seccomp.build_program(arch)
    restricted = seccomp.build_program(arch, restrict_sockets=True)
    numbers = seccomp.SYSCALLS[arch]
    audit = seccomp.audit_arch(arch)
    sockets = {numbers["socket"], numbers["socketpair"]}
    for number in [n for n in range(0, 460) if n not in sockets] + [0x40000000 | 41]:
        for arg0 in (0, 0x11, 0x10000011):
            assert seccomp.run(restricted, number, audit, arg0, SOCK_DGRAM) \
                == seccomp.run(plain, number, audit, arg0, SOCK_DGRAM), (number, arg0)
    assert seccomp.run(restricted, 0, 0x40000003) == seccomp.RET_KILL_PROCESS


def _jump_over(count: int) -> list[tuple[int, int, int, int]]:
    return list(seccomp._assemble([(seccomp._JEQ_K, "far", 0, 1), *[seccomp._load(0)] * count,
                                   "far", (seccomp._RET_K, 0, 0, ALLOW)]))


def test_jumps_longer_than_255_or_backwards_are_refused() -> None:
    assert _jump_over(255)[0] == (seccomp._JEQ_K, 255, 0, 1)
    with pytest.raises(ValueError, match="jump"):
        _jump_over(256)
    with pytest.raises(ValueError, match="jump"):
        seccomp._assemble(["back", seccomp._load(0), (seccomp._JEQ_K, "back", 0, 1)])


_IN_THE_KERNEL = textwrap.dedent("""
    import ctypes, json, socket, sys
    sys.path.insert(0, sys.argv[1])
    import seccomp

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                    ("k", ctypes.c_uint32)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                           ctypes.c_ulong]
    code = seccomp.build_program(restrict_sockets=True)
    instructions = (Filter * len(code))(*[Filter(*i) for i in code])
    program = Program(len(code), instructions)
    if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.addressof(program), 0, 0):
        print(json.dumps({"installed": ctypes.get_errno()}))
        sys.exit(0)

    def attempt(make):
        try:
            made = make()
        except OSError as exc:
            return exc.errno
        for sock in made if isinstance(made, tuple) else (made,):
            sock.close()
        return 0

    print(json.dumps({"installed": 0, "outcomes": {
        "tcp": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM)),
        "tcp nonblocking": attempt(lambda: socket.socket(
            socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)),
        "udp": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)),
        "unix": attempt(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)),
        "netlink": attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)),
        "stream pair": attempt(socket.socketpair),
        "datagram pair": attempt(lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)),
    }}))
""")


def test_the_kernel_accepts_and_applies_the_restricted_filter() -> None:
    if not seccomp.supported():
        pytest.skip(f"no seccomp filter for {seccomp.machine()}")
    done = subprocess.run([sys.executable, "-I", "-c", _IN_THE_KERNEL, str(GUEST)],
                          capture_output=True, text=True, timeout=30, check=True)
    result = json.loads(done.stdout)
    assert result["installed"] == 0, result
    assert result["outcomes"] == {"tcp": 0, "tcp nonblocking": 0, "udp": 1, "unix": 1,
                                  "netlink": 1, "stream pair": 0, "datagram pair": 1}
