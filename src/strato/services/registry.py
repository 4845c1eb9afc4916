"""The invoke path's view of functions: an in-memory map of name → ``$LATEST`` record.

Loaded from the store at start, then kept current by the function service's change
notifications (delivered on the event loop's thread). Reads are plain dict lookups, so the
invoke path never touches the database.
"""

from __future__ import annotations

from collections.abc import Iterable

from strato.domain.models import FunctionVersion


class FunctionRegistry:
    def __init__(self, records: Iterable[FunctionVersion] = ()) -> None:
        self._latest: dict[str, FunctionVersion] = {r.name: r for r in records}

    def get(self, name: str) -> FunctionVersion | None:
        return self._latest.get(name)

    def put(self, name: str, record: FunctionVersion | None) -> FunctionVersion | None:
        """Record a change; returns the record it replaces (None if new)."""
        previous = self._latest.get(name)
        if record is None:
            self._latest.pop(name, None)
        else:
            self._latest[name] = record
        return previous

    def __len__(self) -> int:
        return len(self._latest)
