"""The README's "Use it" examples, run as written and in order against a server.

The shell block runs in bash (``-e``: every command must succeed) in an empty directory, with
the project's ``.venv/bin`` first on PATH (what its ``. .venv/bin/activate`` line does; the dev
dependencies hold ``make client``'s boto3 and AWS CLI); then the Python block runs there. The
only change made to them is the server's address.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import start_server, stop_server

README = Path(__file__).resolve().parents[2] / "README.md"
ACTIVATE = ". .venv/bin/activate"


def _use_it_blocks() -> tuple[str, str]:
    text = README.read_text()
    section = text[text.index("## Use it"):text.index("## Authentication")]
    shell = re.search(r"```sh\n(.*?)```", section, re.S)
    python = re.search(r"```python\n(.*?)```", section, re.S)
    assert shell is not None and python is not None, "the README's Use it section lost a block"
    return shell.group(1), python.group(1)


def test_the_readmes_examples_run_in_order(tmp_path: Path) -> None:
    shell, python = _use_it_blocks()
    assert ACTIVATE in shell
    server = start_server(tmp_path / "data")
    try:
        shell = shell.replace("http://127.0.0.1:9000", server.endpoint).replace(ACTIVATE, "")
        python = python.replace("http://127.0.0.1:9000", server.endpoint)
        work = tmp_path / "work"
        work.mkdir()
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STRATO_"))}
        environment["PATH"] = f"{Path(sys.executable).parent}:{environment['PATH']}"
        environment["STRATO_ENDPOINT"] = server.endpoint
        ran = subprocess.run(["bash", "-e", "-c", shell], cwd=work, env=environment,
                             capture_output=True, text=True, timeout=120, check=False)
        assert ran.returncode == 0, ran.stderr
        assert json.loads((work / "out.json").read_text()) == {"got": {"a": 1}}
        # ``strato logs`` succeeded (bash -e); what it prints depends on when the log writer's
        # batch lands, which test_cli_and_restart.py waits for.
        assert '"LogResult"' in ran.stdout
        printed = subprocess.run([sys.executable, "-c", python], cwd=work, env=environment,
                                 capture_output=True, text=True, timeout=120, check=False)
        assert printed.returncode == 0, printed.stderr
        assert printed.stdout == "b'{\"got\": {\"a\": 1}}'\n"
    finally:
        stop_server(server)
