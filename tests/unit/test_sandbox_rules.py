"""Pure parts of the sandbox: the seccomp program, tier choice, cpu shares, uids, root plan."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from strato.errors import SandboxError
from strato.sandbox import cgroups, rootfs
from strato.sandbox.local import inside_platform_port
from strato.sandbox.tiers import Capabilities, SandboxUnavailable, Tier, choose
from strato.sandbox.uids import UidPool

GUEST = Path(__file__).resolve().parents[2] / "src" / "strato" / "sandbox" / "guest"


def _guest_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"guest_{name}", GUEST / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


seccomp = _guest_module("seccomp")


# --- seccomp -----------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_every_denied_call_is_refused_with_eperm(arch: str) -> None:
    program = seccomp.build_program(arch)
    numbers = seccomp.SYSCALLS[arch]
    for name in seccomp.DENIED:
        verdict = seccomp.run(program, numbers[name], seccomp.audit_arch(arch))
        assert verdict == seccomp.RET_ERRNO | seccomp.EPERM, name


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_ordinary_calls_and_plain_clone_are_allowed(arch: str) -> None:
    program = seccomp.build_program(arch)
    denied = {seccomp.SYSCALLS[arch][name] for name in seccomp.DENIED}
    audit = seccomp.audit_arch(arch)
    for number in range(0, 460):
        if number in denied or number in (seccomp.SYSCALLS[arch]["clone3"],):
            continue
        assert seccomp.run(program, number, audit, arg0=0x11) == seccomp.RET_ALLOW, number
    clone = seccomp.SYSCALLS[arch]["clone"]
    fork_flags = 0x01200011  # CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD
    assert seccomp.run(program, clone, audit, arg0=fork_flags) == seccomp.RET_ALLOW


@pytest.mark.parametrize("flag", [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000,
                                  0x20000000, 0x40000000])
def test_clone_with_a_namespace_flag_is_refused(flag: int) -> None:
    program = seccomp.build_program("x86_64")
    verdict = seccomp.run(program, 56, seccomp.audit_arch("x86_64"), arg0=0x11 | flag)
    assert verdict == seccomp.RET_ERRNO | seccomp.EPERM


def test_clone3_answers_enosys_so_libc_falls_back_to_clone() -> None:
    program = seccomp.build_program("x86_64")
    assert seccomp.run(program, 435, seccomp.audit_arch("x86_64")) == seccomp.RET_ERRNO | seccomp.ENOSYS


def test_foreign_architecture_and_x32_calls_kill() -> None:
    program = seccomp.build_program("x86_64")
    assert seccomp.run(program, 0, 0x40000003) == seccomp.RET_KILL_PROCESS  # i386
    assert seccomp.run(program, 0x40000000 | 39, seccomp.audit_arch("x86_64")) \
        == seccomp.RET_KILL_PROCESS


def test_encoded_program_is_eight_bytes_per_instruction() -> None:
    program = seccomp.build_program("x86_64")
    assert len(seccomp.encode(program)) == 8 * len(program)


def _header_numbers(path: Path, pattern: str) -> dict[str, int]:
    numbers = {}
    for match in re.finditer(pattern, path.read_text()):
        numbers[match.group(1)] = int(match.group(2))
    return numbers


def test_x86_64_numbers_match_the_kernel_headers() -> None:
    header = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
    if not header.exists():
        pytest.skip("no x86_64 kernel headers installed")
    numbers = _header_numbers(header, r"#define __NR_(\w+)\s+(\d+)")
    for name, number in seccomp.SYSCALLS["x86_64"].items():
        assert numbers[name] == number, name


def test_aarch64_numbers_match_asm_generic() -> None:
    header = Path("/usr/include/asm-generic/unistd.h")
    if not header.exists():
        pytest.skip("no asm-generic headers installed")
    numbers = _header_numbers(header, r"#define __NR(?:3264)?_(\w+)\s+(\d+)")
    for name, number in seccomp.SYSCALLS["aarch64"].items():
        assert numbers[name] == number, name


# --- tiers -------------------------------------------------------------------------------

FULL = Capabilities(root=True, namespaces=None, seccomp=None, landlock_abi=6)


def test_auto_takes_namespaces_when_the_host_allows_them() -> None:
    assert choose(FULL, "auto") is Tier.NAMESPACES


def test_auto_falls_back_without_namespaces_or_root() -> None:
    no_ns = Capabilities(root=True, namespaces="unshare: EPERM", seccomp=None, landlock_abi=0)
    not_root = Capabilities(root=False, namespaces=None, seccomp=None, landlock_abi=3)
    assert choose(no_ns, "auto") is Tier.FALLBACK
    assert choose(not_root, "auto") is Tier.FALLBACK


def test_an_explicit_tier_the_host_cannot_give_is_refused() -> None:
    no_ns = Capabilities(root=True, namespaces="unshare: EPERM", seccomp=None, landlock_abi=0)
    with pytest.raises(SandboxUnavailable, match="unshare: EPERM"):
        choose(no_ns, "namespaces")


def test_without_seccomp_only_unconfined_is_possible() -> None:
    bare = Capabilities(root=False, namespaces="no", seccomp="no filter", landlock_abi=0)
    with pytest.raises(SandboxUnavailable, match="unsafe-no-sandbox"):
        choose(bare, "auto")
    assert choose(bare, "unconfined") is Tier.UNCONFINED


def test_fallback_can_be_asked_for_on_a_capable_host() -> None:
    assert choose(FULL, "fallback") is Tier.FALLBACK


# --- cpu, uids, root plan ----------------------------------------------------------------

@pytest.mark.parametrize(("memory", "quota"), [(1769, 100_000), (3538, 200_000),
                                               (128, 7_235), (10_240, 578_858), (1, 1_000)])
def test_cpu_quota_is_proportional_to_memory(memory: int, quota: int) -> None:
    assert cgroups.cpu_quota_us(memory) == quota


@pytest.mark.parametrize(("memory", "limit"), [(128, 12 << 20), (256, 24 << 20),
                                               (10_240, 960 << 20)])
def test_socket_memory_is_three_thirty_seconds_of_memory(memory: int, limit: int) -> None:
    assert cgroups.socket_memory_bytes(memory) == limit


def test_uids_are_distinct_and_reused_last() -> None:
    pool = UidPool(first=100, size=3)
    a, b, c = pool.acquire(), pool.acquire(), pool.acquire()
    assert len({a, b, c}) == 3
    with pytest.raises(SandboxError):
        pool.acquire()
    pool.release(a)
    pool.release(a)  # idempotent
    assert pool.acquire() == a
    assert pool.in_use == 3


def test_servers_on_one_host_claim_disjoint_uid_blocks(tmp_path: Path) -> None:
    """Each claim holds its block until its lock is closed (the process exits); a claim
    running in another process cannot take a held block."""
    lock_dir = str(tmp_path / "locks")
    first = UidPool.claim(lock_dir, first=1000, size=300, block=100)
    script = (
        "import sys\nfrom strato.sandbox.uids import UidPool\n"
        f"p = UidPool.claim({lock_dir!r}, first=1000, size=300, block=100)\n"
        "print(p.acquire())\n"
    )
    other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True)
    assert first.acquire() == 1000
    assert int(other.stdout) == 1100  # the next block: the first is held
    assert first.lock_fd is not None
    os.close(first.lock_fd)
    again = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True)
    assert int(again.stdout) == 1000  # released with its holder


def test_root_plan_never_binds_the_host_root_or_private_dirs() -> None:
    binds, symlinks = rootfs.system_binds()
    inside = {target for _, target, _ in binds} | {path for path, _ in symlinks}
    assert "/" not in inside
    assert not any(t == "/root" or t.startswith(("/root/", "/home", "/var", "/tmp", "/work"))
                   for t in inside)
    assert "/usr" in inside


def test_extra_binds_are_added_read_only_at_their_own_path(tmp_path: Path) -> None:
    (tmp_path / "tool").mkdir()
    binds, _ = rootfs.system_binds([str(tmp_path / "tool")])
    assert [str(tmp_path / "tool"), str(tmp_path / "tool"), "dir"] in binds


def test_guest_modules_are_stdlib_only() -> None:
    allowed = set(sys.stdlib_module_names) | {"confine", "landlock", "seccomp", "netsetup",
                                              "lambda_runtime"}
    for name in ("confine", "landlock", "seccomp", "netsetup", "probe"):
        source = (GUEST / f"{name}.py").read_text()
        for match in re.finditer(r"^\s*(?:import|from) (\w+)", source, re.MULTILINE):
            assert match.group(1) in allowed, (name, match.group(1))


@pytest.mark.parametrize(("host_port", "inside"), [
    (9000, 9000), (45837, 45837), (9002, 9002),
    (9001, 9002),  # the Runtime API's port inside
    (None, 9002),
])
def test_an_environment_reaches_strato_at_its_own_port_on_the_loopback(
        host_port: int | None, inside: int) -> None:
    assert inside_platform_port(host_port) == inside
