"""The sandbox tier of a starting server, and what the fallback tier needs of the host.

``start_tier`` probes the host and picks the tier (``tiers.choose``), and says loudly when it
is not the default: the fallback tier shares the host's file system view, network and
/proc; ``unconfined`` confines nothing. In the fallback tier an environment reaches its code
by its host path, so the data dir's code directories are made traversable (0711: not
listable) by other uids, and the directories above the data dir and the interpreter that
other users cannot traverse are named in a warning.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from strato.sandbox import tiers

log = logging.getLogger(__name__)


def start_tier(requested: str, data: Path) -> tiers.Tier:
    """The tier for ``requested`` (``auto``, a tier name, or ``unconfined``) on this host.
    Raises ``tiers.SandboxUnavailable`` when an explicit tier is impossible. In the fallback
    tier, creates ``data/code/trees`` and ``merged`` (mode 0711 on the way) and warns about what other users
    cannot traverse. Once per server start, before the sandbox is built."""
    capabilities = tiers.probe()
    tier = tiers.choose(capabilities, requested)
    if tier is tiers.Tier.FALLBACK:
        log.warning(
            "SANDBOX FALLBACK: %s. Environments share the host's file system view "
            "(narrowed by Landlock where present), network and /proc; run strato as root "
            "on a host with namespaces for the full sandbox (see `strato doctor`).",
            capabilities.namespaces or "namespaces are unavailable")
        _open_code_paths(data)
    elif tier is tiers.Tier.UNCONFINED:
        log.warning("UNSAFE: --unsafe-no-sandbox: function code runs unconfined, with "
                    "strato's own privileges. For development only.")
    return tier


def _open_code_paths(data: Path) -> None:
    # Without a mount namespace, an environment reaches its code by its host path: the
    # directories on the way must be traversable (not listable) by its uid.
    for path in (data, data / "code", data / "code" / "trees", data / "code" / "merged"):
        path.mkdir(exist_ok=True)
        path.chmod(0o711)
    blocked = [p for p in data.resolve().parents if not p.stat().st_mode & 0o001]
    if blocked:
        log.warning("fallback tier: %s cannot be traversed by other users; functions "
                    "will not reach their code (chmod o+x it, or pick another "
                    "--data-dir)", blocked[0])
    for interpreter in [sys.executable]:
        real = Path(os.path.realpath(interpreter))
        hidden = [p for p in real.parents if not p.stat().st_mode & 0o001]
        if hidden:
            log.warning("fallback tier: %s cannot be traversed by other users; "
                        "functions run by %s cannot import modules (install the "
                        "interpreter where other users can read it)", hidden[0], real)
