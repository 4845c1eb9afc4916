"""The libraries strato gives every environment of a runtime, as Lambda includes its AWS SDKs.

``make`` (its ``runtime-deps`` target) installs them into a directory strato owns, by
default ``<sys.prefix>/strato-runtime-deps`` (``Settings.runtime_deps``)::

    python/                  boto3 and botocore, pinned, pure Python (one copy for every
                             python3.X runtime)
    nodejs/node_modules/     the AWS SDK for JavaScript

An environment finds them in its runtime directory, where Lambda's python3.8–3.10 runtimes
have boto3 and its Node.js runtimes their SDK (``/var/runtime``, ``/var/runtime/node_modules``):
in the namespaces tier a Python environment's ``/var/runtime`` is one read-only tree merging
strato's guest runtime with ``python/`` (``guest/confine.py``), and a Node.js environment's
is the Node.js client's, with ``nodejs/node_modules`` shown in it (``node_launcher.py``);
without a root of its own an environment gets their host paths on ``PYTHONPATH`` and
``NODE_PATH`` (``sandbox/lambda_paths.py``). They come after the function's own code in every search
path, so a function that bundles its own boto3 imports its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PYTHON_SUBDIR = "python"
NODEJS_SUBDIR = "nodejs/node_modules"


@dataclass(frozen=True)
class RuntimeDeps:
    """The directories found below the configured one (None: not installed)."""

    #: Where boto3 is: a directory for ``sys.path``.
    python: str | None = None
    #: A ``node_modules`` directory holding the AWS SDK for JavaScript.
    nodejs: str | None = None

    @property
    def trees(self) -> list[str]:
        """The directories merged into the built-in runtime's directory (namespaces tier):
        Python's packages. (A Node.js environment's runtime directory is the Node.js
        client's, with the SDK shown at its ``node_modules``: ``sandbox/node_launcher.py``.)"""
        return [self.python] if self.python else []


def find_runtime_deps(base: Path) -> RuntimeDeps:
    """What ``base`` holds (resolved: environments see the real directories); says once,
    here, what is missing. Never raises: without them functions just lack the SDK."""
    found: dict[str, str | None] = {}
    for name, subdir, sdk in (("python", PYTHON_SUBDIR, "boto3"),
                              ("nodejs", NODEJS_SUBDIR, "the AWS SDK for JavaScript")):
        path = (base / subdir).resolve()
        found[name] = str(path) if path.is_dir() else None
        if found[name] is None:
            log.warning("%s is not installed (no %s; `make runtime-deps` installs it): "
                        "functions can use only a copy of their own", sdk, base / subdir)
    return RuntimeDeps(python=found["python"], nodejs=found["nodejs"])
