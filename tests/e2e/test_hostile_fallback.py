"""The fallback tier as an operator gets it, without the test-only help ``serve_tier`` gives
the other hostile tests: the default python3.11 and the data dir's modes as strato makes them.

A fallback environment reaches its interpreter and its ``TMPDIR`` by their host paths, as its
own uid: every directory on the way must be traversable by that uid, or the function cannot
import a module the zygote did not import already, or write a temporary file.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.hostile import TierServer, create, invoke, serve_tier, unique


@pytest.fixture(scope="module")
def fallback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TierServer]:
    with serve_tier("fallback", tmp_path_factory, workarounds=False) as server:
        yield server


def _interpreter_hidden_from_other_users() -> bool:
    real = Path(os.path.realpath(sys.executable))
    return any(not parent.stat().st_mode & 0o001 for parent in real.parents)


@pytest.mark.xfail(_interpreter_hidden_from_other_users(), strict=True,
                   reason="the interpreter lives below a directory other users cannot traverse "
                          "(pyenv under /root): fallback-tier environments, running as their own "
                          "uid on the host's file system, cannot import what the zygote did not "
                          "(docs/security.md; strato warns at start)")
def test_functions_import_the_standard_library(fallback: TierServer) -> None:
    name = unique("imports")
    create(fallback.client, name, {"app.py": (
        "import socket\n"
        "def handler(event, context):\n"
        "    import decimal, unicodedata\n"
        "    socket.getaddrinfo('localhost', 80)  # encodes the name with encodings.idna\n"
        "    return str(decimal.Decimal('1.5') + 1) + unicodedata.name('a')\n")})
    response, payload = invoke(fallback.client, name)
    assert "FunctionError" not in response, payload
    assert payload == "2.5LATIN SMALL LETTER A"


def test_functions_write_their_temporary_directory(fallback: TierServer) -> None:
    name = unique("tmpdir")
    create(fallback.client, name, {"app.py": (
        "import os\n"
        "def handler(event, context):\n"
        "    path = os.path.join(os.environ['TMPDIR'], 'scratch')\n"
        "    with open(path, 'w') as handle:\n"
        "        handle.write('ok')\n"
        "    with open(path) as handle:\n"
        "        return handle.read()\n")})
    response, payload = invoke(fallback.client, name)
    assert "FunctionError" not in response, payload
    assert payload == "ok"
