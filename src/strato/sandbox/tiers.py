"""Which confinement tier environments get, decided once at start-up by a capability probe.

- ``namespaces`` (default): new mount, pid, ipc, uts, net and user namespaces, a minimal
  read-only root, a distinct uid, no capabilities, no_new_privs, seccomp, cgroups. Needs root.
- ``fallback``: where namespaces are missing: distinct uid (when root), no_new_privs,
  seccomp, rlimits, Landlock where present. Chosen only with a loud warning.
- ``unconfined``: ``--unsafe-no-sandbox``; process trees and cgroups only. Development only.

The probe runs ``guest/probe.py`` in a child interpreter, which tries the real recipe.
"""

from __future__ import annotations

import enum
import json
import logging
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from strato.sandbox.zygote import GUEST_DIR

log = logging.getLogger(__name__)


class Tier(enum.Enum):
    NAMESPACES = "namespaces"
    FALLBACK = "fallback"
    UNCONFINED = "unconfined"


@dataclass(frozen=True)
class Capabilities:
    """What the host allows. A ``str`` field is the reason a feature is missing."""

    root: bool
    namespaces: str | None
    seccomp: str | None
    landlock_abi: int

    def lines(self) -> list[str]:
        """Human-readable report (``strato doctor``)."""
        return [
            f"running as root: {'yes' if self.root else 'no'}",
            "namespaces + minimal root: " + ("yes" if self.namespaces is None
                                              else f"no ({self.namespaces})"),
            "seccomp filter: " + ("yes" if self.seccomp is None else f"no ({self.seccomp})"),
            "landlock: " + (f"ABI {self.landlock_abi}" if self.landlock_abi else "no"),
        ]


def probe(interpreter: str | None = None) -> Capabilities:
    """Try the recipe in a throwaway child interpreter (a few tens of milliseconds)."""
    with tempfile.TemporaryDirectory(prefix="strato-probe-") as scratch:
        try:
            done = subprocess.run(
                [interpreter or sys.executable, "-E", "-s", "-S", str(GUEST_DIR / "probe.py"),
                 scratch], capture_output=True, text=True, timeout=30, check=False,
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
        except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
            reason = f"the probe did not run: {exc}"
            return Capabilities(False, reason, reason, 0)
    return Capabilities(
        root=bool(result.get("root")),
        namespaces=result.get("namespaces"),
        seccomp=result.get("seccomp"),
        landlock_abi=int(result.get("landlock_abi") or 0),
    )


class SandboxUnavailable(Exception):
    """The requested tier cannot be provided on this host."""


def choose(capabilities: Capabilities, requested: str) -> Tier:
    """The tier to use. ``requested``: ``auto`` (the strongest available), a tier name,
    or ``unconfined``. Raises SandboxUnavailable when an explicit tier is impossible."""
    if requested == Tier.UNCONFINED.value:
        return Tier.UNCONFINED
    namespaces_ok = capabilities.root and capabilities.namespaces is None
    if requested == Tier.NAMESPACES.value and not namespaces_ok:
        raise SandboxUnavailable(
            f"the namespaces tier is unavailable: {capabilities.namespaces or 'not root'}")
    if requested in ("auto", Tier.NAMESPACES.value) and namespaces_ok:
        return Tier.NAMESPACES
    if capabilities.seccomp is not None:
        raise SandboxUnavailable(
            f"no sandbox tier is available (seccomp: {capabilities.seccomp}); "
            "use --unsafe-no-sandbox for development only")
    return Tier.FALLBACK
