"""What a new user meets in the first hour: the ``strato`` command's errors, a service strato
does not offer, keys created from another directory, a taken port, the README's examples.

Every command here is the installed ``strato`` script (or the AWS CLI) run as a process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import StratoServer, client_for

STRATO = str(Path(sys.executable).parent / "strato")
ADMIN_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
             "AWS_DEFAULT_REGION": "us-east-1"}


def _run(*command: str, env: dict[str, str] | None = None, cwd: Path | None = None,
         timeout: float = 60) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("AWS_", "STRATO_"))}
    environment.update(env or {})
    return subprocess.run(command, capture_output=True, text=True, env=environment, cwd=cwd,
                          timeout=timeout, check=False)


def test_a_service_strato_does_not_offer_is_named(strato: StratoServer) -> None:
    """The AWS CLI's CloudWatch (JSON protocol, signed for ``monitoring``) and STS (query
    protocol) are told that strato does not offer them, not that their signature is wrong."""
    done = _run(sys.executable, "-m", "awscli", "--endpoint-url", strato.endpoint,
                "cloudwatch", "list-metrics", env=ADMIN_ENV)
    assert done.returncode != 0
    assert "UnsupportedOperationException" in done.stderr, done.stderr
    assert "does not offer the 'monitoring' service" in done.stderr, done.stderr
    assert "InvalidSignature" not in done.stderr
    with pytest.raises(ClientError) as caught:
        client_for(strato.endpoint, "sts").get_caller_identity()
    error = caught.value.response["Error"]
    assert "does not offer the 'sts' service" in error["Message"], error
