"""What confinement this host allows, found by trying it: ``python -S probe.py <scratch dir>``.

Runs the namespaces-tier recipe of ``confine.py`` on an empty root in a throwaway child, and
checks seccomp and Landlock separately. Prints one JSON object:
``{"namespaces": null | "<failed step>", "seccomp": null | "<reason>", "landlock_abi": <int>,
"root": <bool>}``. Stdlib only.
"""

from __future__ import annotations

import json
import os
import sys

TYPE_CHECKING = False  # not typing's: the annotations need no import at run time
if TYPE_CHECKING:
    from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import confine  # noqa: E402
import landlock  # noqa: E402

_PROBE_UID = 199_999


def _in_child(body: Callable[[], None]) -> str | None:
    """Run ``body`` in a forked child; None if it exited 0, else what it reported."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        status = 0
        try:
            body()
        except BaseException as exc:
            os.write(write_end, str(exc).encode()[:4000] or repr(exc).encode())
            status = 1
        os._exit(status)
    os.close(write_end)
    message = b""
    while chunk := os.read(read_end, 4096):
        message += chunk
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return None
    return message.decode("utf-8", "replace") or f"child ended with status {status}"


def probe_namespaces(scratch: str) -> str | None:
    c = confine.Confiner()
    staging = os.path.join(scratch, "root")
    task = os.path.join(scratch, "task")
    os.makedirs(staging, exist_ok=True)
    os.makedirs(task, exist_ok=True)

    def body() -> None:
        c.unshare(confine.CLONE_NEWNS | confine.CLONE_NEWPID | confine.CLONE_NEWIPC
                  | confine.CLONE_NEWUTS | confine.CLONE_NEWNET)
        inner = _in_child(lambda: _inner(c, staging, task))
        if inner is not None:
            raise confine.SetupError(inner)
    return _in_child(body)


def _inner(c: confine.Confiner, staging: str, task: str) -> None:
    import netsetup
    netsetup.bring_loopback_up()
    c.runtime_api_socket().close()
    c.name_host()
    c.build_root({"staging": staging, "task_root": task, "tmp_mb": 1,
                  "binds": [], "symlinks": []})
    c.become(_PROBE_UID, _PROBE_UID, user_namespace=True)
    c.drop_capabilities()
    c.no_new_privs()
    c.install_seccomp()


def probe_seccomp() -> str | None:
    c = confine.Confiner()
    if not c.seccomp_available:
        return "no seccomp filter for this architecture"

    def body() -> None:
        c.no_new_privs()
        c.install_seccomp()
        try:
            os.unshare(0) if hasattr(os, "unshare") else None
        except PermissionError:
            return
    return _in_child(body)


def main(argv: list[str]) -> int:
    scratch = argv[1]
    result: dict[str, object] = {"root": os.geteuid() == 0,
                                 "landlock_abi": landlock.Landlock().abi}
    try:
        result["namespaces"] = probe_namespaces(scratch)
    except Exception as exc:
        result["namespaces"] = f"probe failed: {exc}"
    try:
        result["seccomp"] = probe_seccomp()
    except Exception as exc:
        result["seccomp"] = f"probe failed: {exc}"
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
