"""Spares: processes that took the function-independent half of the namespaces recipe ahead
of demand, so that a cold start does only the rest.

A spare is forked by a zygote on a ``prepare`` request (``guest/child.py``): it has joined
cgroups made for it (without limits yet), is pid 2 of a new pid namespace (whose init, forked
before it, reaps orphans: ``guest/reaper.py``), in new mount, ipc and uts namespaces, and has
the system part of its root built; it waits for the request of the environment it becomes.
Taking one skips, on the cold start's path, the zygote's forks (of the init and of the
environment), the first cgroup attach (which waits for an RCU grace period when no other
attach happened lately: several milliseconds on an idle host) and most mounts.

``SparePool`` keeps ``size`` spares of one zygote ready and makes another each time one is
taken or lost. A cold start that finds none ready does not wait: it takes the whole recipe at
once (a direct spawn), as it would without spares. All methods run on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strato.errors import SandboxError
from strato.sandbox.cgroups import CgroupParent, EnvironmentCgroup
from strato.sandbox.zygote import Zygote

log = logging.getLogger(__name__)

#: Spares' ids, and so the names of their cgroups until they become environments.
SPARE_PREFIX = "spare-"
#: How long a pool waits before preparing again after a spare could not be made.
RETRY_AFTER_S = 5.0
#: How long after a spare is taken its replacement is prepared: the cold start that took it
#: is over by then, and does not share the CPU with a fork and a set-up it does not need.
REFILL_AFTER_S = 0.05


@dataclass(frozen=True)
class Spare:
    """A spare ready to become an environment: its id (what a spawn request names), its pid,
    its cgroups (owned by whoever takes the spare) and the memory size their limits were set
    for (None: no limits yet)."""

    id: str
    pid: int
    cgroup: EnvironmentCgroup | None
    memory_mb: int | None


class SparePool:
    """Spares of one zygote (see the module docstring). ``root`` is the function-independent
    part of the root plan (staging, binds, symlinks); ``cgroups`` None: spares without
    cgroups; ``admit`` bounds how many starts and preparations run at once (the sandbox's)."""

    def __init__(self, zygote: Zygote, *, size: int, root: dict[str, Any],
                 cgroups: CgroupParent | None, max_pids: int, limit_cpu: bool,
                 admit: asyncio.Semaphore, discard: Callable[[EnvironmentCgroup], None]) -> None:
        self.zygote = zygote
        self.size = size
        self._root = root
        self._cgroups = cgroups
        self._max_pids = max_pids
        self._limit_cpu = limit_cpu
        self._admit = admit
        self._discard = discard
        self._ready: dict[str, Spare] = {}
        self._preparing: set[asyncio.Task[None]] = set()
        self._retry_at = 0.0
        self._refill: asyncio.TimerHandle | None = None
        #: The memory size the last environment asked for: spares' limits are set for it.
        self._memory_mb: int | None = None
        self._closed = False
        zygote.on_spare_lost = self._lost

    def take(self, memory_mb: int) -> Spare | None:
        """The oldest ready spare (the caller owns it and its cgroups now, and sets their
        limits unless ``Spare.memory_mb`` is ``memory_mb`` already), or None; either way
        another is prepared shortly, its limits set ahead for ``memory_mb``."""
        self._memory_mb = memory_mb
        spare = None
        if self._ready:
            spare = self._ready.pop(next(iter(self._ready)))
        if self._refill is None:
            self._refill = asyncio.get_running_loop().call_later(REFILL_AFTER_S, self.refill)
        return spare

    def refill(self) -> None:
        """Start preparing spares until ``size`` are ready or on their way."""
        self._refill = None
        while not self._closed and self.zygote.alive \
                and len(self._ready) + len(self._preparing) < self.size \
                and time.monotonic() >= self._retry_at:
            task = asyncio.ensure_future(self._prepare())
            self._preparing.add(task)
            task.add_done_callback(self._preparing.discard)

    async def _prepare(self) -> None:
        name = SPARE_PREFIX + uuid.uuid4().hex
        cgroup: EnvironmentCgroup | None = None
        memory_mb = self._memory_mb
        try:
            async with self._admit:
                if self._closed:
                    return
                if self._cgroups is not None:
                    cgroup = self._cgroups.create(name, memory_mb, self._max_pids,
                                                  limit_cpu=self._limit_cpu)
                pid = await self.zygote.prepare({
                    "id": name, "tier": "namespaces", "root": self._root,
                    "cgroups": cgroup.procs_files if cgroup is not None else []})
        except SandboxError as exc:
            if cgroup is not None:
                self._discard(cgroup)
            if self._closed or not self.zygote.alive:
                return
            log.warning("cannot prepare a spare environment (cold starts take the whole "
                        "recipe; trying again in %.0f s): %s", RETRY_AFTER_S, exc)
            self._retry_at = time.monotonic() + RETRY_AFTER_S
            asyncio.get_running_loop().call_later(RETRY_AFTER_S, self.refill)
            return
        except BaseException:
            if cgroup is not None:
                self._discard(cgroup)
            raise
        if self._closed:  # the zygote kills it as it stops
            if cgroup is not None:
                self._discard(cgroup)
            return
        self._ready[name] = Spare(name, pid, cgroup, memory_mb if cgroup is not None else None)

    def _lost(self, spare_id: str) -> None:
        """A spare died before it was used: forget it, and make another."""
        spare = self._ready.pop(spare_id, None)
        if spare is not None and spare.cgroup is not None:
            self._discard(spare.cgroup)
        self.refill()

    async def close(self) -> None:
        """Prepare no more; give up the ready spares' cgroups (the zygote kills the spares
        when it stops). Idempotent."""
        self._closed = True
        if self._refill is not None:
            self._refill.cancel()
        for task in list(self._preparing):
            task.cancel()
        for task in list(self._preparing):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for spare in self._ready.values():
            if spare.cgroup is not None:
                self._discard(spare.cgroup)
        self._ready.clear()
