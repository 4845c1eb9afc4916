"""The storage quota of log groups: how many bytes each group holds, and when to delete.

Every log group (one per function) may hold ``quota`` bytes of messages (UTF-8). When what
is about to be stored would take a group over it, its oldest events are deleted first, until
it would hold at most ``LOW_WATER`` of the quota, so that deletions come in runs of about a
quarter of the quota rather than one per append. The counts live in memory, loaded from the
store the first time a group is written (one query per group per process, never one per
line).

Pure bookkeeping: the caller stores, deletes and says what it did.
"""

from __future__ import annotations

#: After a deletion a group holds at most this share of its quota.
LOW_WATER = 0.75


class LogQuota:
    """Bytes held per log group against one ``quota`` for every group. Not thread-safe: one
    thread (the log writer) owns it."""

    def __init__(self, quota: int) -> None:
        if quota < 1:
            raise ValueError(f"a log quota must be at least 1 byte, not {quota}")
        self.quota = quota
        self._held: dict[str, int] = {}

    def knows(self, group: str) -> bool:
        return group in self._held

    def load(self, group: str, held: int) -> None:
        """What the store holds of ``group`` (before the caller's next append)."""
        self._held[group] = held

    def held(self, group: str) -> int:
        return self._held.get(group, 0)

    def charge(self, group: str, size: int) -> None:
        """``size`` bytes were stored in ``group``."""
        self._held[group] = self._held.get(group, 0) + size

    def excess(self, group: str) -> int:
        """How many of ``group``'s oldest bytes to delete now: 0 while it is within its
        quota, else enough to bring it down to ``LOW_WATER`` of it."""
        held = self._held.get(group, 0)
        return 0 if held <= self.quota else held - int(self.quota * LOW_WATER)

    def credit(self, group: str, freed: int) -> None:
        """``freed`` bytes of ``group`` were deleted."""
        self._held[group] = max(0, self._held.get(group, 0) - freed)

    def forget(self, group: str) -> None:
        """The group was deleted: its count is loaded again when it is next written."""
        self._held.pop(group, None)


def quota_line(group: str, quota: int) -> str:
    """Stored in the stream being written when its group's oldest events are deleted."""
    return (f"[strato: log group {group} is over its storage quota of {quota} bytes: "
            f"its oldest events were deleted]")


def overflow_line(dropped: int) -> str:
    """Stored in a stream whose lines the log writer could not take (it was behind)."""
    return (f"[strato: {dropped} bytes of log lines dropped: the log writer fell behind "
            f"the output of functions]")
