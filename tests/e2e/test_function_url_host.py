"""Function URLs under ``--url-host``: each URL is a host name below the operator's domain
(``http://<url id>.<domain>:<port>/``), served by a real server and fetched with curl, which
``--resolve`` points at the server as the operator's wildcard DNS would."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.conftest import make_zip
from tests.e2e.conftest import ROLE, StratoServer, client_for, start_server, stop_server

DOMAIN = "fn.example.test"
ECHO = '''
import json

def handler(event, context):
    return {"statusCode": 200, "body": json.dumps(
        {"rawPath": event["rawPath"], "rawQueryString": event["rawQueryString"],
         "domainName": event["requestContext"]["domainName"],
         "domainPrefix": event["requestContext"]["domainPrefix"]})}
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StratoServer]:
    started = start_server(tmp_path_factory.mktemp("url-host"), "--url-host", DOMAIN)
    try:
        yield started
    finally:
        stop_server(started)


def _curl(url: str, port: int) -> tuple[int, bytes]:
    host = urlsplit(url).hostname
    done = subprocess.run(["curl", "-sS", "--resolve", f"{host}:{port}:127.0.0.1",
                           "-o", "-", "-w", "\n%{http_code}", url],
                          check=True, capture_output=True, timeout=60)
    body, _, status = done.stdout.rpartition(b"\n")
    return int(status), body


def test_a_url_is_a_host_name_below_the_domain_and_the_path_form_still_works(
        server: StratoServer) -> None:
    admin = client_for(server.endpoint)
    admin.create_function(FunctionName="hosted", Runtime="python3.11", Role=ROLE,
                          Handler="app.handler", Code={"ZipFile": make_zip({"app.py": ECHO})})
    admin.get_waiter("function_active_v2").wait(FunctionName="hosted",
                                                WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    url = admin.create_function_url_config(FunctionName="hosted", AuthType="NONE")["FunctionUrl"]
    admin.add_permission(FunctionName="hosted", StatementId="public", Principal="*",
                         Action="lambda:InvokeFunctionUrl", FunctionUrlAuthType="NONE")
    port = int(server.endpoint.rsplit(":", 1)[1])
    url_id = urlsplit(url).hostname.split(".")[0]
    assert url == f"http://{url_id}.{DOMAIN}:{port}/"

    status, body = _curl(f"{url}a/b?x=1&x=2", port)
    assert status == 200, body
    assert json.loads(body) == {"rawPath": "/a/b", "rawQueryString": "x=1&x=2",
                                "domainName": f"{url_id}.{DOMAIN}:{port}",
                                "domainPrefix": url_id}
    # The same URL by path below the server's own address, for clients without the DNS name.
    status, body = _curl(f"{server.endpoint}/lambda-url/{url_id}/c?y", port)
    assert status == 200, body
    assert json.loads(body)["rawPath"] == "/c" and json.loads(body)["rawQueryString"] == "y"
