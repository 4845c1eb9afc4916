"""Finding node per major version and how a Node.js environment starts (``sandbox.node_*``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from strato.errors import InterpreterNotFoundError
from strato.sandbox.base import Standby
from strato.sandbox.launch import Launch
from strato.sandbox.node_installations import NodeRegistry
from strato.sandbox.node_launcher import CLIENT_DIR, NodeLauncher, node_reads_at_start


def fake_node(prefix: Path, version: str) -> str:
    """An executable ``<prefix>/bin/node`` that says it is node ``version``."""
    (prefix / "bin").mkdir(parents=True)
    node = prefix / "bin" / "node"
    node.write_text(f"#!/bin/sh\nprintf '{version}'\n")
    node.chmod(0o755)
    return str(node)


def test_an_explicit_node_of_the_right_major_version_is_shown_at_var_lang(tmp_path: Path) -> None:
    node = fake_node(tmp_path / "node20", "20.11.1")
    launcher = NodeLauncher(NodeRegistry({"20": node}), sdk="/deps/nodejs/node_modules")
    views = ((str(tmp_path / "node20"), "/var/lang"), (CLIENT_DIR, "/var/runtime"),
             ("/deps/nodejs/node_modules", "/var/runtime/node_modules"))
    argv = ("/var/lang/bin/node", "/var/runtime/index.mjs")
    assert launcher.launch("nodejs20.x", "/var/task", True) == Launch(
        None, argv, views, runtime_dir="/var/runtime",
        standby=Standby((*argv, "--standby"), views, node_reads_at_start))
    # Without a root of its own: host paths, the SDK's given to the client; no standby.
    unshown = launcher.launch("nodejs20.x", "/data/code", False)
    assert unshown.argv == (node, f"{CLIENT_DIR}/index.mjs", "/deps/nodejs/node_modules")
    assert unshown.runtime_dir == CLIENT_DIR
    assert unshown.standby is None


@pytest.mark.parametrize(("name", "read"), [
    ("NODE_OPTIONS", True), ("NODE_EXTRA_CA_CERTS", True), ("LD_LIBRARY_PATH", True),
    ("LANG", True), ("LC_ALL", True), ("UV_THREADPOOL_SIZE", True),
    ("NODE_PATH", False), ("TZ", False), ("PATH", False), ("AWS_REGION", False),
    ("GREETING", False),
])
def test_the_variables_node_reads_as_it_starts(name: str, read: bool) -> None:
    assert node_reads_at_start(name) is read


def test_nvm_installations_are_found_newest_first(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("NVM_DIR", str(tmp_path / "nvm"))
    for version in ("22.9.0", "22.10.1", "20.1.0"):
        fake_node(tmp_path / "nvm" / "versions" / "node" / f"v{version}", version)
    found = NodeRegistry().find("22")
    assert found is not None and found.version == "22.10.1"


def test_a_node_of_another_major_version_does_not_count(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("NVM_DIR", str(tmp_path / "nvm"))
    registry = NodeRegistry({"18": fake_node(tmp_path / "n", "20.0.0")})
    with pytest.raises(InterpreterNotFoundError, match="STRATO_NODE_18=/path/to/node"):
        NodeLauncher(registry).require("nodejs18.x")
