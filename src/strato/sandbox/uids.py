"""A pool of host uids: each live environment runs as a uid no other environment has.

The range sits far above ordinary accounts (and above the usual subordinate-id ranges of
``/etc/subuid``) so that a uid never names a real user or a file on the host. A uid goes back
to the pool only after every process of its environment is gone.
"""

from __future__ import annotations

from collections import deque

from strato.errors import SandboxError

FIRST_UID = 1_500_000
POOL_SIZE = 100_000


class UidPool:
    def __init__(self, first: int = FIRST_UID, size: int = POOL_SIZE) -> None:
        # First in, first out: a released uid is the last to be handed out again.
        self._free = deque(range(first, first + size))
        self._taken: set[int] = set()

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
