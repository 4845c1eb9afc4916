"""Which fresh environments a standby may become (``sandbox/standby.refusal``): a table of
specs against one standby of a Node.js runtime."""

from __future__ import annotations

from typing import Any

import pytest

from strato.sandbox.base import EGRESS_INTERNET, EGRESS_NONE, EnvironmentSpec, Standby
from strato.sandbox.node_launcher import node_reads_at_start
from strato.sandbox.standby import STANDBY_TMP_MB, boot_variables, refusal

VIEWS = (("/usr/lib/node20", "/var/lang"), ("/opt/strato/nodejs", "/var/runtime"))
STANDBY = Standby(("/var/lang/bin/node", "/var/runtime/index.mjs", "--standby"), VIEWS,
                  node_reads_at_start)
PLATFORM = {"LANG": "en_US.UTF-8", "TZ": ":UTC", "LD_LIBRARY_PATH": "/var/lang/lib:/lib64",
            "NODE_PATH": "/opt/nodejs/node_modules:/var/runtime/node_modules",
            "PATH": "/var/lang/bin:/usr/bin"}


def spec(**changes: Any) -> EnvironmentSpec:
    fields: dict[str, Any] = {
        "env_id": "env-1", "python_version": None,
        "argv": ("/var/lang/bin/node", "/var/runtime/index.mjs"),
        "env": {**PLATFORM, "_HANDLER": "index.handler"}, "cwd": "/data/code/abc",
        "memory_mb": 128, "tmp_mb": STANDBY_TMP_MB, "egress": EGRESS_NONE, "views": VIEWS,
        "standby": STANDBY}
    fields.update(changes)
    return EnvironmentSpec(**fields)


BOOTED = boot_variables(STANDBY, PLATFORM)


def test_a_standby_boots_with_the_platforms_variables_node_reads_as_it_starts() -> None:
    assert BOOTED == {"LANG": "en_US.UTF-8", "LD_LIBRARY_PATH": "/var/lang/lib:/lib64"}


@pytest.mark.parametrize(("changes", "reason"), [
    ({}, None),
    ({"memory_mb": 3008}, None),
    ({"env": {**PLATFORM, "GREETING": "hi", "NODE_PATH": "/var/task/lib"}}, None),
    ({"standby": None}, "no standby mode"),
    ({"egress": EGRESS_INTERNET}, None),  # an egress has standbys of its own
    ({"tmp_mb": 1024}, "/tmp of 1024 MB"),
    ({"views": (*VIEWS, ("/data/layers/1", "/opt"))}, "layers"),
    ({"env": {**PLATFORM, "NODE_OPTIONS": "--enable-source-maps"}}, "NODE_OPTIONS"),
    ({"env": {**PLATFORM, "NODE_EXTRA_CA_CERTS": "/var/task/ca.pem"}}, "NODE_EXTRA_CA_CERTS"),
    ({"env": {**PLATFORM, "LD_LIBRARY_PATH": "/var/task/lib"}}, "LD_LIBRARY_PATH"),
    ({"env": {**PLATFORM, "LC_ALL": "de_DE.UTF-8"}}, "LC_ALL"),
    ({"env": {k: v for k, v in PLATFORM.items() if k != "LANG"}}, "LANG"),
])
def test_which_environments_a_standby_may_become(changes: dict[str, Any],
                                                  reason: str | None) -> None:
    found = refusal(spec(**changes), BOOTED)
    if reason is None:
        assert found is None
    else:
        assert found is not None and reason in found
