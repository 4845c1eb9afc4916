"""moto's server as an external SQS-compatible endpoint for tests.

``start_moto()`` runs ``python -m moto.server`` on a free port and returns once it answers
(readiness is its reply to ``/moto-api/``, polled, never a fixed sleep). Its queues belong to
moto's default account, ``MOTO_ACCOUNT``: another account than strato's, so strato reaches
them through ``--sqs-endpoint``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from typing import Any

import boto3

from tests.support.waiting import wait_until

MOTO_ACCOUNT = "123456789012"


@dataclass
class MotoServer:
    endpoint: str
    process: subprocess.Popen[bytes]

    def sqs(self) -> Any:
        return boto3.client("sqs", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_moto(timeout_s: float = 30.0) -> MotoServer:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = MotoServer(f"http://127.0.0.1:{port}", process)

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError("moto's server exited")
        try:
            with urllib.request.urlopen(f"{server.endpoint}/moto-api/", timeout=1):
                return True
        except OSError:
            return False

    try:
        wait_until(answers, "moto's server to answer", timeout=timeout_s)
    except (AssertionError, RuntimeError):
        server.stop()
        raise RuntimeError("moto's server did not start") from None
    return server
