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

Numbers come from the kernel's ``asm/unistd_64.h`` (x86_64) and ``asm-generic/unistd.h``
(aarch64); ``tests/unit/test_seccomp.py`` checks them against the headers where installed.
Stdlib only: this module runs inside the zygote under the function's interpreter.
"""

import platform
import struct

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
        "sethostname": 170, "setdomainname": 171,
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
        "sethostname": 161, "setdomainname": 162,
    },
}

# Classic BPF opcodes and seccomp return values.
_LD_ABS_W = 0x20
_JEQ_K, _JGE_K, _JSET_K = 0x15, 0x35, 0x45
_RET_K = 0x06
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_ALLOW = 0x7FFF0000
# Offsets in struct seccomp_data.
_NR, _ARCH, _ARG0_LOW = 0, 4, 16


def machine():
    """The architecture name this filter is built for (``x86_64`` or ``aarch64``)."""
    name = platform.machine()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(name, name)


def supported(arch=None):
    return (arch or machine()) in SYSCALLS


def build_program(arch=None):
    """The filter as a list of (code, jt, jf, k) instructions for ``arch``.

    Jumps in classic BPF are relative and forward only, so the program is laid out with the
    shared return instructions last and each jump's offset computed from its position."""
    arch = arch or machine()
    numbers = SYSCALLS[arch]
    denied = sorted({numbers[name] for name in DENIED})
    # Layout: [0] ld arch, [1] jeq arch, [2] ld nr, [3] x32 check (x86_64), then one jeq per
    # denied number, jeq clone3, jeq clone, ld arg0, jset flags, ret allow,
    # then the labelled returns: errno EPERM, errno ENOSYS, kill.
    body = []
    body.append(("ld", _ARCH))
    body.append(("jeq_or_kill", _AUDIT_ARCH[arch]))
    body.append(("ld", _NR))
    if arch == "x86_64":
        body.append(("jge_to", _X32_SYSCALL_BIT, "kill"))
    for number in denied:
        body.append(("jeq_to", number, "eperm"))
    body.append(("jeq_to", numbers["clone3"], "enosys"))
    body.append(("jne_allow", numbers["clone"]))
    body.append(("ld", _ARG0_LOW))
    body.append(("jset_to", CLONE_NAMESPACE_FLAGS, "eperm"))
    body.append(("ret", RET_ALLOW))
    labels = {"eperm": len(body), "enosys": len(body) + 1, "kill": len(body) + 2}
    allow_at = len(body) - 1
    program = []
    for index, item in enumerate(body):
        op = item[0]

        def to(label, index=index):
            offset = labels[label] - index - 1
            if not 0 <= offset <= 255:
                raise ValueError("seccomp program too long for a relative jump")
            return offset
        if op == "ld":
            program.append((_LD_ABS_W, 0, 0, item[1]))
        elif op == "jeq_or_kill":
            program.append((_JEQ_K, 0, to("kill"), item[1]))
        elif op == "jge_to":
            program.append((_JGE_K, to(item[2]), 0, item[1]))
        elif op == "jeq_to":
            program.append((_JEQ_K, to(item[2]), 0, item[1]))
        elif op == "jne_allow":
            program.append((_JEQ_K, 0, allow_at - index - 1, item[1]))
        elif op == "jset_to":
            program.append((_JSET_K, to(item[2]), 0, item[1]))
        else:
            program.append((_RET_K, 0, 0, item[1]))
    program.append((_RET_K, 0, 0, RET_ERRNO | EPERM))
    program.append((_RET_K, 0, 0, RET_ERRNO | ENOSYS))
    program.append((_RET_K, 0, 0, RET_KILL_PROCESS))
    return program


def encode(program):
    """The program as the bytes of a ``struct sock_filter`` array."""
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)


def run(program, nr, arch_value, arg0=0):
    """Interpret ``program`` for one system call (for tests): the seccomp return value."""
    data = {_NR: nr, _ARCH: arch_value, _ARG0_LOW: arg0 & 0xFFFFFFFF}
    acc = 0
    pc = 0
    while True:
        code, jt, jf, k = program[pc]
        if code == _LD_ABS_W:
            acc = data[k]
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


def audit_arch(arch=None):
    return _AUDIT_ARCH[arch or machine()]
