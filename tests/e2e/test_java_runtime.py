"""The java17/java21/java25 runtimes: handlers compiled here with javac, deployed with boto3 to
a real server of each sandbox tier, compared with what AWS's Java runtime answers."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_zip
from tests.e2e.conftest import ROLE
from tests.e2e.hostile import TIERS, TierServer, serve_tier, unique
from tests.e2e.java_support import (
    HOMES,
    assert_java_recorded,
    compile_classes,
    jar,
    java_recorded,
    require_java,
)
from tests.e2e.recordings import assert_matches, function_arn

SIGNATURES = {"example/Signatures.java": """
package example;

import com.amazonaws.services.lambda.runtime.Context;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public class Signatures {
    public Map<String, Object> map(Map<String, Object> event) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("got", event);
        out.put("type", event.getClass().getName());
        return out;
    }

    public String string(String event, Context context) {
        return event.toUpperCase() + " for " + context.getFunctionName();
    }

    public static Integer number(Integer n) {
        return n + 1;
    }

    public Order pojo(Order order, Context context) {
        order.setTotal(order.getQuantity() * order.price);
        return order;
    }

    public List<Object> list(List<Object> items) {
        return List.of(items.size(), items.get(0), true);
    }

    public void stream(InputStream in, OutputStream out) throws IOException {
        out.write(("[" + new String(in.readAllBytes(), StandardCharsets.UTF_8) + "]").getBytes());
    }

    public void streamContext(InputStream in, OutputStream out, Context context) throws IOException {
        out.write(("\\"" + context.getAwsRequestId() + "\\"").getBytes());
    }

    public String handleRequestCustom(Map<String, Object> event, Context context) {
        return "CUSTOM";
    }

    public static class Order {
        public double price;
        private String item;
        private int quantity;
        private double total;
        public String getItem() { return item; }
        public void setItem(String item) { this.item = item; }
        public int getQuantity() { return quantity; }
        public void setQuantity(int quantity) { this.quantity = quantity; }
        public double getTotal() { return total; }
        public void setTotal(double total) { this.total = total; }
        public boolean isLarge() { return quantity > 10; }
    }
}
""", "example/Greeter.java": """
package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;

public class Greeter implements RequestHandler<Greeter.Person, Greeter.Greeting> {
    public record Person(String name, int age) {}
    public record Greeting(String text, boolean adult) {}

    @Override
    public Greeting handleRequest(Person person, Context context) {
        return new Greeting("Hello " + person.name(), person.age() >= 18);
    }
}
""", "example/Echo.java": """
package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

public class Echo implements RequestStreamHandler {
    @Override
    public void handleRequest(InputStream in, OutputStream out, Context context) throws IOException {
        in.transferTo(out);
    }
}
"""}

INTROSPECTION = {"echo/Handler.java": """
package echo;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaLogger;
import com.amazonaws.services.lambda.runtime.LambdaRuntime;
import com.amazonaws.services.lambda.runtime.logging.LogLevel;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

public class Handler {
    public Map<String, Object> handleRequest(Map<String, Object> event, Context context) {
        LambdaLogger logger = context.getLogger();
        logger.log("from the context's logger");
        logger.log("a debug line", LogLevel.DEBUG);
        logger.log("an error line", LogLevel.ERROR);
        LambdaRuntime.getLogger().log("from LambdaRuntime");
        System.out.println("from System.out");
        Map<String, Object> ctx = new LinkedHashMap<>();
        ctx.put("aws_request_id", context.getAwsRequestId());
        ctx.put("function_name", context.getFunctionName());
        ctx.put("function_version", context.getFunctionVersion());
        ctx.put("invoked_function_arn", context.getInvokedFunctionArn());
        ctx.put("log_group_name", context.getLogGroupName());
        ctx.put("log_stream_name", context.getLogStreamName());
        ctx.put("memory_limit_in_mb", Integer.toString(context.getMemoryLimitInMB()));
        ctx.put("remaining_time_in_millis", Integer.toString(context.getRemainingTimeInMillis()));
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("ctx", ctx);
        out.put("environment", new TreeMap<>(System.getenv()));
        out.put("packages", new ArrayList<>());
        return out;
    }
}
"""}

FAILING = {"example/Failing.java": """
package example;

import java.util.Map;

public class Failing {
    public String handleRequest(Map<String, Object> event) {
        throw new RuntimeException("Error: " + event.get("error_msg"));
    }
}
"""}

#: Variables of the recorded environment that are other parts' to set or that strato does not
#: offer: the execution role's credentials, X-Ray's daemon, the telemetry descriptor.
_NOT_COMPARED = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_XRAY_CONTEXT_MISSING", "AWS_XRAY_DAEMON_ADDRESS", "_AWS_XRAY_DAEMON_ADDRESS",
                 "_AWS_XRAY_DAEMON_PORT", "_LAMBDA_TELEMETRY_LOG_FD"}
#: Recorded values that name where things are; only the namespaces tier lays them out as Lambda.
_LAYOUT = {"LAMBDA_RUNTIME_DIR", "LAMBDA_TASK_ROOT", "LD_LIBRARY_PATH", "PATH", "AWS_LAMBDA_RUNTIME_API"}


@pytest.fixture(scope="module", params=TIERS)
def java_server(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[TierServer]:
    require_java(17)
    with serve_tier(request.param, tmp_path_factory) as server:
        yield server


@pytest.fixture(scope="module")
def signatures_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    require_java(17)
    return make_zip(compile_classes(tmp_path_factory.mktemp("signatures"), SIGNATURES))


def _create(server: TierServer, package: bytes, handler: str, *, runtime: str = "java17",
            **kwargs: Any) -> str:
    name = unique("java")
    server.client.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                                  Code={"ZipFile": package}, **kwargs)
    server.client.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return name


def _invoke(server: TierServer, name: str, payload: bytes, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    response = server.client.invoke(FunctionName=name, Payload=payload, **kwargs)
    raw = response["Payload"].read()
    return response, json.loads(raw)


@pytest.mark.parametrize(("handler", "event", "expected"), [
    ("example.Signatures::map", {"a": [1, 2.5, None], "b": {"c": True}},
     {"got": {"a": [1, 2.5, None], "b": {"c": True}}, "type": "java.util.LinkedHashMap"}),
    ("example.Signatures::string", "hello", "HELLO for {name}"),
    ("example.Signatures::number", 41, 42),
    ("example.Signatures::list", ["x", 2], [2, "x", True]),
    ("example.Signatures::pojo", {"item": "pen", "quantity": 12, "price": 1.5, "unknown": 1},
     {"price": 1.5, "item": "pen", "quantity": 12, "total": 18.0, "large": True}),
    ("example.Signatures::stream", {"raw": 1}, [{"raw": 1}]),
    ("example.Greeter", {"name": "Ada", "age": 36}, {"text": "Hello Ada", "adult": True}),
    ("example.Echo", {"echo": [1, "two"]}, {"echo": [1, "two"]}),
])
def test_handler_signatures(java_server: TierServer, signatures_zip: bytes, handler: str,
                            event: Any, expected: Any) -> None:
    """POJO and stream signatures, with and without a Context, RequestHandler and
    RequestStreamHandler implementations: the event in the parameter's type, the result as
    JSON."""
    name = _create(java_server, signatures_zip, handler)
    response, payload = _invoke(java_server, name, json.dumps(event).encode())
    assert "FunctionError" not in response, payload
    if isinstance(expected, str):
        expected = expected.format(name=name)
    assert payload == expected


def test_stream_handler_with_context_and_custom_method(java_server: TierServer,
                                                       signatures_zip: bytes) -> None:
    name = _create(java_server, signatures_zip, "example.Signatures::streamContext")
    response, payload = _invoke(java_server, name, b"{}")
    assert payload == response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    custom = _create(java_server, signatures_zip, "example.Signatures::handleRequestCustom")
    response = java_server.client.invoke(FunctionName=custom, Payload=b"{}")
    response["Payload"] = response["Payload"].read().decode()
    assert_java_recorded(response, "rt.java.custom_method")
    assert java_recorded("rt.java.handler_signatures")["default_method"] == "handleRequest"


def test_introspection_context_and_logs(java_server: TierServer, tmp_path: Path) -> None:
    """The Context and the environment as AWS recorded them for java17; LambdaLogger lines
    (a level's prefix, no filtering in TEXT) and System.out in the function's log."""
    package = make_zip(compile_classes(tmp_path, INTROSPECTION))
    name = _create(java_server, package, "echo.Handler", MemorySize=1024, Timeout=20,
                   Environment={"Variables": {"TEST_KEY": "TEST_VAL"}})
    response, payload = _invoke(java_server, name, b"{}", LogType="Tail")
    assert "FunctionError" not in response, payload
    expected = java_recorded("rt.java17.introspection", function_name=name)
    assert_matches(payload["ctx"], expected["ctx"], path="ctx")
    assert payload["ctx"]["aws_request_id"] == response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert payload["ctx"]["invoked_function_arn"] == function_arn(name)
    assert 0 < int(payload["ctx"]["remaining_time_in_millis"]) <= 20_000
    skip = _NOT_COMPARED | (set() if java_server.tier == "namespaces" else _LAYOUT)
    recorded_env = {k: v for k, v in expected["environment"].items() if k not in skip}
    recorded_env.pop("AWS_LAMBDA_RUNTIME_API", None)  # the address differs; its presence does not
    assert "AWS_LAMBDA_RUNTIME_API" in payload["environment"]
    assert_matches({k: payload["environment"].get(k) for k in recorded_env}, recorded_env,
                   path="environment")
    log = base64.b64decode(response["LogResult"]).decode()
    for line in ("from the context's logger", "[DEBUG] a debug line", "[ERROR] an error line",
                 "from LambdaRuntime", "from System.out"):
        assert line in log.splitlines(), log


def test_uncaught_errors_as_aws_reports_them(java_server: TierServer, tmp_path: Path) -> None:
    name = _create(java_server, make_zip(compile_classes(tmp_path, FAILING)), "example.Failing")
    response = java_server.client.invoke(FunctionName=name,
                                         Payload=json.dumps({"error_msg": "some_error_msg"}).encode(),
                                         LogType="Tail")
    payload = json.loads(response["Payload"].read())
    response["Payload"] = payload
    assert_java_recorded(response, "rt.java17.uncaught_error")
    assert sorted(payload) == java_recorded("rt.java.error_shape")["keys"]
    assert payload["stackTrace"][0].startswith("example.Failing.handleRequest(Failing.java:")
    log = base64.b64decode(response["LogResult"]).decode()
    assert "Error: some_error_msg: java.lang.RuntimeException" in log


@pytest.mark.parametrize(("handler", "error_type", "message"), [
    ("example.Missing", "java.lang.ClassNotFoundException", "Class not found: example.Missing"),
    ("example.Signatures::nothing", "java.lang.NoSuchMethodException",
     "No public method named nothing with appropriate method signature found on class "
     "example.Signatures"),
])
def test_a_handler_that_names_nothing_fails_init(java_server: TierServer, signatures_zip: bytes,
                                                 handler: str, error_type: str, message: str) -> None:
    name = _create(java_server, signatures_zip, handler)
    response, payload = _invoke(java_server, name, b"{}")
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == error_type
    assert payload["errorMessage"] == message
    assert isinstance(payload["stackTrace"], list)


LIBRARY = {"lib/Echoes.java": """
package lib;

public class Echoes {
    public static String echo(String word) {
        return "{\\"echo\\":\\"" + word + "\\"}";
    }
}
""", "app/Handler.java": """
package app;

import java.util.Map;

public class Handler {
    public String handleRequest(Map<String, Object> event) {
        return lib.Echoes.echo((String) event.get("word"));
    }
}
"""}


def test_packages_as_lambda_takes_them(java_server: TierServer, tmp_path: Path) -> None:
    """Classes in a jar under lib/ of the zip; and a fat jar uploaded as the package."""
    classes = compile_classes(tmp_path, LIBRARY)
    handler_classes = {k: v for k, v in classes.items() if k.startswith("app/")}
    library_classes = {k: v for k, v in classes.items() if k.startswith("lib/")}
    with_lib = make_zip({**handler_classes, "lib/echoes.jar": jar(library_classes)})
    name = _create(java_server, with_lib, "app.Handler")
    response = java_server.client.invoke(FunctionName=name, Payload=b'{"word": "echo"}')
    response["Payload"] = response["Payload"].read().decode()
    assert_java_recorded(response, "rt.java.string_return_zip_with_lib")
    fat = _create(java_server, jar(classes), "app.Handler::handleRequest")
    assert _invoke(java_server, fat, b'{"word": "fat"}')[1] == '{"echo":"fat"}'


def test_every_java_major_on_the_host_runs_and_a_missing_one_is_refused(
        java_server: TierServer, signatures_zip: bytes) -> None:
    for major in (17, 21, 25):
        runtime = f"java{major}"
        if HOMES.find(major) is None:
            with pytest.raises(java_server.client.exceptions.InvalidParameterValueException) as caught:
                _create(java_server, signatures_zip, "example.Echo", runtime=runtime)
            message = caught.value.response["Error"]["Message"]
            assert f"no Java {major}" in message and f"openjdk-{major}-jre-headless" in message
            assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
            assert not [f for f in java_server.client.list_functions()["Functions"]
                        if f["Runtime"] == runtime]
            continue
        name = _create(java_server, signatures_zip, "example.Echo", runtime=runtime)
        assert _invoke(java_server, name, b'{"major": 1}')[1] == {"major": 1}


JSON_LOGGING = {"example/Levels.java": """
package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaLogger;
import com.amazonaws.services.lambda.runtime.logging.LogLevel;
import java.util.Map;

public class Levels {
    public String handleRequest(Map<String, Object> event, Context context) {
        LambdaLogger logger = context.getLogger();
        logger.log("a trace line", LogLevel.TRACE);
        logger.log("an info line without a level");
        logger.log("a warning", LogLevel.WARN);
        logger.log("an error", LogLevel.ERROR);
        if (event.containsKey("fail")) {
            throw new IllegalStateException("failed on purpose");
        }
        return "logged";
    }
}
"""}


def test_json_log_format_and_level(java_server: TierServer, tmp_path: Path) -> None:
    """AWS_LAMBDA_LOG_FORMAT=JSON: LambdaLogger lines and the uncaught error become Lambda's
    JSON records; levels below AWS_LAMBDA_LOG_LEVEL are dropped."""
    name = _create(java_server, make_zip(compile_classes(tmp_path, JSON_LOGGING)), "example.Levels",
                   Environment={"Variables": {"AWS_LAMBDA_LOG_FORMAT": "JSON",
                                              "AWS_LAMBDA_LOG_LEVEL": "WARN"}})
    response = java_server.client.invoke(FunctionName=name, Payload=b'{"fail": true}', LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    request_id = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    records = [json.loads(line) for line in base64.b64decode(response["LogResult"]).decode().splitlines()
               if line.startswith("{")]
    assert [(r["level"], r["message"]) for r in records] == [
        ("WARN", "a warning"), ("ERROR", "an error"), ("ERROR", "failed on purpose")]
    for record in records:
        assert record["AWSRequestId"] == request_id
        assert record["timestamp"].endswith("Z") and "T" in record["timestamp"]
        assert {"timestamp", "level", "message", "AWSRequestId"} <= set(record)
    assert records[-1]["errorType"] == "java.lang.IllegalStateException"
    assert records[-1]["errorMessage"] == "failed on purpose"
    assert records[-1]["stackTrace"][0].startswith("example.Levels.handleRequest(")
