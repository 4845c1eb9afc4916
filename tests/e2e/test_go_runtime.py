"""Any language through ``provided.al2023``: a Go ``bootstrap`` built from source here
(standard library only, static), speaking the Runtime API by hand, in both sandbox tiers.

It echoes each event with the context the platform handed it in headers (request id,
deadline, invoked function ARN); an event with ``error`` is posted to
``/invocation/{id}/error`` as aws-lambda-go posts ``errors.New("Error: " + msg)`` (AWS's
recording ``rt.go.uncaught_error``); with ``FAIL_INIT`` set, INIT fails through
``/init/error``. Needs ``go`` (Debian's golang-go, which ``make test`` installs): skipped
with the reason where it is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_zip
from tests.e2e.conftest import ROLE
from tests.e2e.hostile import TierServer, invoke, serve_tier, unique

RECORDED: dict[str, Any] = json.loads(
    (Path(__file__).parent / "aws_go_expectations.json").read_text())["expectations"]
TIMEOUT_S = 30

BOOTSTRAP_GO = r"""package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
)

type lambdaError struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bootstrap:", err)
	os.Exit(1)
}

func post(url string, errorType string, document any) {
	body, err := json.Marshal(document)
	if err != nil {
		fail(err)
	}
	request, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		fail(err)
	}
	request.Header.Set("Content-Type", "application/json")
	if errorType != "" {
		request.Header.Set("Lambda-Runtime-Function-Error-Type", errorType)
	}
	response, err := http.DefaultClient.Do(request)
	if err != nil {
		fail(err)
	}
	io.Copy(io.Discard, response.Body)
	response.Body.Close()
	if response.StatusCode != http.StatusAccepted {
		fail(fmt.Errorf("POST %s: %s", url, response.Status))
	}
}

func main() {
	api := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime"
	if message := os.Getenv("FAIL_INIT"); message != "" {
		post(api+"/init/error", "errorString", lambdaError{"Error: " + message, "errorString"})
		os.Exit(1)
	}
	for {
		response, err := http.Get(api + "/invocation/next")
		if err != nil {
			fail(err)
		}
		body, err := io.ReadAll(response.Body)
		response.Body.Close()
		if err != nil {
			fail(err)
		}
		id := response.Header.Get("Lambda-Runtime-Aws-Request-Id")
		var event map[string]any
		if err := json.Unmarshal(body, &event); err != nil {
			post(api+"/invocation/"+id+"/error", "errorString", lambdaError{err.Error(), "errorString"})
			continue
		}
		if message, ok := event["error"].(string); ok {
			post(api+"/invocation/"+id+"/error", "errorString", lambdaError{"Error: " + message, "errorString"})
			continue
		}
		fmt.Println("echoing", id)
		post(api+"/invocation/"+id+"/response", "", map[string]any{
			"event":                event,
			"request_id":           id,
			"deadline_ms":          response.Header.Get("Lambda-Runtime-Deadline-Ms"),
			"invoked_function_arn": response.Header.Get("Lambda-Runtime-Invoked-Function-Arn"),
		})
	}
}
"""


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The Go bootstrap, built from source in a temporary directory (its build cache and
    module path there too): a static binary (no cgo)."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("go is not installed (Debian's golang-go; `make test` installs it)")
    work = tmp_path_factory.mktemp("go-bootstrap")
    (work / "main.go").write_text(BOOTSTRAP_GO)
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": str(work),
                   "GOCACHE": str(work / "cache"), "GOPATH": str(work / "gopath"),
                   "CGO_ENABLED": "0", "GOFLAGS": "-trimpath", "GO111MODULE": "on",
                   "GOTOOLCHAIN": "local", "GOPROXY": "off"}
    built = subprocess.run([go, "build", "-o", str(work / "bootstrap"), "main.go"], cwd=work,
                           env=environment, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    return (work / "bootstrap").read_bytes()


@pytest.fixture(scope="module", params=["namespaces", "fallback"])
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[TierServer]:
    with serve_tier(request.param, tmp_path_factory) as tier_server:
        yield tier_server


def _create(server: TierServer, bootstrap: bytes, **kwargs: Any) -> dict[str, Any]:
    name = unique("go")
    created: dict[str, Any] = server.client.create_function(
        FunctionName=name, Runtime="provided.al2023", Role=ROLE, Handler="bootstrap",
        Code={"ZipFile": make_zip({"bootstrap": bootstrap}, modes={"bootstrap": 0o755})},
        Timeout=TIMEOUT_S, **kwargs)
    server.client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return created


def test_the_event_comes_back_with_the_context_headers(server: TierServer,
                                                       bootstrap: bytes) -> None:
    created = _create(server, bootstrap)
    event = {"greeting": "hello", "numbers": [1, 2, 3], "nested": {"ok": True}}
    before_ms = time.time() * 1000
    response, payload = invoke(server.client, created["FunctionName"], event)
    assert "FunctionError" not in response, payload
    assert payload["event"] == event
    assert payload["request_id"] == response["ResponseMetadata"]["RequestId"]
    assert payload["invoked_function_arn"] == created["FunctionArn"]
    deadline_ms = int(payload["deadline_ms"])
    assert before_ms < deadline_ms <= time.time() * 1000 + TIMEOUT_S * 1000


def test_an_error_has_the_shape_aws_recorded(server: TierServer, bootstrap: bytes) -> None:
    created = _create(server, bootstrap)
    response, payload = invoke(server.client, created["FunctionName"],
                               {"error": "some_error_msg"})
    expected = RECORDED["rt.go.uncaught_error"]["value"]
    assert response["StatusCode"] == expected["StatusCode"]
    assert response["FunctionError"] == expected["FunctionError"]
    assert response["ExecutedVersion"] == expected["ExecutedVersion"]
    assert payload == expected["Payload"]
    # The environment serves the next event after an error.
    assert invoke(server.client, created["FunctionName"], {"again": 1})[1]["event"] == {"again": 1}


def test_an_init_error_fails_the_invocation(server: TierServer, bootstrap: bytes) -> None:
    created = _create(server, bootstrap, Environment={"Variables": {"FAIL_INIT": "no config"}})
    response, payload = invoke(server.client, created["FunctionName"], {})
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert payload == {"errorMessage": "Error: no config", "errorType": "errorString"}
