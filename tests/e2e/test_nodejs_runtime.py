"""The Node.js runtimes (nodejs18.x, nodejs20.x, nodejs22.x), driven with boto3 against a real
server of each sandbox tier: handler styles, the context, errors, console lines, INIT errors,
timeouts, and what AWS recorded of its own Node.js runtimes
(``/work/shared/aws-expectations/aws_expectations_runtimes.json``, copied for these tests
into ``aws_runtimes_expectations.json``)."""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strato.sandbox.node_installations import NodeRegistry
from tests.conftest import make_zip
from tests.e2e.conftest import ROLE, client_for, start_server, stop_server
from tests.e2e.hostile import TIERS, TierServer, invoke, serve_tier, unique
from tests.e2e.recordings import ACCOUNT, REGION

RECORDINGS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "aws_runtimes_expectations.json").read_text())["expectations"]
_NODES = NodeRegistry()
RUNTIMES = ("nodejs18.x", "nodejs20.x", "nodejs22.x")
_ISO_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def available_runtime() -> str:
    """The newest nodejs runtime this host has a node for (skips where it has none)."""
    for runtime in reversed(RUNTIMES):
        if _NODES.find(runtime.removeprefix("nodejs").removesuffix(".x")) is not None:
            return runtime
    pytest.skip("no node of a supported major version on this host")


@pytest.fixture(scope="module", params=TIERS)
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[TierServer]:
    with serve_tier(request.param, tmp_path_factory) as tier_server:
        yield tier_server


def create_node(server: TierServer, files: dict[str, str], *, handler: str = "index.handler",
                runtime: str | None = None, **kwargs: Any) -> str:
    name = unique("node")
    server.client.create_function(
        FunctionName=name, Runtime=runtime or available_runtime(), Role=ROLE, Handler=handler,
        Code={"ZipFile": make_zip(files)}, **kwargs)
    server.client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return name


def tail(response: dict[str, Any]) -> str:
    return base64.b64decode(response["LogResult"]).decode()


HANDLER_STYLES: dict[str, tuple[str, dict[str, str]]] = {
    "commonjs-async": ("index.handler", {
        "index.js": "exports.handler = async (event) => ({style: 'cjs', got: event});\n"}),
    "commonjs-callback": ("index.handler", {
        "index.js": "exports.handler = (event, context, callback) => "
                    "{ callback(null, {style: 'callback', got: event}); };\n"}),
    "es-module-mjs": ("index.handler", {
        "index.mjs": "export const handler = async (event) => ({style: 'mjs', got: event});\n"}),
    "es-module-type-module": ("index.handler", {
        "package.json": '{"type": "module"}',
        "index.js": "const style = await Promise.resolve('type-module');\n"
                    "export async function handler(event) { return {style, got: event}; }\n"}),
    "subfolder": ("src/handlers/app.main", {
        "src/handlers/app.js": "const {style} = require('../lib/style.js');\n"
                               "module.exports.main = async (event) => ({style, got: event});\n",
        "src/lib/style.js": "exports.style = 'subfolder';\n"}),
    "commonjs-cjs-extension": ("index.handler", {
        "package.json": '{"type": "module"}',
        "index.cjs": "exports.handler = async (event) => ({style: 'cjs-ext', got: event});\n"}),
}


STYLE_NAMES = {"commonjs-async": "cjs", "commonjs-callback": "callback", "es-module-mjs": "mjs",
               "es-module-type-module": "type-module", "subfolder": "subfolder",
               "commonjs-cjs-extension": "cjs-ext"}


@pytest.mark.parametrize("style", sorted(HANDLER_STYLES))
def test_every_handler_style_runs(server: TierServer, style: str) -> None:
    handler, files = HANDLER_STYLES[style]
    name = create_node(server, files, handler=handler)
    response, payload = invoke(server.client, name, {"n": 1})
    assert "FunctionError" not in response, payload
    assert payload == {"style": STYLE_NAMES[style], "got": {"n": 1}}


PENDING_TIMER = """
exports.handler = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = event.wait;
  setTimeout(() => console.log('timer fired'), 300);
  callback(null, 'done');
};
"""


def test_a_callback_waits_for_the_empty_event_loop_unless_told_not_to(server: TierServer) -> None:
    name = create_node(server, {"index.js": PENDING_TIMER})
    response, payload = invoke(server.client, name, {"wait": True}, LogType="Tail")
    assert payload == "done"
    assert "\tINFO\ttimer fired" in tail(response)
    response, payload = invoke(server.client, name, {"wait": False}, LogType="Tail")
    assert payload == "done"
    assert "timer fired" not in tail(response)


CONTEXT = """
exports.handler = async (event, context) => ({
  awsRequestId: context.awsRequestId,
  functionName: context.functionName,
  functionVersion: context.functionVersion,
  invokedFunctionArn: context.invokedFunctionArn,
  memoryLimitInMB: context.memoryLimitInMB,
  memoryType: typeof context.memoryLimitInMB,
  logGroupName: context.logGroupName,
  logStreamName: context.logStreamName,
  remaining: context.getRemainingTimeInMillis(),
  waits: context.callbackWaitsForEmptyEventLoop,
});
"""


def test_the_context_object(server: TierServer) -> None:
    name = create_node(server, {"index.js": CONTEXT}, Timeout=5)
    response, ctx = invoke(server.client, name)
    assert re.fullmatch(_UUID, ctx["awsRequestId"])
    assert ctx["functionName"] == name
    assert ctx["functionVersion"] == "$LATEST"
    assert ctx["invokedFunctionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    expected = RECORDINGS["rt.node.context_memory_limit"]["value"]
    assert {"memoryLimitInMB": ctx["memoryLimitInMB"], "type": ctx["memoryType"]} == expected
    assert ctx["logGroupName"] == f"/aws/lambda/{name}"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", ctx["logStreamName"])
    assert 0 < ctx["remaining"] <= 5000
    assert ctx["waits"] is True


INTROSPECTION = """
exports.handler = async (event, context) => ({
  ctx: {
    aws_request_id: context.awsRequestId,
    function_name: context.functionName,
    function_version: context.functionVersion,
    invoked_function_arn: context.invokedFunctionArn,
    log_group_name: context.logGroupName,
    log_stream_name: context.logStreamName,
    remaining_time_in_millis: context.getRemainingTimeInMillis(),
  },
  environment: process.env,
  packages: [],
  node: process.versions.node,
});
"""
#: Recorded variables that other parts of the platform provide (role credentials, X-Ray, a
#: shell's) or that Lambda's own image sets (its CA bundle): not the runtime's to give.
_NOT_THE_RUNTIMES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                     "AWS_XRAY_CONTEXT_MISSING", "AWS_XRAY_DAEMON_ADDRESS", "_AWS_XRAY_DAEMON_ADDRESS",
                     "_AWS_XRAY_DAEMON_PORT", "_X_AMZN_TRACE_ID", "NODE_EXTRA_CA_CERTS", "SHLVL",
                     "PWD", "AWS_LAMBDA_RUNTIME_API"}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_introspection_matches_what_aws_recorded(server: TierServer, runtime: str) -> None:
    major = runtime.removeprefix("nodejs").removesuffix(".x")
    if _NODES.find(major) is None:
        pytest.skip(f"no node {major} on this host")
    name = create_node(server, {"index.js": INTROSPECTION}, runtime=runtime, MemorySize=1024,
                       Environment={"Variables": {"TEST_KEY": "TEST_VAL"}})
    for qualifier, key in ((None, "introspection"), ("$LATEST", "introspection_qualified")):
        kwargs = {"Qualifier": qualifier} if qualifier else {}
        _, got = invoke(server.client, name, **kwargs)
        assert got["node"].split(".")[0] == major
        expected = json.loads(json.dumps(RECORDINGS[f"rt.{runtime}.{key}"]["value"])
                              .replace("<<function_name>>", name).replace("<<region>>", REGION)
                              .replace("<<account>>", ACCOUNT))
        ctx = got["ctx"]
        assert re.fullmatch(_UUID, ctx.pop("aws_request_id"))
        assert isinstance(ctx.pop("remaining_time_in_millis"), int)
        stream = ctx.pop("log_stream_name")
        for field in ("aws_request_id", "remaining_time_in_millis", "log_stream_name"):
            expected["ctx"].pop(field)
        assert ctx == expected["ctx"]
        environment = got["environment"]
        assert environment["AWS_LAMBDA_LOG_STREAM_NAME"] == stream
        recorded_env = {k: v for k, v in expected["environment"].items()
                        if k not in _NOT_THE_RUNTIMES and k != "AWS_LAMBDA_LOG_STREAM_NAME"}
        if server.tier != "namespaces":
            # Without a root of its own an environment has the host's paths, not Lambda's:
            # NODE_PATH is the SDK's, the runtime client's and the code's host paths.
            for variable in ("PATH", "LD_LIBRARY_PATH", "LAMBDA_RUNTIME_DIR", "LAMBDA_TASK_ROOT"):
                recorded_env.pop(variable)
            recorded_env.pop("NODE_PATH")
            assert environment["NODE_PATH"].split(":")[1:] == [
                environment["LAMBDA_RUNTIME_DIR"], environment["LAMBDA_TASK_ROOT"]]
            assert environment["LAMBDA_RUNTIME_DIR"].endswith("/runtimes/nodejs")
        assert {k: environment.get(k) for k in recorded_env} == recorded_env
        # strato's own additions: where the SDK reaches strato (the role's credentials are
        # among the recorded variables, left out of the comparison above); in the fallback
        # tier, the environment's own /tmp and home (its uid has no passwd entry there).
        assert set(environment) - set(expected["environment"]) <= {
            "AWS_ENDPOINT_URL", *(("TMPDIR", "HOME") if server.tier == "fallback" else ())}


def test_errors_have_lambdas_shape(server: TierServer) -> None:
    name = create_node(server, {"index.js": (
        "exports.handler = async (event) => {\n"
        "  if (event.kind === 'string') throw 'a plain string';\n"
        "  throw Error(`Error: ${event.error_msg}`);\n"
        "};\n")})
    response, payload = invoke(server.client, name, {"error_msg": "some_error_msg"})
    recorded = RECORDINGS[f"rt.{available_runtime()}.uncaught_error"]["value"]
    assert response["FunctionError"] == recorded["FunctionError"]
    assert response["StatusCode"] == recorded["StatusCode"]
    assert sorted(payload) == RECORDINGS["rt.node.error_shape"]["value"]["keys"]
    assert {k: payload[k] for k in ("errorType", "errorMessage")} == {
        k: recorded["Payload"][k] for k in ("errorType", "errorMessage")}
    assert payload["trace"][0] == "Error: Error: some_error_msg"
    assert any("/index.js:3" in line for line in payload["trace"])
    _, payload = invoke(server.client, name, {"kind": "string"})
    assert payload == {"errorType": "string", "errorMessage": "a plain string", "trace": []}


def test_an_unhandled_rejection_fails_the_invocation_and_the_runtime_restarts(
        server: TierServer) -> None:
    name = create_node(server, {"index.js": (
        "let counter = 0;\n"
        "exports.handler = async (event) => {\n"
        "  if (event.reject) { Promise.reject(new Error('nobody catches this'));\n"
        "    await new Promise((resolve) => setTimeout(resolve, 1000)); }\n"
        "  return {counter: counter++};\n"
        "};\n")})
    assert invoke(server.client, name, {})[1] == RECORDINGS["rt.node.warm_counter.first"]["value"]["Payload"]
    assert invoke(server.client, name, {})[1] == RECORDINGS["rt.node.warm_counter.second"]["value"]["Payload"]
    response, payload = invoke(server.client, name, {"reject": True})
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == RECORDINGS["rt.node.unhandled_rejection"]["value"]["errorType"]
    assert payload["errorMessage"] == "Error: nobody catches this"
    # A new runtime process: the module's state starts over.
    assert invoke(server.client, name, {})[1] == {"counter": 0}


def test_no_return_value_is_null(server: TierServer) -> None:
    name = create_node(server, {"index.js": "exports.handler = async () => {};\n"})
    response = server.client.invoke(FunctionName=name, Payload=b"{}")
    recorded = RECORDINGS["rt.node.no_return"]["value"]
    assert response["Payload"].read().decode() == recorded["Payload"]
    assert response["ExecutedVersion"] == recorded["ExecutedVersion"]


CONSOLE = """
exports.handler = async (event) => {
  console.log(event);
  console.info('info', 1);
  console.warn('warn');
  console.error('error');
  console.debug('debug');
  console.log('two\\nlines');
  return 'ok';
};
"""


def test_console_lines_in_the_log_and_the_tail(server: TierServer) -> None:
    name = create_node(server, {"index.js": CONSOLE})
    response, _ = invoke(server.client, name, {}, LogType="Tail")
    request_id = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    lines = tail(response).split("\n")[:-1]  # not splitlines: a message keeps its "\r"
    prefix = rf"{_ISO_TIME}\t{request_id}\t"
    levels = RECORDINGS["rt.node.console_levels"]["value"]
    expected = [("{}", levels["log"]), ("info 1", levels["info"]), ("warn", levels["warn"]),
                ("error", levels["error"]), ("debug", levels["debug"]), ("two\rlines", "INFO")]
    body = [line for line in lines if re.match(prefix, line)]
    assert [tuple(line.split("\t")[3:1:-1]) for line in body] == expected
    recorded = RECORDINGS["rt.node.tail_logs"]["value"]["logs"]
    assert lines[0] == recorded[0].rstrip("\n").replace("<request-id>", request_id)
    assert lines[-2] == recorded[2].rstrip("\n").replace("<request-id>", request_id)
    messages = log_messages(server, name, prefix + r"WARN\twarn\n")
    assert any(re.fullmatch(prefix + r"INFO\t\{\}\n", message) for message in messages), messages
    assert any(re.fullmatch(prefix + r"WARN\twarn\n", message) for message in messages), messages


def log_messages(server: TierServer, name: str, wanted: str) -> list[str]:
    """The messages of the log stream of function ``name`` once one matches the pattern
    ``wanted`` (logs are stored in batches, off the invocation's path), within 10 s."""
    group = f"/aws/lambda/{name}"
    logs = client_for(server.server.endpoint, "logs", access_key="hostile",
                      secret_key=server.admin_secret)
    deadline = time.monotonic() + 10
    messages: list[str] = []
    while time.monotonic() < deadline:
        for stream in logs.describe_log_streams(logGroupName=group)["logStreams"]:
            events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])
            messages = [event["message"] for event in events["events"]]
            if any(re.search(wanted, message) for message in messages):
                return messages
        time.sleep(0.1)
    raise AssertionError(f"no log message of {name} matches {wanted!r}: {messages}")


def test_handlers_that_do_not_resolve_fail_as_on_lambda(server: TierServer) -> None:
    name = create_node(server, {"index.js": "exports.other = async () => 1;\n"})
    response, payload = invoke(server.client, name)
    recorded = RECORDINGS["rt.node.handler_not_found"]["value"]
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == recorded["errorType"]
    assert payload["errorMessage"] == recorded["errorMessage"].replace("<<handler>>", "index.handler")
    name = create_node(server, {"index.js": "exports.handler = async () => 1;\n"},
                       handler="missing.handler")
    response, payload = invoke(server.client, name)
    recorded = RECORDINGS["rt.node.import_module_error"]["value"]
    assert payload["errorType"] == recorded["errorType"]
    assert payload["errorMessage"].startswith(
        recorded["errorMessage_prefix"].replace("<<module>>", "missing"))


def test_an_init_error_is_reported_and_logged(server: TierServer) -> None:
    name = create_node(server, {"index.js": "throw new TypeError('bad config');\n"
                                            "exports.handler = async () => 1;\n"})
    response, payload = invoke(server.client, name)
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "TypeError"
    assert payload["errorMessage"] == "bad config"
    # Written during INIT: no request id, as on Lambda.
    log_messages(server, name, r"\tundefined\tERROR\tUncaught Exception \{\"errorType\":\"TypeError\"")
    name = create_node(server, {"index.mjs": "export const handler = async () => {;\n"})
    _, payload = invoke(server.client, name)
    assert payload["errorType"] == "Runtime.UserCodeSyntaxError"


def test_a_timeout_kills_the_invocation(server: TierServer) -> None:
    name = create_node(server, {"index.js": (
        "exports.handler = async () => new Promise((resolve) => setTimeout(resolve, 10000));\n")},
        Timeout=1)
    response, payload = invoke(server.client, name)
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]


def test_a_missing_node_version_is_refused_with_how_to_install_it(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    nowhere = str(tmp_path_factory.mktemp("no-node"))
    server = start_server(tmp_path_factory.mktemp("strato-no-node"),
                          env={"PATH": nowhere, "NVM_DIR": nowhere})
    try:
        client = client_for(server.endpoint)
        with pytest.raises(client.exceptions.InvalidParameterValueException) as caught:
            client.create_function(FunctionName="no-node", Runtime="nodejs20.x", Role=ROLE,
                                   Handler="index.handler",
                                   Code={"ZipFile": make_zip({"index.js": ""})})
        message = caught.value.response["Error"]["Message"]
        assert "no Node.js 20" in message and "STRATO_NODE_20=/path/to/node" in message
        assert "nvm install 20" in message
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.get_function(FunctionName="no-node")
    finally:
        stop_server(server)


SDK_INSTALLED = (Path(sys.prefix) / "strato-runtime-deps" / "nodejs" / "node_modules"
                 / "@aws-sdk" / "client-sqs").is_dir()
needs_sdk = pytest.mark.skipif(not SDK_INSTALLED and not os.environ.get("CI"),
                               reason="the AWS SDK for JavaScript is not installed "
                                      "(`make runtime-deps`)")


@needs_sdk
def test_the_sdk_is_there_without_bundling_and_a_bundled_copy_wins(server: TierServer) -> None:
    where = ("exports.handler = async () => ({sqs: require.resolve('@aws-sdk/client-sqs'),"
             " dynamodb: typeof require('@aws-sdk/client-dynamodb').DynamoDBClient});\n")
    _, payload = invoke(server.client, create_node(server, {"index.js": where}))
    if server.tier == "namespaces":
        assert payload["sqs"].startswith("/var/runtime/node_modules/@aws-sdk/client-sqs/")
    assert payload["dynamodb"] == "function"
    bundled = create_node(server, {
        "index.mjs": "import {SQSClient} from '@aws-sdk/client-sqs';\n"
                     "export const handler = async () => SQSClient;\n",
        "node_modules/@aws-sdk/client-sqs/package.json":
            '{"name": "@aws-sdk/client-sqs", "main": "index.js"}',
        "node_modules/@aws-sdk/client-sqs/index.js": "exports.SQSClient = 'bundled';\n"})
    assert invoke(server.client, bundled)[1] == "bundled"


def test_the_home_directory_is_lambdas_in_every_tier(server: TierServer) -> None:
    # The AWS SDK for JavaScript reads ~/.aws/config through os.homedir(), which throws where
    # the environment's user has no home.
    name = create_node(server, {"index.js": (
        "exports.handler = async () => require('node:os').homedir();\n")})
    assert invoke(server.client, name)[1] == "/home/sbx_user1051"


def test_json_logs_follow_the_logging_config(server: TierServer) -> None:
    name = create_node(server, {"index.js": (
        "exports.handler = async () => {\n"
        "  console.info('dropped below WARN');\n"
        "  console.warn('kept', 1);\n"
        "  console.error(new TypeError('broken'));\n"
        "  return 'ok';\n"
        "};\n")}, LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "WARN"})
    response, _ = invoke(server.client, name, LogType="Tail")
    request_id = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    records = [json.loads(line) for line in tail(response).split("\n")
               if line.startswith("{") and '"level"' in line]
    assert [(r["level"], r["message"]) for r in records][:1] == [("WARN", "kept 1")]
    assert all(r["requestId"] == request_id and re.fullmatch(_ISO_TIME, r["timestamp"])
               for r in records)
    assert sorted(records[0]) == RECORDINGS["rt.node.console_levels"]["value"]["json_keys"]
    error = records[1]
    assert error["level"] == "ERROR"
    assert error["message"]["errorType"] == "TypeError"
    assert error["message"]["errorMessage"] == "broken"
    assert error["message"]["stackTrace"][0] == "TypeError: broken"
    assert len(records) == 2
