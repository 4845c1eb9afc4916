"""SigV4 authentication and strato's credentials, against real servers.

Clients are boto3, the AWS CLI and raw ``http.client`` requests signed by botocore's signer
(``tests.support.signing``), so that a request can be tampered with after it was signed.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import CreateFunction, StratoServer, client_for, start_server, stop_server
from tests.support.signing import RawResponse, send, sign
from tests.support.waiting import wait_until

ECHO = {"app.py": "def handler(event, context):\n    return event\n"}
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)


def _error(call: Callable[[], object]) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return (response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"],
            response["Error"]["Message"])


def _raw_error(response: RawResponse) -> tuple[int, str, str]:
    return response.status, response.headers.get("x-amzn-errortype", ""), json.loads(response.body)["message"]


def _aws_cli(endpoint: str, key: str, secret: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret,
           "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("AWS_PROFILE", None)
    return subprocess.run(
        [str(Path(sys.executable).with_name("aws")), "--endpoint-url", endpoint, "--output", "json", *args],
        capture_output=True, text=True, env=env,
    )


# refused ------------------------------------------------------------------------------------
def test_a_wrong_secret_is_an_invalid_signature(strato: StratoServer) -> None:
    for service, call in (("lambda", "list_functions"), ("logs", "describe_log_streams")):
        client = client_for(strato.endpoint, service, secret_key="not-the-secret")
        kwargs = {"logGroupName": "/aws/lambda/x"} if service == "logs" else {}
        assert _error(lambda c=client, n=call, k=kwargs: getattr(c, n)(**k)) == (
            403, "InvalidSignatureException", MISMATCH)


def test_an_unknown_access_key_is_unrecognized(strato: StratoServer) -> None:
    client = client_for(strato.endpoint, access_key="AKIANOSUCHKEY0000000", secret_key="x")
    assert _error(client.get_account_settings) == (
        403, "UnrecognizedClientException", "The security token included in the request is invalid.")


def test_an_unsigned_request_is_missing_a_token(strato: StratoServer) -> None:
    response = send("GET", f"{strato.endpoint}/2015-03-31/functions")
    assert _raw_error(response) == (403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    assert response.headers["x-amzn-requestid"]


def test_a_body_changed_after_signing_is_refused(
    strato: StratoServer, create_function: CreateFunction, function_name: str
) -> None:
    create_function(ECHO)
    url = f"{strato.endpoint}/2015-03-31/functions/{function_name}/invocations"
    headers = sign("POST", url, b'{"amount": 100}')
    assert send("POST", url, b'{"amount": 100}', headers).body == b'{"amount": 100}'
    tampered = send("POST", url, b'{"amount": 900}', headers)
    assert _raw_error(tampered) == (403, "InvalidSignatureException", MISMATCH)


def test_an_expired_or_future_signature_is_refused(strato: StratoServer) -> None:
    url = f"{strato.endpoint}/2015-03-31/functions"
    now = datetime.now(UTC)
    expired = send("GET", url, headers=sign("GET", url, at=now - timedelta(minutes=10)))
    status, code, message = _raw_error(expired)
    assert (status, code) == (403, "InvalidSignatureException")
    assert re.fullmatch(r"Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z "
                        r"\(\d{8}T\d{6}Z - 5 min\.\)", message)
    future = send("GET", url, headers=sign("GET", url, at=now + timedelta(minutes=10)))
    status, code, message = _raw_error(future)
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith("Signature not yet current: ")


def test_a_signature_for_another_service_is_refused(strato: StratoServer) -> None:
    url = f"{strato.endpoint}/2015-03-31/functions"
    response = send("GET", url, headers=sign("GET", url, service="s3"))
    assert _raw_error(response) == (
        403, "InvalidSignatureException", "Credential should be scoped to correct service: 'lambda'. ")


def test_strato_routes_need_no_signature(strato: StratoServer) -> None:
    with urllib.request.urlopen(f"{strato.endpoint}/_strato/health") as health:
        assert json.loads(health.read()) == {"status": "ok"}


# accepted, however awkward ---------------------------------------------------------------
def test_a_function_arn_with_colons_in_the_path(
    lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    create_function(ECHO)
    arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
    assert lambda_client.get_function(FunctionName=arn)["Configuration"]["FunctionArn"] == arn
    assert lambda_client.get_function(FunctionName=f"{arn}:$LATEST")["Configuration"]["Version"] == "$LATEST"


def test_a_marker_with_reserved_characters(
    strato: StratoServer, lambda_client: Any, create_function: CreateFunction
) -> None:
    create_function(ECHO)
    page = lambda_client.list_functions(Marker="a/b+c=d e&f", MaxItems=5)
    assert page["ResponseMetadata"]["HTTPStatusCode"] == 200
    url = f"{strato.endpoint}/2015-03-31/functions?MaxItems=5&Marker=a%2Fb%2Bc%3Dd"
    assert send("GET", url, headers=sign("GET", url)).status == 200


def test_a_non_ascii_payload(lambda_client: Any, create_function: CreateFunction, function_name: str) -> None:
    create_function(ECHO)
    event = {"name": "Zoë — 東京 🌧", "emoji": "\u2603"}
    payload = json.dumps(event, ensure_ascii=False).encode()
    response = lambda_client.invoke(FunctionName=function_name, Payload=payload)
    assert response["StatusCode"] == 200 and json.loads(response["Payload"].read()) == event


def test_the_aws_cli_signs_as_strato_verifies(strato: StratoServer) -> None:
    accepted = _aws_cli(strato.endpoint, "test", "test", "lambda", "get-account-settings")
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout)["AccountLimit"]["ConcurrentExecutions"] > 0
    logs = _aws_cli(strato.endpoint, "test", "test", "logs", "describe-log-streams",
                    "--log-group-name", "/aws/lambda/none")
    assert logs.returncode == 0, logs.stderr
    refused = _aws_cli(strato.endpoint, "test", "wrong", "lambda", "list-functions")
    assert refused.returncode != 0 and "InvalidSignatureException" in refused.stderr


# modes and credentials ---------------------------------------------------------------------
def test_auth_none_serves_unsigned_requests_and_says_so(tmp_path: Path) -> None:
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        server = start_server(tmp_path / "data", "--auth", "none", stderr=stderr)
    try:
        with urllib.request.urlopen(f"{server.endpoint}/2016-08-19/account-settings/") as response:
            assert json.loads(response.read())["AccountLimit"]["ConcurrentExecutions"] > 0
        assert client_for(server.endpoint, secret_key="anything").list_functions()["Functions"] == []
    finally:
        stop_server(server)
    assert "UNAUTHENTICATED" in log.read_text()
    assert not (tmp_path / "data" / "credentials.json").exists()


def test_a_fresh_data_dir_shows_its_admin_key_once(tmp_path: Path) -> None:
    first_log, second_log = tmp_path / "first.txt", tmp_path / "second.txt"
    with first_log.open("w") as stderr:
        server = start_server(tmp_path / "data", admin=None, stderr=stderr)
    try:
        shown = first_log.read_text()
        key = re.search(r"AWS_ACCESS_KEY_ID=(\S+)", shown)
        secret = re.search(r"AWS_SECRET_ACCESS_KEY=(\S+)", shown)
        assert key and secret
        assert re.fullmatch(r"AKIA[A-Z0-9]{16}", key.group(1)) and len(secret.group(1)) == 40
        admin = client_for(server.endpoint, access_key=key.group(1), secret_key=secret.group(1))
        assert admin.list_functions()["Functions"] == []
        assert _error(client_for(server.endpoint).list_functions)[1] == "UnrecognizedClientException"
    finally:
        stop_server(server)
    with second_log.open("w") as stderr:
        server = start_server(tmp_path / "data", admin=None, stderr=stderr)
    try:
        assert "AWS_SECRET_ACCESS_KEY" not in second_log.read_text()
        again = client_for(server.endpoint, access_key=key.group(1), secret_key=secret.group(1))
        assert again.get_account_settings()["ResponseMetadata"]["HTTPStatusCode"] == 200
    finally:
        stop_server(server)
    assert stat.S_IMODE((tmp_path / "data" / "credentials.json").stat().st_mode) == 0o600


def test_credentials_cli_create_list_delete_against_a_running_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data)
    strato = [sys.executable, "-m", "strato.cli.main", "credentials"]
    try:
        created = subprocess.run([*strato, "create", "--name", "ci", "--data-dir", str(data)],
                                 check=True, capture_output=True, text=True).stdout
        values = dict(line.split("=", 1) for line in created.splitlines())
        key, secret = values["AWS_ACCESS_KEY_ID"], values["AWS_SECRET_ACCESS_KEY"]
        assert stat.S_IMODE((data / "credentials.json").stat().st_mode) == 0o600

        listed = subprocess.run([*strato, "list", "--data-dir", str(data)],
                                check=True, capture_output=True, text=True).stdout
        assert key in listed and "arn:aws:iam::000000000000:user/ci" in listed
        assert secret not in listed and "test" in listed

        client = client_for(server.endpoint, access_key=key, secret_key=secret)

        def accepted() -> bool:
            try:
                return client.list_functions()["ResponseMetadata"]["HTTPStatusCode"] == 200
            except ClientError as e:
                assert e.response["Error"]["Code"] == "UnrecognizedClientException"
                return False

        # The server re-reads its credentials about once a second.
        wait_until(accepted, "the new key to be accepted", timeout=10)
        subprocess.run([*strato, "delete", key, "--data-dir", str(data)], check=True, capture_output=True)
        wait_until(lambda: not accepted(), "the deleted key to be refused", timeout=10)
        assert _error(client.list_functions)[1] == "UnrecognizedClientException"
        missing = subprocess.run([*strato, "delete", key, "--data-dir", str(data)], capture_output=True, text=True)
        assert missing.returncode == 1
    finally:
        stop_server(server)
