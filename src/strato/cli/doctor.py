"""``strato doctor``: what confinement this host allows and what strato would use."""

from __future__ import annotations

from strato.config import Settings
from strato.sandbox import tiers
from strato.sandbox.cgroups import CgroupParent
from strato.sandbox.network import EgressNetwork
from strato.sandbox.network_slots import slot_config


def report(settings: Settings) -> str:
    """A human-readable report of the capability probe and the tier ``serve`` would choose."""
    capabilities = tiers.probe()
    lines = ["sandbox capabilities:"]
    lines += [f"  {line}" for line in capabilities.lines()]
    cgroups = CgroupParent.probe() if settings.use_cgroups else None
    if cgroups is None:
        lines.append("  cgroup v1: no (memory by RSS sampling, no cpu or pids limits)")
    else:
        controllers = ["memory"] + [name for name, path in (("pids", cgroups.pids),
                                                            ("cpu", cgroups.cpu)) if path]
        lines.append(f"  cgroup v1: {', '.join(controllers)}")
        cgroups.remove()
    if settings.egress == "internet":
        try:
            # The probe makes and removes interfaces of its own: no slot needs to be held.
            config = slot_config(0, settings.egress_bridge, settings.egress_subnet)
            reason = EgressNetwork(config).probe()
        except ValueError as exc:
            reason = str(exc)
        lines.append("  internet egress (bridge + nftables): "
                     + ("yes" if reason is None else f"no ({reason}); loopback only"))
    else:
        lines.append("  internet egress: off (--egress none)")
    try:
        tier = tiers.choose(capabilities, settings.sandbox)
        lines.append(f"tier in use with these settings: {tier.value}")
        if tier is tiers.Tier.FALLBACK:
            lines.append("  WARNING: the fallback tier shares the host's network and file "
                         "system view; see docs/security.md")
        elif tier is tiers.Tier.UNCONFINED:
            lines.append("  WARNING: unconfined: function code runs with strato's privileges")
    except tiers.SandboxUnavailable as exc:
        lines.append(f"tier in use with these settings: none ({exc})")
    return "\n".join(lines)
