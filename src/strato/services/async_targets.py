"""What an asynchronous event runs on: its function's version, concurrency and config now.

The async worker looks a target up at each attempt (``queue.worker.Lookup``), so an event
runs the version its qualifier names at the attempt, not when it was accepted; the
destination sender and the event ledger ask only whether a function and qualifier exist.
"""

from __future__ import annotations

from strato.async_invoke.worker import FunctionTarget
from strato.domain.models import LATEST
from strato.services.event_invoke_configs import EventInvokeConfigCache
from strato.services.registry import FunctionRegistry, resolve


class AsyncTargets:
    """Reads the invoke path's registry and the event invoke configs' cache; only on the
    loop's thread (where both are updated). Reads no database."""

    def __init__(self, registry: FunctionRegistry, event_configs: EventInvokeConfigCache) -> None:
        self._registry = registry
        self._event_configs = event_configs

    def __call__(self, name: str, qualifier: str | None) -> FunctionTarget | None:
        """The target of an event of ``name`` through ``qualifier`` (None: unqualified), or
        None when the function or the qualifier does not exist (now). A weighted alias draws
        its version at each call."""
        entry = self._registry.get(name)
        record = None if entry is None else resolve(entry, qualifier)
        if entry is None or record is None:
            return None
        return FunctionTarget(record, entry.reserved_concurrency,
                              self._event_configs.get(name, qualifier or LATEST))

    def exists(self, name: str, qualifier: str | None) -> bool:
        """Whether ``name`` exists and ``qualifier`` (None: unqualified) names something."""
        return self(name, qualifier) is not None
