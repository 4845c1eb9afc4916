"""What SIGKILLed servers left below the host's temporary directory: the fallback tier's
TMPDIR tmpfs mounts and their parent directories.

Each server keeps its environments' temporary directories in ``<tmp>/strato-env-tmp-<pid>-*``
(``LocalSandbox``), named after its own pid, and removes it, unmounting every tmpfs below it,
when it stops. A server killed before then leaves the directory and its mounts behind: a
starting server removes those of every pid that no longer runs. A directory whose pid runs is
left alone even if that process is not the server that made it (the pid was reused): it goes
once that process is gone too. Other leftovers need nothing here: network namespaces are
anonymous (they go with their last fd, the server's), veth pairs go with them or with their
bridge (``network_slots.remove_leftovers``), cgroups are removed by ``CgroupParent``.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import shutil

log = logging.getLogger(__name__)

_DIRECTORY = re.compile(r"strato-env-tmp-(\d+)-")
_MNT_DETACH = 2


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _mount_points() -> list[str]:
    with open("/proc/self/mountinfo") as handle:
        return [line.split()[4].replace("\\040", " ") for line in handle]


def remove_dead_servers_tmp(tmp_dir: str) -> list[str]:
    """Unmount what is mounted below, and remove, every ``strato-env-tmp-<pid>-*`` directory
    of ``tmp_dir`` whose pid does not run; returns the directories removed. Never raises: a
    leftover that cannot go is logged, and no reason not to start."""
    removed: list[str] = []
    try:
        names = os.listdir(tmp_dir)
    except OSError as exc:
        log.warning("cannot look for killed servers' temporary directories in %s: %s",
                    tmp_dir, exc)
        return removed
    stale = [os.path.join(tmp_dir, name) for name in names
             if (match := _DIRECTORY.match(name)) and not _alive(int(match.group(1)))]
    if not stale:
        return removed
    umount2 = ctypes.CDLL(None, use_errno=True).umount2
    umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    mounts = _mount_points()
    for directory in stale:
        # Deepest first: a mount below another goes before it.
        for point in sorted((m for m in mounts if m.startswith(directory + "/")),
                            key=len, reverse=True):
            if umount2(point.encode(), _MNT_DETACH) != 0:
                log.warning("cannot unmount %s left by a killed strato: %s", point,
                            os.strerror(ctypes.get_errno()))
        with contextlib.suppress(OSError):
            shutil.rmtree(directory)
        if os.path.exists(directory):
            log.warning("cannot remove %s left by a killed strato", directory)
        else:
            log.info("removed %s left by a killed strato", directory)
            removed.append(directory)
    return removed
