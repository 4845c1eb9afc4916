"""``nodejs<major>.x``: the host's node of that major version runs strato's Node.js runtime
client (``strato/runtimes/nodejs``).

As Lambda lays a Node.js runtime out: the installation's prefix at ``/var/lang`` (so node is
``/var/lang/bin/node``), the runtime client at ``/var/runtime``, and the AWS SDK for
JavaScript at ``/var/runtime/node_modules``. Where the sandbox builds no root of the
environment's own, node and the client run from their host paths, and the SDK's host path is
given to the client as its argument (it adds it to the module search paths).

Where views are shown, node can also boot ahead of its function (``Launch.standby``): the
client then waits for the environment's variables before it reads any (``standby.mjs``).
"""

from __future__ import annotations

import os
from pathlib import Path

from strato.domain.runtimes import node_major
from strato.sandbox.base import Standby
from strato.sandbox.launch import LANG_DIR, RUNTIME_DIR, Launch
from strato.sandbox.node_installations import NodeRegistry

#: strato's Node.js runtime client, shipped in the package.
CLIENT_DIR = str(Path(__file__).resolve().parent.parent / "runtimes" / "nodejs")
CLIENT_ENTRY = "index.mjs"
#: Where the SDK appears below the runtime directory (an empty directory of the client's).
SDK_DIR = "node_modules"
#: The client's argument that makes it a standby (``standby.mjs``).
STANDBY_FLAG = "--standby"
#: Variables node (or its loader, ICU, OpenSSL) reads as it starts, by prefix and by name;
#: NODE_PATH is not among them: the client sets the module paths after its environment
#: came (``index.mjs``).
_READ_AT_START_PREFIXES = ("NODE_", "UV_", "OPENSSL_", "SSL_CERT_", "LC_")
_READ_AT_START = frozenset({"LD_LIBRARY_PATH", "LD_PRELOAD", "LANG", "LANGUAGE", "TZDIR",
                            "ICU_DATA"})


def node_reads_at_start(name: str) -> bool:
    """Whether node reads the variable ``name`` as it starts, before the client runs."""
    if name == "NODE_PATH":
        return False
    return name in _READ_AT_START or name.startswith(_READ_AT_START_PREFIXES)


class NodeLauncher:
    """A ``RuntimeLauncher`` of the Node.js family. ``sdk`` is the host ``node_modules``
    holding the AWS SDK for JavaScript, None where it is not installed."""

    def __init__(self, nodes: NodeRegistry, sdk: str | None = None,
                 client_dir: str = CLIENT_DIR) -> None:
        self._nodes = nodes
        self._sdk = sdk
        self._client = client_dir

    def _major(self, runtime: str) -> str:
        major = node_major(runtime)
        if major is None:
            raise KeyError(runtime)
        return major

    def require(self, runtime: str) -> None:
        self._nodes.require(self._major(runtime))

    def launch(self, runtime: str, task_root: str, shown: bool) -> Launch:
        node = self._nodes.require(self._major(runtime))
        views = [(node.prefix, LANG_DIR), (self._client, RUNTIME_DIR)]
        if self._sdk is not None:
            views.append((self._sdk, f"{RUNTIME_DIR}/{SDK_DIR}"))
        standby = None
        if shown:
            argv: tuple[str, ...] = (os.path.join(LANG_DIR, node.relative_executable),
                                     f"{RUNTIME_DIR}/{CLIENT_ENTRY}")
            standby = Standby((*argv, STANDBY_FLAG), tuple(views), node_reads_at_start)
        else:
            argv = (node.executable, os.path.join(self._client, CLIENT_ENTRY),
                    *((self._sdk,) if self._sdk is not None else ()))
        return Launch(None, argv, tuple(views),
                      runtime_dir=RUNTIME_DIR if shown else self._client, standby=standby)

