"""The seccomp filter of an execution environment: a classic BPF program, assembled here.

Refused with EPERM: system calls an environment has no business making, chiefly those that
change what the process can see or reach (mount, unshare, setns, pivot_root, chroot, the new
mount API), inspect or control other processes (ptrace, process_vm_*, kcmp, pidfd_getfd),
reach kernel attack surface rarely needed by functions (bpf, io_uring, perf_event_open,
userfaultfd, keyctl and the key syscalls, fanotify), or administer the machine (modules,
kexec, reboot, swap, clocks, quotas, syslog). ``clone`` is allowed except with a namespace
flag; ``clone3`` answers ENOSYS so that the C library falls back to ``clone``, whose flags the
filter can see (clone3 passes them in memory). A call made with a foreign architecture's
convention (x32 on x86_64, or another audit arch) kills the process.

``socket`` and ``socketpair`` are refused with EPERM for the domain ``AF_VSOCK`` in every
tier: a vsock reaches the hypervisor's host side of a virtual machine strato runs in, which no
network namespace confines.

With ``restrict_sockets`` (the fallback tier with egress ``none``: it shares the host's network,
and Landlock governs neither UDP nor connecting to a pathname unix socket) the only sockets
a process may make are TCP ones and connected unix pairs: ``socket`` is refused with EPERM
unless its domain is ``AF_INET`` or ``AF_INET6``, its type ``SOCK_STREAM`` (the flags
``SOCK_NONBLOCK`` and ``SOCK_CLOEXEC`` aside) and its protocol 0 or ``IPPROTO_TCP`` (not
MPTCP or SCTP, which Landlock's TCP rules may not cover); ``socketpair`` is refused unless
it makes an ``AF_UNIX`` pair of type ``SOCK_STREAM`` or ``SOCK_SEQPACKET``, whose sockets
stay connected to each other (a datagram pair could still send to any unix socket's path).

Numbers come from the kernel's ``asm/unistd_64.h`` (x86_64) and ``asm-generic/unistd.h``
(aarch64); ``tests/unit/test_sandbox_rules.py`` checks them against the headers where installed.
Stdlib only: this module runs inside the zygote under the function's interpreter.
"""

from __future__ import annotations

import platform
import struct

TYPE_CHECKING = False  # not typing's: the annotations need no import at run time
if TYPE_CHECKING:
    from collections.abc import Sequence

    #: One classic BPF instruction: (code, jt, jf, k).
    Instruction = tuple[int, int, int, int]
    #: What ``_assemble`` reads: a label, or an instruction whose jumps may name labels.
    Source = list[str | tuple[int, int | str, int | str, int]]

EPERM = 1
ENOSYS = 38

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_X32_SYSCALL_BIT = 0x40000000

#: Namespace flags of clone(2): a process may not make namespaces of its own.
CLONE_NAMESPACE_FLAGS = (0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000
                         | 0x20000000 | 0x40000000)

DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "open_by_handle_at", "name_to_handle_at",
    "bpf", "io_uring_setup", "io_uring_enter", "io_uring_register", "perf_event_open",
    "userfaultfd", "keyctl", "add_key", "request_key", "fanotify_init", "lookup_dcookie",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "syslog", "vhangup",
    "sethostname", "setdomainname",
)

SYSCALLS = {
    "x86_64": {
        "clone": 56, "clone3": 435, "ptrace": 101, "process_vm_readv": 310,
        "process_vm_writev": 311, "kcmp": 312, "pidfd_getfd": 438, "mount": 165,
        "umount2": 166, "pivot_root": 155, "chroot": 161, "unshare": 272, "setns": 308,
        "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
        "fspick": 433, "mount_setattr": 442, "open_by_handle_at": 304,
        "name_to_handle_at": 303, "bpf": 321, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "perf_event_open": 298, "userfaultfd": 323, "keyctl": 250,
        "add_key": 248, "request_key": 249, "fanotify_init": 300, "lookup_dcookie": 212,
        "init_module": 175, "finit_module": 313, "delete_module": 176, "kexec_load": 246,
        "kexec_file_load": 320, "reboot": 169, "swapon": 167, "swapoff": 168, "acct": 163,
        "quotactl": 179, "quotactl_fd": 443, "settimeofday": 164, "clock_settime": 227,
        "clock_adjtime": 305, "adjtimex": 159, "syslog": 103, "vhangup": 153,
        "sethostname": 170, "setdomainname": 171, "socket": 41,
        "socketpair": 53,
    },
    "aarch64": {
        "clone": 220, "clone3": 435, "ptrace": 117, "process_vm_readv": 270,
        "process_vm_writev": 271, "kcmp": 272, "pidfd_getfd": 438, "mount": 40,
        "umount2": 39, "pivot_root": 41, "chroot": 51, "unshare": 97, "setns": 268,
        "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
        "fspick": 433, "mount_setattr": 442, "open_by_handle_at": 265,
        "name_to_handle_at": 264, "bpf": 280, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "perf_event_open": 241, "userfaultfd": 282, "keyctl": 219,
        "add_key": 217, "request_key": 218, "fanotify_init": 262, "lookup_dcookie": 18,
        "init_module": 105, "finit_module": 273, "delete_module": 106, "kexec_load": 104,
        "kexec_file_load": 294, "reboot": 142, "swapon": 224, "swapoff": 225, "acct": 89,
        "quotactl": 60, "quotactl_fd": 443, "settimeofday": 170, "clock_settime": 112,
        "clock_adjtime": 266, "adjtimex": 171, "syslog": 116, "vhangup": 58,
        "sethostname": 161, "setdomainname": 162, "socket": 198,
        "socketpair": 199,
    },
}

# Classic BPF opcodes and seccomp return values.
_LD_ABS_W = 0x20
_ALU_AND_K = 0x54
_JEQ_K, _JGE_K, _JSET_K = 0x15, 0x35, 0x45
_RET_K = 0x06
_MAX_JUMP = 255
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_ALLOW = 0x7FFF0000
# Offsets in struct seccomp_data (the low word of a 64-bit argument: both architectures are
# little-endian).
_NR, _ARCH, _ARG0_LOW, _ARG1_LOW, _ARG2_LOW = 0, 4, 16, 24, 32

#: What ``restrict_sockets`` lets ``socket(2)`` and ``socketpair(2)`` create.
AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10
#: Refused in every tier (see the module's text).
AF_VSOCK = 40
SOCK_STREAM, SOCK_SEQPACKET = 1, 5
IPPROTO_TCP = 6
#: The type bits of a socket's type argument (the rest are SOCK_NONBLOCK and SOCK_CLOEXEC).
_SOCK_TYPE_MASK = 0xF


def machine() -> str:
    """The architecture name this filter is built for (``x86_64`` or ``aarch64``)."""
    name = platform.machine()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(name, name)


def supported(arch: str | None = None) -> bool:
    return (arch or machine()) in SYSCALLS


def build_program(arch: str | None = None, *,
                  restrict_sockets: bool = False) -> list[Instruction]:
    """The filter as a list of (code, jt, jf, k) instructions for ``arch``; with
    ``restrict_sockets``, only TCP sockets and connected unix pairs (see the module's text)."""
    arch = arch or machine()
    numbers = SYSCALLS[arch]
    denied = sorted({numbers[name] for name in DENIED})
    source: Source = [_load(_ARCH), (_JEQ_K, 0, "kill", _AUDIT_ARCH[arch]), _load(_NR)]
    if arch == "x86_64":
        source.append((_JGE_K, "kill", 0, _X32_SYSCALL_BIT))
    source += [(_JEQ_K, "eperm", 0, number) for number in denied]
    source.append((_JEQ_K, "enosys", 0, numbers["clone3"]))
    source += [(_JEQ_K, "socket", 0, numbers["socket"]),
               (_JEQ_K, "socketpair", 0, numbers["socketpair"])]
    source += [(_JEQ_K, 0, "allow", numbers["clone"]),
               _load(_ARG0_LOW),
               (_JSET_K, "eperm", "allow", CLONE_NAMESPACE_FLAGS)]
    # Both checks refuse AF_VSOCK: the restricted one allows only other domains.
    source += _socket_check() if restrict_sockets else _vsock_check()
    source += ["allow", (_RET_K, 0, 0, RET_ALLOW),
               "eperm", (_RET_K, 0, 0, RET_ERRNO | EPERM),
               "enosys", (_RET_K, 0, 0, RET_ERRNO | ENOSYS),
               "kill", (_RET_K, 0, 0, RET_KILL_PROCESS)]
    return _assemble(source)


def _load(offset: int) -> Instruction:
    return (_LD_ABS_W, 0, 0, offset)


def _vsock_check() -> Source:
    """Instructions labelled ``socket`` and ``socketpair`` that go on to ``eperm`` for the
    domain ``AF_VSOCK`` and to ``allow`` for any other."""
    return ["socket", "socketpair",
            _load(_ARG0_LOW),
            (_JEQ_K, "eperm", "allow", AF_VSOCK)]


def _socket_check() -> Source:
    """Instructions labelled ``socket`` and ``socketpair`` that go on to ``allow`` for what
    ``restrict_sockets`` lets through and to ``eperm`` for anything else."""
    return ["socket",
            _load(_ARG0_LOW),
            (_JEQ_K, "inet", 0, AF_INET),
            (_JEQ_K, 0, "eperm", AF_INET6),
            "inet",
            _load(_ARG1_LOW),
            (_ALU_AND_K, 0, 0, _SOCK_TYPE_MASK),
            (_JEQ_K, 0, "eperm", SOCK_STREAM),
            _load(_ARG2_LOW),
            (_JEQ_K, "allow", 0, 0),
            (_JEQ_K, "allow", "eperm", IPPROTO_TCP),
            "socketpair",
            _load(_ARG0_LOW),
            (_JEQ_K, 0, "eperm", AF_UNIX),
            _load(_ARG1_LOW),
            (_ALU_AND_K, 0, 0, _SOCK_TYPE_MASK),
            (_JEQ_K, "allow", 0, SOCK_STREAM),
            (_JEQ_K, "allow", "eperm", SOCK_SEQPACKET)]


def _assemble(source: Source) -> list[Instruction]:
    """Resolve labels into relative jumps. ``source`` holds label names (strings) and
    instructions whose ``jt``/``jf`` are offsets or label names. Classic BPF jumps forward
    only, by at most 255 instructions: a label must come after every jump to it, near
    enough, or this raises ``ValueError``."""
    labels: dict[str, int] = {}
    count = 0
    for item in source:
        if isinstance(item, str):
            labels[item] = count
        else:
            count += 1
    program: list[Instruction] = []
    for item in source:
        if isinstance(item, str):
            continue
        code, jt, jf, k = item
        index = len(program)
        program.append((code, _offset(jt, index, labels), _offset(jf, index, labels), k))
    return program


def _offset(target: int | str, index: int, labels: dict[str, int]) -> int:
    if not isinstance(target, str):
        return target
    offset = labels[target] - index - 1
    if not 0 <= offset <= _MAX_JUMP:
        raise ValueError(f"seccomp program: no forward jump of {offset} to {target!r}")
    return offset


def encode(program: Sequence[Instruction]) -> bytes:
    """The program as the bytes of a ``struct sock_filter`` array."""
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)


def run(program: Sequence[Instruction], nr: int, arch_value: int, arg0: int = 0, arg1: int = 0,
        arg2: int = 0) -> int:
    """Interpret ``program`` for one system call (for tests): the seccomp return value."""
    data = {_NR: nr, _ARCH: arch_value, _ARG0_LOW: arg0 & 0xFFFFFFFF,
            _ARG1_LOW: arg1 & 0xFFFFFFFF, _ARG2_LOW: arg2 & 0xFFFFFFFF}
    acc = 0
    pc = 0
    while True:
        code, jt, jf, k = program[pc]
        if code == _LD_ABS_W:
            acc = data[k]
            pc += 1
        elif code == _ALU_AND_K:
            acc &= k
            pc += 1
        elif code == _JEQ_K:
            pc += 1 + (jt if acc == k else jf)
        elif code == _JGE_K:
            pc += 1 + (jt if acc >= k else jf)
        elif code == _JSET_K:
            pc += 1 + (jt if acc & k else jf)
        elif code == _RET_K:
            return k
        else:
            raise ValueError(f"unknown opcode {code:#x}")


def audit_arch(arch: str | None = None) -> int:
    return _AUDIT_ARCH[arch or machine()]
