"""Response streaming end to end: InvokeWithResponseStream read through boto3's event stream,
fed by runtimes that stream (a custom runtime speaking the Runtime API's streaming mode by
hand, Node.js's ``awslambda.streamifyResponse``, Python generator handlers)."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conftest import make_zip
from tests.e2e.conftest import ROLE, StratoServer, client_for, start_server, stop_server
from tests.e2e.hostile import unique
from tests.e2e.test_nodejs_runtime import available_runtime

#: A custom runtime that streams by hand: the event says what to stream (``chunks``, with
#: ``pause`` seconds between them), and how to end (``error``: trailers naming an error).
STREAMING_BOOTSTRAP = '''#!/bin/sh
exec /usr/bin/python3 -S -c '
import base64, json, os, socket, time, urllib.request
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
api = "http://" + host + ":" + port + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as answer:
        request_id = answer.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(answer.read())
    sock = socket.create_connection((host, int(port)))
    sock.sendall(("POST /2018-06-01/runtime/invocation/" + request_id + "/response HTTP/1.1\\r\\n"
                  "Host: runtime\\r\\nContent-Type: text/plain\\r\\n"
                  "Lambda-Runtime-Function-Response-Mode: streaming\\r\\n"
                  "Transfer-Encoding: chunked\\r\\n"
                  "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\\r\\n"
                  "\\r\\n").encode())
    chunks = [c.encode() for c in event.get("chunks", [])]
    if event.get("size"):
        chunks = [b"x" * 1048576] * (event["size"] // 1048576)
    for index, chunk in enumerate(chunks):
        if index and event.get("pause"):
            time.sleep(event["pause"])
        sock.sendall(b"%x\\r\\n" % len(chunk) + chunk + b"\\r\\n")
    trailers = b""
    if event.get("error"):
        body = json.dumps({"errorMessage": event["error"], "errorType": "Stream.Broke"})
        trailers = (b"Lambda-Runtime-Function-Error-Type: Stream.Broke\\r\\n"
                    b"Lambda-Runtime-Function-Error-Body: " + base64.b64encode(body.encode()) + b"\\r\\n")
    print("streamed", len(chunks), "chunks", flush=True)
    sock.sendall(b"0\\r\\n" + trailers + b"\\r\\n")
    answer = b""
    while b"\\r\\n\\r\\n" not in answer:
        data = sock.recv(65536)
        if not data:
            break
        answer += data
    sock.close()
'
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StratoServer]:
    started = start_server(tmp_path_factory.mktemp("streaming"), "--keep-alive", "60")
    yield started
    stop_server(started)


@pytest.fixture(scope="module")
def client(server: StratoServer) -> Any:
    return client_for(server.endpoint)


def _create(client: Any, files: dict[str, str], runtime: str, handler: str = "app.handler",
            **kwargs: Any) -> str:
    name = unique("stream")
    modes = {"bootstrap": 0o755} if "bootstrap" in files else None
    client.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                           Code={"ZipFile": make_zip(files, modes=modes)}, Timeout=30, **kwargs)
    client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return name


@pytest.fixture(scope="module")
def custom(client: Any) -> str:
    if not os.access("/usr/bin/python3", os.X_OK):
        pytest.skip("the streaming bootstrap runs /usr/bin/python3, which this host lacks")
    return _create(client, {"bootstrap": STREAMING_BOOTSTRAP}, "provided.al2023",
                   handler="function.handler")


def _read(response: dict[str, Any]) -> tuple[list[tuple[float, bytes]], dict[str, Any]]:
    """The chunks of a streamed answer with when each arrived, and its InvokeComplete."""
    chunks: list[tuple[float, bytes]] = []
    complete: dict[str, Any] = {}
    for event in response["EventStream"]:
        if "PayloadChunk" in event:
            chunks.append((time.monotonic(), event["PayloadChunk"]["Payload"]))
        elif "InvokeComplete" in event:
            complete = event["InvokeComplete"]
    return chunks, complete


def _stream(client: Any, name: str, event: Any, **kwargs: Any) -> tuple[
        dict[str, Any], list[tuple[float, bytes]], dict[str, Any]]:
    response = client.invoke_with_response_stream(
        FunctionName=name, Payload=json.dumps(event).encode(), **kwargs)
    chunks, complete = _read(response)
    return response, chunks, complete


def test_a_custom_runtime_streams_chunk_by_chunk(client: Any, custom: str) -> None:
    _stream(client, custom, {"chunks": ["warm"]})  # the cold start is not what is timed
    started = time.monotonic()
    response, chunks, complete = _stream(client, custom,
                                         {"chunks": ["first ", "second ", "third"], "pause": 0.4})
    finished = time.monotonic()
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert response["ResponseStreamContentType"] == "application/vnd.amazon.eventstream"
    assert b"".join(chunk for _, chunk in chunks) == b"first second third"
    assert complete == {}
    # The first chunk came while the function was still streaming (it pauses 0.8 s after).
    assert chunks[0][0] - started < 0.6 * (finished - started)
    assert finished - chunks[0][0] >= 0.6


def test_a_mid_stream_error_is_in_invoke_complete(client: Any, custom: str) -> None:
    _, chunks, complete = _stream(client, custom, {"chunks": ["partial"], "error": "it broke"})
    assert b"".join(chunk for _, chunk in chunks) == b"partial"
    assert complete["ErrorCode"] == "Stream.Broke"
    assert json.loads(complete["ErrorDetails"]) == {"errorMessage": "it broke",
                                                    "errorType": "Stream.Broke"}


def test_log_type_tail_gives_the_log_result(client: Any, custom: str) -> None:
    _, _, complete = _stream(client, custom, {"chunks": ["a", "b"]}, LogType="Tail")
    log = base64.b64decode(complete["LogResult"]).decode()
    assert "streamed 2 chunks" in log
    assert "REPORT RequestId:" in log


def test_over_twenty_megabytes_fails_the_stream(client: Any, custom: str) -> None:
    _, chunks, complete = _stream(client, custom, {"size": 21 * 1024 * 1024})
    assert sum(len(chunk) for _, chunk in chunks) <= 20 * 1024 * 1024
    assert complete["ErrorCode"] == "Function.ResponseSizeTooLarge"
    # The environment goes on serving.
    _, chunks, complete = _stream(client, custom, {"chunks": ["after"]})
    assert b"".join(chunk for _, chunk in chunks) == b"after" and complete == {}


def test_invoke_of_a_streaming_function_gets_the_whole_response(client: Any, custom: str) -> None:
    response = client.invoke(FunctionName=custom, Payload=b'{"chunks": ["one ", "two"]}')
    assert response["Payload"].read() == b"one two"
    assert "FunctionError" not in response


def test_a_buffered_function_is_one_payload_chunk(client: Any) -> None:
    name = _create(client, {"app.py": "def handler(event, context):\n    return event\n"},
                   "python3.11")
    _, chunks, complete = _stream(client, name, {"hello": "world"})
    assert [chunk for _, chunk in chunks] == [b'{"hello": "world"}']
    assert complete == {}
    failing = _create(client, {"app.py": "def handler(event, context):\n    raise KeyError('k')\n"},
                      "python3.11")
    _, chunks, complete = _stream(client, failing, {})
    assert chunks == []
    assert complete["ErrorCode"] == "KeyError"
    assert json.loads(complete["ErrorDetails"])["errorType"] == "KeyError"


def test_bad_requests_get_aws_errors(client: Any) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException) as missing:
        client.invoke_with_response_stream(FunctionName=unique("missing"), Payload=b"{}")
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    bad = client_for(client.meta.endpoint_url, parameter_validation=False)
    with pytest.raises(bad.exceptions.ClientError) as invalid:
        bad.invoke_with_response_stream(FunctionName="no:such:thing:at:all:x", Payload=b"{}",
                                        InvocationType="Event")
    assert invalid.value.response["Error"]["Code"] == "ValidationException"


GENERATOR_HANDLER = '''
import time

def handler(event, context):
    if event.get("plain"):
        return {"plain": True}
    return chunks(event)

def chunks(event):
    print("streaming for", event.get("who"))
    yield "first "
    time.sleep(event.get("pause", 0))
    yield b"second"
    if event.get("fail"):
        raise ValueError("no third chunk")
    if event.get("bad"):
        yield 3
'''


@pytest.fixture(scope="module")
def generator(client: Any) -> str:
    return _create(client, {"app.py": GENERATOR_HANDLER}, "python3.11")


def test_a_python_generator_handler_streams(client: Any, generator: str) -> None:
    _stream(client, generator, {})  # the cold start is not what is timed
    _, chunks, complete = _stream(client, generator, {"pause": 0.6, "who": "me"},
                                  LogType="Tail")
    finished = time.monotonic()
    assert b"".join(chunk for _, chunk in chunks) == b"first second"
    assert finished - chunks[0][0] >= 0.5  # the first chunk came before the function slept
    assert "streaming for me" in base64.b64decode(complete["LogResult"]).decode()
    assert set(complete) == {"LogResult"}


def test_a_python_generator_that_raises_ends_the_stream_with_its_error(
        client: Any, generator: str) -> None:
    _, chunks, complete = _stream(client, generator, {"fail": True})
    assert b"".join(chunk for _, chunk in chunks) == b"first second"
    assert complete["ErrorCode"] == "ValueError"
    assert json.loads(complete["ErrorDetails"])["errorMessage"] == "no third chunk"
    _, _, complete = _stream(client, generator, {"bad": True})
    assert complete["ErrorCode"] == "Runtime.MarshalError"


def test_a_python_generator_handler_invoked_as_usual_returns_the_whole_body(
        client: Any, generator: str) -> None:
    response = client.invoke(FunctionName=generator, Payload=b"{}")
    assert response["Payload"].read() == b"first second"
    plain = client.invoke(FunctionName=generator, Payload=b'{"plain": true}')
    assert json.loads(plain["Payload"].read()) == {"plain": True}


NODE_STREAMING = '''
const { pipeline } = require('node:stream/promises');
const { Readable } = require('node:stream');

exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  if (event.http) {
    responseStream = awslambda.HttpResponseStream.from(responseStream, {
      statusCode: 201, headers: { 'x-made-by': 'node' } });
  }
  console.log('streaming', context.awsRequestId);
  responseStream.write('first ');
  await new Promise((resolve) => setTimeout(resolve, event.pause || 0));
  if (event.fail) throw new TypeError('gave up after the first chunk');
  await pipeline(Readable.from(['second ', 'third']), responseStream);
});
'''


@pytest.fixture(scope="module")
def node(client: Any) -> str:
    return _create(client, {"index.js": NODE_STREAMING}, available_runtime(),
                   handler="index.handler")


def test_node_streamify_response_streams(client: Any, node: str) -> None:
    _stream(client, node, {})  # the cold start is not what is timed
    _, chunks, complete = _stream(client, node, {"pause": 600}, LogType="Tail")
    finished = time.monotonic()
    assert b"".join(chunk for _, chunk in chunks) == b"first second third"
    assert finished - chunks[0][0] >= 0.5  # the first chunk came before the function slept
    assert "streaming" in base64.b64decode(complete["LogResult"]).decode()


def test_node_http_response_stream_sends_its_prelude(client: Any, node: str) -> None:
    _, chunks, complete = _stream(client, node, {"http": True})
    body = b"".join(chunk for _, chunk in chunks)
    prelude, _, rest = body.partition(b"\0" * 8)
    assert json.loads(prelude) == {"statusCode": 201, "headers": {"x-made-by": "node"}}
    assert rest == b"first second third" and complete == {}


def test_node_error_mid_stream_is_in_invoke_complete(client: Any, node: str) -> None:
    _, chunks, complete = _stream(client, node, {"fail": True})
    assert b"".join(chunk for _, chunk in chunks) == b"first "
    assert complete["ErrorCode"] == "TypeError"
    assert json.loads(complete["ErrorDetails"])["errorMessage"] == "gave up after the first chunk"
    # The environment goes on serving.
    _, chunks, complete = _stream(client, node, {})
    assert b"".join(chunk for _, chunk in chunks) == b"first second third" and complete == {}


def _public_stream_url(client: Any, name: str) -> str:
    url = client.create_function_url_config(FunctionName=name, AuthType="NONE",
                                            InvokeMode="RESPONSE_STREAM")["FunctionUrl"]
    client.add_permission(FunctionName=name, StatementId="public", Principal="*",
                          Action="lambda:InvokeFunctionUrl", FunctionUrlAuthType="NONE")
    return str(url)


def _fetch(url: str) -> tuple[requests.Response, list[tuple[float, bytes]], float]:
    """A streamed URL answer read chunk by chunk, with when each arrived and when it ended."""
    response = requests.get(url, stream=True, timeout=60)
    chunks = [(time.monotonic(), chunk) for chunk in response.iter_content(chunk_size=None)]
    return response, chunks, time.monotonic()


def test_a_response_stream_url_streams_the_http_response_stream(client: Any) -> None:
    name = _create(client, {"index.js": NODE_STREAMING.replace("event.http", "true")},
                   available_runtime(), handler="index.handler")
    url = _public_stream_url(client, name)
    response, chunks, _ = _fetch(url)
    assert response.status_code == 201
    assert response.headers["x-made-by"] == "node"
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert b"".join(chunk for _, chunk in chunks) == b"first second third"


SLOW_STREAM = """import time

def handler(event, context):
    yield "first"
    time.sleep(0.6)
    yield "second"
"""


def test_url_chunks_arrive_while_the_function_runs(client: Any) -> None:
    name = _create(client, {"app.py": SLOW_STREAM}, "python3.11")
    url = _public_stream_url(client, name)
    _fetch(url)  # the cold start is not what is timed
    response, chunks, finished = _fetch(url)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert b"".join(chunk for _, chunk in chunks) == b"firstsecond"
    assert chunks[0][1].startswith(b"first")
    assert finished - chunks[0][0] >= 0.5  # the first chunk came before the function slept


def test_a_buffered_function_behind_a_response_stream_url_answers_whole(client: Any) -> None:
    name = _create(client, {"app.py": "def handler(event, context):\n"
                                      "    return {'statusCode': 202, 'body': 'whole'}\n"},
                   "python3.11")
    url = _public_stream_url(client, name)
    response = requests.get(url, timeout=60)
    assert response.status_code == 202 and response.text == "whole"
