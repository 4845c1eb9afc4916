"""The engine's clock for one run of a server, kept continuous across restarts.

With ``--time-scale`` the engine runs on a ``ScaledClock``; its origin (the wall-clock moment
scaled time started from) is kept in a file of the data dir, so that the scaled time of one
run goes on from the last instead of going back to the wall clock (stored timestamps stay in
the past, as they would with the real clock).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from strato.domain.clock import Clock, ScaledClock, SystemClock


def engine_clock(scale: float, origin_file: Path) -> Clock:
    """The real clock when ``scale`` is 1.0 (``origin_file`` is then neither read nor
    written); else a clock ``scale`` times faster from the origin in ``origin_file``, which
    is created with the current time when missing or unreadable."""
    if scale == 1.0:
        return SystemClock()
    try:
        origin = float(json.loads(origin_file.read_text())["origin"])
    except (OSError, ValueError, KeyError, TypeError):
        origin = time.time()
        origin_file.write_text(json.dumps({"origin": origin}))
    return ScaledClock(scale, origin)
