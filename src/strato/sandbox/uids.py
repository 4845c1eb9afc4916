"""A pool of host uids: each live environment runs as a uid no other environment has.

The range sits far above ordinary accounts (and above the usual subordinate-id ranges of
``/etc/subuid``) so that a uid never names a real user or a file on the host. A uid goes back
to the pool only after every process of its environment is gone.

Several strato servers may run on one host: ``UidPool.claim`` gives each a block of the range
of its own, held by an exclusive ``flock`` on a file per block for as long as the server's
process lives (the kernel releases it when the process dies, even by SIGKILL), so that no two
servers' environments ever share a uid.
"""

from __future__ import annotations

import os
from collections import deque

from strato.errors import SandboxError
from strato.sandbox.host_locks import try_lock

FIRST_UID = 1_500_000
POOL_SIZE = 100_000
#: Uids per server: more than the environments one server runs at once.
BLOCK_SIZE = 4_096
LOCK_DIR = "/run/strato/uid-blocks"


class UidPool:
    def __init__(self, first: int = FIRST_UID, size: int = POOL_SIZE,
                 lock_fd: int | None = None) -> None:
        # First in, first out: a released uid is the last to be handed out again.
        self._free = deque(range(first, first + size))
        self._taken: set[int] = set()
        #: The held lock of the block this pool was claimed with (kept open on purpose).
        self.lock_fd = lock_fd

    @classmethod
    def claim(cls, lock_dir: str = LOCK_DIR, first: int = FIRST_UID,
              size: int = POOL_SIZE, block: int = BLOCK_SIZE) -> UidPool:
        """A pool of the first block of ``[first, first + size)`` no other live process on
        the host holds. Raises SandboxError when every block is held."""
        os.makedirs(lock_dir, mode=0o700, exist_ok=True)
        for index in range(size // block):
            fd = try_lock(os.path.join(lock_dir, f"{index}.lock"))
            if fd is not None:
                return cls(first + index * block, block, lock_fd=fd)
        raise SandboxError(f"every block of environment uids is held by another strato "
                           f"(locks in {lock_dir})")

    def acquire(self) -> int:
        """A uid no live environment holds. Raises SandboxError when all are taken."""
        if not self._free:
            raise SandboxError("no free uid for a new environment")
        uid = self._free.popleft()
        self._taken.add(uid)
        return uid

    def release(self, uid: int) -> None:
        """Return ``uid``; idempotent."""
        if uid in self._taken:
            self._taken.remove(uid)
            self._free.append(uid)

    @property
    def in_use(self) -> int:
        return len(self._taken)
