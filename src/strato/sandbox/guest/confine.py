"""The confinement recipe, as run by a forked environment on its way to user code.

Each step is one method and fails with ``SetupError("<step>: <reason>")``. The zygote
resolves every C function once (``Confiner()``); a child then only makes system calls.

Default tier (``namespaces``), in this order::

    once, in the zygote's own mount namespace (a slave of the host's):   (build_skeleton)
        the skeleton: tmpfs root ─ read-only binds (system dirs) ─ the interpreter at
        /var/lang and the runtime at /var/runtime, the AWS SDKs merged in (shown trees) ─
        /dev nodes ─ /etc files ─
        root read-only
    forked by the zygote as pid 2 of a new pid namespace (the zygote unshares one for it and
    forks its init, ``reaper.py``, first):
        join cgroups ─ unshare(mount, ipc, uts): a copy of the zygote's mounts, skeleton
        included ─ host name (name_host) ─ make / private ─ proc           (enter_root)
        ── a spare waits here for the environment it becomes ──
        [setns into a prepared network namespace | new one, loopback up] ─ listen on
        127.0.0.1:9001 (the Runtime API) and 127.0.0.1 at strato's own port (its API, for
        the function's AWS SDK calls; 9002 by default), both handed to the platform ─ code
        at /var/task (a shown tree) ─ /tmp: a clone of a detached tmpfs sized by EphemeralStorage (new, and
        handed to the platform, or the one of the runtime this one restarts) ─ pivot_root
        into the skeleton ─ the host's root detached                      (finish_root)
        (a standby environment has no code yet: a helper shows it later from outside,
        ``show_code``)

A *shown tree* is a host directory mounted read-only through an overlay whose only layers
are that directory and an empty one, both named by paths relative to the root being built
(``lowerdir=tmp:var/empty``): the mount table an environment reads then names neither the
directory's host path (a bind mount's root field would) nor anything else of the host's.
Where the kernel has no overlayfs, it is a plain read-only bind (and the mount table names
the host path). Mounts below the directory on the host are not part of a shown tree.
        ─ RLIMIT_NOFILE ─ distinct uid/gid ─ user namespace (993/990 inside) ─ drop
        capabilities ─ no_new_privs ─ seccomp

The mount, pid, ipc, uts and net namespaces belong to the host's user namespace, so the
environment, which ends up without capabilities in a user namespace of its own, can change
none of them.

Fallback tier: setsid ─ cgroups ─ RLIMIT_NOFILE ─ distinct uid/gid ─ no_new_privs ─ Landlock
─ seccomp (with egress ``none``: the variant that allows only TCP sockets and connected unix
pairs, as the environment shares the host's network). Stdlib only.
"""

from __future__ import annotations

import ctypes
import os
import resource
import socket

import landlock
import seccomp

TYPE_CHECKING = False  # not typing's: the annotations need no import at run time
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, NoReturn

    #: One step of ``compile_root``: an ``_OP_*`` kind, then that kind's arguments.
    Op = tuple[Any, ...]

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x20, 0x1000, 0x4000, 0x40000
MS_SLAVE = 0x80000
MNT_DETACH = 2
PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 4, 24, 38
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91}
# The mount API (the same numbers on both architectures).
_SYS_OPEN_TREE, _SYS_MOVE_MOUNT, _SYS_FSOPEN, _SYS_FSCONFIG, _SYS_FSMOUNT = 428, 429, 430, 431, 432
FSOPEN_CLOEXEC, FSMOUNT_CLOEXEC = 1, 1
FSCONFIG_SET_STRING, FSCONFIG_CMD_CREATE = 1, 6
MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 0x2, 0x4
OPEN_TREE_CLONE, AT_EMPTY_PATH, MOVE_MOUNT_F_EMPTY_PATH, AT_FDCWD = 1, 0x1000, 0x4, -100

#: The ids the function runs as inside its user namespace (Lambda's sbx_user1051).
INSIDE_UID, INSIDE_GID = 993, 990
RUNTIME_API_PORT = 9001
#: Where an environment of the namespaces tier reaches strato's API (``AWS_ENDPOINT_URL``)
#: when its request names no ``platform_port`` (the platform names strato's own port).
PLATFORM_API_PORT = 9002

_ETC_PASSWD = ("root:x:0:0:root:/root:/sbin/nologin\n"
               "sbx_user1051:x:993:990::/home/sbx_user1051:/sbin/nologin\n")
_ETC_GROUP = "root:x:0:\nsbx_user1051:x:990:\n"
_ETC_HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost\n"
#: The host name and NIS domain an environment's uts namespace shows (the host's are its own).
HOSTNAME, DOMAINNAME = b"localhost", b"(none)"
#: Where the interpreter's prefix and strato's guest runtime appear, as on Lambda.
LANG_DIR, RUNTIME_DIR = "/var/lang", "/var/runtime"
#: The empty directory that is a shown tree's second layer, and the mount point its first
#: layer is bound at for the moment the overlay is made (relative to the root being built).
_EMPTY_DIR, _SCRATCH_DIR = b"var/empty", b"tmp"
_ENODEV, _EINVAL = 19, 22
_DEVICES = ("null", "zero", "full", "random", "urandom")


class SetupError(Exception):
    """A child's setup step failed; the message names the step."""


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


class Confiner:
    """Everything a child needs, resolved before any fork."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._mount = libc.mount
        self._mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                ctypes.c_ulong, ctypes.c_char_p]
        self._umount2 = libc.umount2
        self._umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        self._unshare = libc.unshare
        self._unshare.argtypes = [ctypes.c_int]
        self._setns = libc.setns
        self._setns.argtypes = [ctypes.c_int, ctypes.c_int]
        self._sethostname = libc.sethostname
        self._sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        self._setdomainname = libc.setdomainname
        self._setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        self._prctl = libc.prctl
        self._prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                                ctypes.c_ulong]
        self._syscall = libc.syscall
        self._syscall.restype = ctypes.c_long
        arch = seccomp.machine()
        self._arch = arch
        self.seccomp_available = seccomp.supported(arch)
        # Both filters (plain, and with sockets restricted) are built here, before any fork.
        self._fprogs: dict[bool, tuple[_SockFprog, ctypes.Array[_SockFilter]]] = {}
        if self.seccomp_available:
            for restrict_sockets in (False, True):
                program = seccomp.build_program(arch, restrict_sockets=restrict_sockets)
                instructions = (_SockFilter * len(program))(*[_SockFilter(*i) for i in program])
                self._fprogs[restrict_sockets] = (_SockFprog(len(program), instructions),
                                                  instructions)
        self._cap_header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
        self._cap_data = (_CapData * 2)()
        self.landlock = landlock.Landlock()

    # --- helpers ------------------------------------------------------------------------
    @staticmethod
    def _fail(step: str, errno: int | None = None) -> NoReturn:
        errno = ctypes.get_errno() if errno is None else errno
        raise SetupError(f"{step}: [Errno {errno}] {os.strerror(errno)}")

    def _mount_or_fail(self, source: bytes | None, target: bytes, fstype: bytes | None,
                       flags: int, data: bytes | None, step: str) -> None:
        if self._mount(source, target, fstype, flags, data) != 0:
            self._fail(step)

    # --- steps --------------------------------------------------------------------------
    def join_network(self, fd: int) -> None:
        if self._setns(fd, CLONE_NEWNET) != 0:
            self._fail("enter the network namespace")

    def enter_pid_namespace(self, fd: int) -> None:
        """Make the caller's next children start in the pid namespace ``fd`` refers to."""
        if self._setns(fd, CLONE_NEWPID) != 0:
            self._fail("return to the zygote's pid namespace")

    def unshare(self, flags: int, step: str = "unshare namespaces") -> None:
        if self._unshare(flags) != 0:
            self._fail(step)

    def name_host(self) -> None:
        """In a new uts namespace: the neutral host and domain names (``HOSTNAME``), so that
        ``uname`` and ``/proc/sys/kernel/hostname`` do not show the host's."""
        if self._sethostname(HOSTNAME, len(HOSTNAME)) != 0:
            self._fail("set the host name")
        if self._setdomainname(DOMAINNAME, len(DOMAINNAME)) != 0:
            self._fail("set the domain name")

    @staticmethod
    def runtime_api_socket(port: int = RUNTIME_API_PORT) -> socket.socket:
        """A listening socket on loopback ``port`` inside the environment's network: the
        Runtime API's by default, strato's own API's with the request's ``platform_port``."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
        return sock

    def build_root(self, plan: dict[str, Any]) -> None:
        """Make the environment's root file system under ``plan["staging"]`` and switch to
        it, all in the calling process's own mount namespace: ``build_skeleton``, then
        ``enter_root`` and ``finish_root``."""
        self.make_private()
        self.build_skeleton(compile_root(plan))
        self.enter_root(plan["staging"])
        self.finish_root(plan)

    def make_private(self) -> None:
        """Mounts made from now on reach no other mount namespace, and none reach this one."""
        self._mount_or_fail(None, b"/", None, MS_REC | MS_PRIVATE, None, "make / private")

    def make_slave(self) -> None:
        """Mounts made from now on stay in this mount namespace; the host's still come in."""
        self._mount_or_fail(None, b"/", None, MS_REC | MS_SLAVE, None, "make / a slave")

    def build_skeleton(self, compiled: Iterable[Op]) -> None:
        """Build the part of a root that is the same for every function (``compile_root``):
        a read-only tmpfs with the system's directories and files bound read-only, device
        nodes and ``/etc`` files. The zygote builds it once in a mount namespace of its own;
        every environment's mount namespace starts as a copy of that one."""
        umask = os.umask(0o022)  # whatever the caller's, what is made here is readable
        cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            self._build(compiled)
        finally:
            os.umask(umask)
            os.fchdir(cwd)
            os.close(cwd)

    def _build(self, compiled: Iterable[Op]) -> None:
        mount = self._mount
        for op in compiled:
            kind = op[0]
            if kind == _OP_MOUNT:
                if mount(op[1], op[2], op[3], op[4], op[5]) != 0:
                    self._fail(op[6])
            elif kind == _OP_MKDIR:
                try:
                    os.mkdir(op[1], 0o755)
                except FileExistsError:
                    pass
            elif kind == _OP_FILE:
                try:
                    os.close(os.open(op[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                except FileExistsError:
                    pass
            elif kind == _OP_SYMLINK:
                os.symlink(op[1], op[2])
            elif kind == _OP_SHOW:
                self.show_tree(op[1], op[2], op[3], op[4], under=op[5])
            elif not os.path.lexists(op[1]):  # _OP_WRITE, unless a bind provides it
                fd = os.open(op[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                try:
                    os.write(fd, op[2])
                finally:
                    os.close(fd)

    def show_tree(self, source: bytes, root: bytes, inside: bytes, step: str, *,
                  under: Iterable[bytes] = ()) -> None:
        """Mount the host directory ``source`` read-only at ``root + inside`` as a shown tree
        (see the module docstring); all arguments bytes, ``inside`` relative to ``root``,
        whose ``tmp`` (an empty mount point) and ``var/empty`` (an empty directory) exist.
        The host directories ``under`` are merged in below ``source`` (a name in several
        comes from the first), each bound on a directory of a scratch tmpfs on ``tmp`` while
        the overlay is made (``lowerdir=tmp/0:tmp/1:…``); without overlayfs they are left
        out. Leaves the working directory at ``root``."""
        scratch = root + b"/" + _SCRATCH_DIR
        target = root + b"/" + inside
        layers = [source, *under]
        if len(layers) == 1:
            self._mount_or_fail(source, scratch, None, MS_BIND, None, step)
            lower = _SCRATCH_DIR
        else:
            self._mount_or_fail(b"tmpfs", scratch, b"tmpfs", MS_NOSUID | MS_NODEV,
                                b"size=16k,mode=0700", step + " (scratch)")
            names = []
            for index, layer in enumerate(layers):
                names.append(_SCRATCH_DIR + b"/" + str(index).encode())
                os.mkdir(root + b"/" + names[-1], 0o700)
                self._mount_or_fail(layer, root + b"/" + names[-1], None, MS_BIND, None, step)
            lower = b":".join(names)
        os.chdir(root)
        shown = self._mount(b"overlay", target, b"overlay", MS_RDONLY | MS_NOSUID | MS_NODEV,
                            b"lowerdir=" + lower + b":" + _EMPTY_DIR)
        code = ctypes.get_errno()
        self._umount2(scratch, MNT_DETACH)  # the scratch tmpfs with the binds on it
        if shown == 0:
            return
        if code not in (_ENODEV, _EINVAL):  # no overlayfs, or one refusing this lower layer
            self._fail(step, code)
        self._mount_or_fail(source, target, None, MS_BIND, None, step)
        self._mount_or_fail(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID
                            | MS_NODEV, None, step + " read-only")

    def detach(self, path: str) -> None:
        """Detach what is mounted at ``path`` (and below); nothing there is no error."""
        self._umount2(path.encode(), MNT_DETACH)

    def enter_root(self, staging: str) -> None:
        """In an environment's own mount and pid namespaces, on the skeleton at ``staging``:
        its mounts private, and a ``/proc`` of its pid namespace in which a process sees only
        the processes it may ptrace (``hidepid=2``): not the namespace's init (``reaper.py``),
        whose /proc entries would show the host's network and mounts."""
        self.make_private()
        self._mount_or_fail(b"proc", staging.encode() + b"/proc", b"proc",
                            MS_NOSUID | MS_NODEV | MS_NOEXEC, b"hidepid=2", "mount /proc")

    def finish_root(self, plan: dict[str, Any], tmp_fd: int | None = None) -> int | None:
        """The function's part, then the switch: its code ``plan["task_root"]`` at /var/task
        (a shown tree), its ``plan["views"]`` ([[host dir, path inside], ...], shown trees
        over mount points the skeleton has: a language's prefix over /var/lang, its runtime
        over /var/runtime, layers at /opt), /tmp, pivot_root into the (read-only) skeleton
        and the host's root detached. After ``enter_root``.

        /tmp is a clone of a *detached* tmpfs mount: ``tmp_fd``'s (the /tmp of the runtime
        this one restarts, kept by the platform), else a new one of ``plan["tmp_mb"]``, whose
        fd is returned for the platform to keep (the caller closes it once handed over); None
        when ``tmp_fd`` was given. Detached, the mount outlives this mount namespace: a clone
        of an attached mount of a dead namespace cannot be made (EINVAL)."""
        root = plan["staging"].encode()
        if plan["task_root"] is not None:  # None: a standby's, shown later (``show_code``)
            self.show_tree(plan["task_root"].encode(), root, b"var/task",
                           "mount the function's code at /var/task")
        for source, inside in plan.get("views", ()):
            self.show_tree(source.encode(), root, inside.lstrip("/").encode(),
                           f"show {source} at {inside}")
        created = None
        if tmp_fd is None:
            created = tmp_fd = self._new_tmpfs(plan["tmp_mb"])
        try:
            self._attach_clone(tmp_fd, root + b"/tmp")
        except BaseException:
            if created is not None:
                os.close(created)
            raise
        try:
            os.chdir(root)
            if self._syscall(_SYS_PIVOT_ROOT[self._arch], b".", b".") != 0:
                self._fail("pivot_root")
            if self._umount2(b".", MNT_DETACH) != 0:
                self._fail("detach the host's root")
            os.chdir("/")
        except BaseException:
            if created is not None:
                os.close(created)
            raise
        return created

    def show_code(self, task_root: str, mounts: int) -> None:
        """From outside a standby environment (``child.become_environment`` with no code):
        show ``task_root`` (a host directory) read-only at /var/task of the mount namespace
        ``mounts`` (an fd of it) as a shown tree. Only in a single-threaded child of its
        own, which it leaves in that namespace: the code is cloned as a detached mount here
        (a bind from another namespace is refused), which ``setns`` then carries in. The
        clone is attached at /tmp for the moment the overlay is made (the environment,
        blocked until it is told its variables, does not look), then detached again."""
        clone = self._syscall(_SYS_OPEN_TREE, ctypes.c_int(AT_FDCWD), task_root.encode(),
                              ctypes.c_uint(OPEN_TREE_CLONE | os.O_CLOEXEC))
        if clone < 0:
            self._fail(f"clone {task_root} (open_tree)")
        try:
            if self._setns(mounts, CLONE_NEWNS) != 0:
                self._fail("enter the environment's mount namespace")
            os.chdir("/")
            step = "mount the function's code at /var/task"
            if self._syscall(_SYS_MOVE_MOUNT, ctypes.c_int(clone), b"", ctypes.c_int(AT_FDCWD),
                             b"/" + _SCRATCH_DIR, ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)) != 0:
                self._fail(step + " (move_mount)")
        finally:
            os.close(clone)
        shown = self._mount(b"overlay", b"/var/task", b"overlay",
                            MS_RDONLY | MS_NOSUID | MS_NODEV,
                            b"lowerdir=" + _SCRATCH_DIR + b":" + _EMPTY_DIR)
        code = ctypes.get_errno()
        if shown != 0 and code not in (_ENODEV, _EINVAL):
            self._umount2(b"/" + _SCRATCH_DIR, MNT_DETACH)
            self._fail(step, code)
        if shown != 0:  # no overlayfs: a read-only bind of the clone (it names the host path)
            self._mount_or_fail(b"/" + _SCRATCH_DIR, b"/var/task", None, MS_BIND, None, step)
            self._mount_or_fail(None, b"/var/task", None, MS_REMOUNT | MS_BIND | MS_RDONLY
                                | MS_NOSUID | MS_NODEV, None, step + " read-only")
        if self._umount2(b"/" + _SCRATCH_DIR, MNT_DETACH) != 0:
            self._fail("detach the code's clone from /tmp")

    def _new_tmpfs(self, size_mb: int) -> int:
        """A detached tmpfs of ``size_mb`` (mode 1777, nosuid, nodev): its mount's fd."""
        fs = self._syscall(_SYS_FSOPEN, b"tmpfs", ctypes.c_uint(FSOPEN_CLOEXEC))
        if fs < 0:
            self._fail("make a tmpfs for /tmp (fsopen)")
        try:
            for key, value in ((b"size", b"%dm" % size_mb), (b"mode", b"1777")):
                if self._syscall(_SYS_FSCONFIG, ctypes.c_int(fs),
                                 ctypes.c_uint(FSCONFIG_SET_STRING), key, value,
                                 ctypes.c_int(0)) != 0:
                    self._fail(f"set {key.decode()} of the tmpfs for /tmp")
            if self._syscall(_SYS_FSCONFIG, ctypes.c_int(fs), ctypes.c_uint(FSCONFIG_CMD_CREATE),
                             None, None, ctypes.c_int(0)) != 0:
                self._fail("create the tmpfs for /tmp")
            mount = self._syscall(_SYS_FSMOUNT, ctypes.c_int(fs), ctypes.c_uint(FSMOUNT_CLOEXEC),
                                  ctypes.c_uint(MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV))
            if mount < 0:
                self._fail("mount the tmpfs for /tmp (fsmount)")
            return int(mount)
        finally:
            os.close(fs)

    def _attach_clone(self, mount_fd: int, target: bytes) -> None:
        """Attach a clone of the detached mount ``mount_fd`` at ``target``."""
        clone = self._syscall(_SYS_OPEN_TREE, ctypes.c_int(mount_fd), b"",
                              ctypes.c_uint(OPEN_TREE_CLONE | os.O_CLOEXEC | AT_EMPTY_PATH))
        if clone < 0:
            self._fail("clone the tmpfs for /tmp (open_tree)")
        try:
            if self._syscall(_SYS_MOVE_MOUNT, ctypes.c_int(clone), b"", ctypes.c_int(AT_FDCWD),
                             target, ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)) != 0:
                self._fail("attach the tmpfs at /tmp (move_mount)")
        finally:
            os.close(clone)

    @staticmethod
    def limit_files(nofile: int) -> None:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        except (OSError, ValueError) as exc:
            raise SetupError(f"set RLIMIT_NOFILE to {nofile}: {exc}") from exc

    def become(self, uid: int, gid: int, *, user_namespace: bool) -> None:
        """Take the environment's own uid and gid (which drops every capability); with
        ``user_namespace``, also enter a new user namespace where they read 993/990."""
        try:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
        except OSError as exc:
            raise SetupError(f"switch to uid {uid}: {exc}") from exc
        if not user_namespace:
            return
        # A uid change clears the dumpable flag, which would leave /proc/self owned by root.
        self._prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
        self.unshare(CLONE_NEWUSER, "new user namespace")
        try:
            for name, text in (("setgroups", "deny"), ("uid_map", f"{INSIDE_UID} {uid} 1"),
                               ("gid_map", f"{INSIDE_GID} {gid} 1")):
                with open(f"/proc/self/{name}", "w") as handle:
                    handle.write(text)
        except OSError as exc:
            raise SetupError(f"map ids in the user namespace: {exc}") from exc

    def drop_capabilities(self) -> None:
        for cap in range(64):
            if self._prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                break
        self._prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
        if self._syscall(_SYS_CAPSET[self._arch], ctypes.byref(self._cap_header),
                         ctypes.byref(self._cap_data)) != 0:
            self._fail("drop capabilities")

    def no_new_privs(self) -> None:
        if self._prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            self._fail("no_new_privs")

    def install_seccomp(self, restrict_sockets: bool = False) -> None:
        """Install the filter (``seccomp.py``); with ``restrict_sockets``, the one that lets
        the process make only TCP sockets and connected unix pairs."""
        if not self.seccomp_available:
            raise SetupError(f"seccomp: no filter for {self._arch}")
        fprog, _ = self._fprogs[bool(restrict_sockets)]
        if self._prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog),
                       0, 0) != 0:
            self._fail("install the seccomp filter")

    def restrict_paths(self, read_paths: Iterable[str], write_paths: Iterable[str],
                       tcp_ports: Iterable[int] | None) -> None:
        try:
            self.landlock.restrict(read_paths, write_paths, tcp_ports)
        except landlock.LandlockError as exc:
            raise SetupError(f"landlock: {exc}") from exc


_OP_MOUNT, _OP_MKDIR, _OP_FILE, _OP_SYMLINK, _OP_WRITE, _OP_SHOW = range(6)


def compile_root(plan: dict[str, Any]) -> tuple[Op, ...]:
    """The system calls that make the function-independent part of a root (the skeleton),
    in order, with every argument ready (bytes, flags), for ``Confiner.build_skeleton``.
    Pure.

    ``plan``: ``staging`` (where the root is built), ``binds`` [[host path, path inside,
    "dir"|"file"|"tree"]] (bound read-only; a "tree" is a shown tree), ``symlinks`` [[path
    inside, target]], ``runtime_trees`` [host path] (merged below the tree shown at
    ``RUNTIME_DIR``: the AWS SDKs)."""
    root = plan["staging"]
    ops: list[Op] = [(_OP_MOUNT, b"tmpfs", root.encode(), b"tmpfs", MS_NOSUID | MS_NODEV,
            b"size=1m,mode=0755", "mount the root tmpfs")]
    made: set[str] = set()

    def make_dirs(inside: str) -> None:
        """mkdir of ``inside`` and its missing parents (below the root)."""
        parts = inside.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            path = "/" + "/".join(parts[:depth])
            if path not in made:
                made.add(path)
                ops.append((_OP_MKDIR, (root + path).encode()))

    # The mount point and the empty layer every shown tree needs, before any of them.
    for path in ("/opt", "/tmp", "/proc", "/var/task", "/var/empty", "/home/sbx_user1051",
                 "/etc"):
        make_dirs(path)
    for path, target in plan.get("symlinks", ()):
        make_dirs(os.path.dirname(path))
        ops.append((_OP_SYMLINK, target.encode(), (root + path).encode()))
    binds = [(source, inside, kind) for source, inside, kind in plan.get("binds", ())]
    binds += [(f"/dev/{name}", f"/dev/{name}", "device") for name in _DEVICES]
    for source, inside, kind in binds:
        target = (root + inside).encode()
        if kind == "tree":
            make_dirs(inside)
            under = tuple(p.encode() for p in plan.get("runtime_trees") or ()
                          ) if inside == RUNTIME_DIR else ()
            ops.append((_OP_SHOW, source.encode(), root.encode(), inside.lstrip("/").encode(),
                        f"show {source} at {inside}", under))
            made -= {p for p in made if p == inside or p.startswith(inside + "/")}
            continue
        if kind == "dir":
            make_dirs(inside)
        else:
            make_dirs(os.path.dirname(inside))
            ops.append((_OP_FILE, target))
        step = f"bind {source} at {inside}"
        ops.append((_OP_MOUNT, source.encode(), target, None, MS_BIND | MS_REC, None, step))
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID
        if kind != "device":
            flags |= MS_NODEV
        ops.append((_OP_MOUNT, None, target, None, flags, None, step + " read-only"))
        # What lies below a bind comes from the host now, not from this plan.
        made -= {p for p in made if p == inside or p.startswith(inside + "/")}
    for link, target in (("/dev/fd", "/proc/self/fd"), ("/dev/stdin", "/proc/self/fd/0"),
                         ("/dev/stdout", "/proc/self/fd/1"), ("/dev/stderr", "/proc/self/fd/2")):
        ops.append((_OP_SYMLINK, target.encode(), (root + link).encode()))
    for name, text in (("passwd", _ETC_PASSWD), ("group", _ETC_GROUP), ("hosts", _ETC_HOSTS),
                       ("hostname", "localhost\n")):
        ops.append((_OP_WRITE, f"{root}/etc/{name}".encode(), text.encode()))
    ops.append((_OP_MOUNT, None, root.encode(), None,
                MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None, "make the root read-only"))
    return tuple(ops)
