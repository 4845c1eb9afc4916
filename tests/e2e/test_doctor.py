"""``strato doctor`` reports what the host allows and the tier ``serve`` would use."""

from __future__ import annotations

import os
import subprocess
import sys


def _doctor(**env: str) -> str:
    done = subprocess.run([sys.executable, "-m", "strato.cli.main", "doctor"],
                          capture_output=True, text=True, timeout=60, check=True,
                          env={**os.environ, **env})
    return done.stdout


def test_doctor_reports_capabilities_and_the_tier() -> None:
    out = _doctor()
    assert "namespaces + minimal root:" in out and "seccomp filter:" in out
    assert "landlock:" in out and "cgroup v1:" in out
    expected = "namespaces" if os.geteuid() == 0 else "fallback"
    assert f"tier in use with these settings: {expected}" in out


def test_doctor_warns_about_the_fallback_and_unconfined_tiers() -> None:
    assert "WARNING: the fallback tier" in _doctor(STRATO_SANDBOX="fallback")
    assert "WARNING: unconfined" in _doctor(STRATO_SANDBOX="unconfined")
    assert "internet egress: off" in _doctor(STRATO_EGRESS="none")
