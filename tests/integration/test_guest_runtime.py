"""The built-in Python runtime (``sandbox/guest/lambda_runtime``) against a Runtime API.

Each test runs the real runtime as a subprocess of every available interpreter (3.10 to 3.13)
and a small threaded HTTP/1.1 Runtime API in the test process that hands out queued events
and records what the runtime posts, together with what the runtime had written to its stdout
pipe at the moment each post arrived.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import subprocess
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

GUEST_DIR = Path(__file__).resolve().parents[2] / "src" / "strato" / "sandbox" / "guest"
PREFIX = "/2018-06-01/runtime"
VERSIONS = ("3.10", "3.11", "3.12", "3.13")


def find_python(version: str) -> str | None:
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for candidate in sorted(pyenv.glob(f"{version}.*/bin/python{version}"), reverse=True):
        return str(candidate)
    return shutil.which(f"python{version}")


@pytest.fixture(params=VERSIONS, ids=lambda v: f"py{v}")
def python(request: pytest.FixtureRequest) -> str:
    found = find_python(request.param)
    if found is None:
        pytest.skip(f"python{request.param} is not installed")
    return found


# --- a Runtime API that queues events and records posts ------------------------------------


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    body: bytes
    stdout: bytes  # everything the runtime had written to stdout when the post arrived
    peer: tuple[str, int]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeRuntimeApi:
    """``status_for(path, body)`` picks each post's status; ``close_after_post`` drops the
    connection (without saying so) after answering a post; ``chunked`` answers ``next`` with
    a chunked body."""

    stdout_fd: int
    status_for: Any = None
    close_after_post: bool = False
    chunked: bool = False
    events: queue.Queue[tuple[dict[str, str], bytes] | None] = field(default_factory=queue.Queue)
    posts: queue.Queue[Post] = field(default_factory=queue.Queue)
    peers: list[tuple[str, int]] = field(default_factory=list)
    stdout: bytearray = field(default_factory=bytearray)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_event(self, event: Any, *, raw: bytes | None = None, **headers: str) -> str:
        request_id = headers.pop("request_id", None) or str(uuid.uuid4())
        all_headers = {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 60_000),
            "Lambda-Runtime-Invoked-Function-Arn":
                "arn:aws:lambda:us-east-1:000000000000:function:fn",
            "Content-Type": "application/json",
        }
        all_headers.update({k.replace("_", "-"): v for k, v in headers.items()})
        self.events.put((all_headers, raw if raw is not None else json.dumps(event).encode()))
        return request_id

    def next_post(self, timeout: float = 20) -> Post:
        return self.posts.get(timeout=timeout)

    def read_stdout(self) -> bytes:
        """Everything the runtime wrote to stdout so far (non-blocking)."""
        with self.lock:
            while True:
                try:
                    chunk = os.read(self.stdout_fd, 65536)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                self.stdout += chunk
            return bytes(self.stdout)


class _RuntimeApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # head and body are separate writes
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        api: FakeRuntimeApi = self.server.api
        api.peers.append(self.client_address)
        if self.path != f"{PREFIX}/invocation/next":
            self._answer(404, b'{"errorType":"NotFound"}')
            return
        item = api.events.get()
        if item is None:  # shutting down
            self.close_connection = True
            return
        headers, body = item
        if api.chunked:
            self.send_response(200)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
            return
        self._answer(200, body, headers)

    def do_POST(self) -> None:
        api: FakeRuntimeApi = self.server.api
        api.peers.append(self.client_address)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        stdout = api.read_stdout()
        status = api.status_for(self.path, body) if api.status_for else 202
        api.posts.put(Post(self.path, dict(self.headers.items()), body, stdout,
                           self.client_address))
        self._answer(status, b'{"status":"OK"}' if status == 202 else b'{"errorType":"Refused"}')
        if api.close_after_post:
            self.close_connection = True


@dataclass
class RuntimeRun:
    api: FakeRuntimeApi
    process: subprocess.Popen[bytes]
    stderr_path: Path

    def wait(self, timeout: float = 20) -> int:
        return self.process.wait(timeout=timeout)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


@contextlib.contextmanager
def run_runtime(python: str, task_root: Path, handler: str, *, env: dict[str, str] | None = None,
                **api_options: Any) -> Iterator[RuntimeRun]:
    """Start the runtime against a fresh FakeRuntimeApi; kill it and stop the API on exit."""
    stdout_r, stdout_w = os.pipe()
    os.set_blocking(stdout_r, False)
    api = FakeRuntimeApi(stdout_r, **api_options)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RuntimeApiHandler)
    server.daemon_threads = True
    server.api = api  # type: ignore[attr-defined]
    serving = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    serving.start()
    full_env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "_HANDLER": handler,
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/15/[$LATEST]0123456789abcdef",
        **(env or {}),
    }
    code = (f"import sys; sys.path.insert(0, {str(GUEST_DIR)!r}); "
            "import lambda_runtime.bootstrap as b; raise SystemExit(b.main())")
    stderr_path = task_root / "stderr.txt"
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen([python, "-E", "-s", "-S", "-c", code], env=full_env,
                                   cwd=task_root, stdin=subprocess.DEVNULL, stdout=stdout_w,
                                   stderr=stderr)
    os.close(stdout_w)
    try:
        yield RuntimeRun(api, process, stderr_path)
    finally:
        process.kill()
        process.wait()
        for _ in range(8):
            api.events.put(None)
        server.shutdown()
        server.server_close()
        os.close(stdout_r)


def write_files(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


APP = """\
import decimal
import logging
import os


def handler(event, context):
    kind = event.get("kind") if isinstance(event, dict) else None
    if kind == "fail":
        raise Exception("Handler fails")
    if kind == "none":
        return None
    if kind == "decimal":
        return {"price": decimal.Decimal("19.99"), "count": decimal.Decimal("3"),
                "exact": decimal.Decimal("12345678901234567890.123456789"),
                "list": [decimal.Decimal("-0.5"), 1.5, "x"]}
    if kind == "bytes":
        return b"\\x00raw bytes"
    if kind == "unmarshalable":
        return {"x": object()}
    if kind == "log":
        logging.getLogger().warning("careful %s", "now")
        logging.getLogger("app").info("info line")
        logging.getLogger("app").debug("debug line")
        print("printed without a newline", end="")
        return "logged"
    if kind == "exit":
        exit(3)
    if kind == "context":
        cc = context.client_context
        return {
            "aws_request_id": context.aws_request_id,
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining": context.get_remaining_time_in_millis(),
            "identity": [context.identity.cognito_identity_id,
                         context.identity.cognito_identity_pool_id],
            "client_context": None if cc is None else {
                "installation_id": cc.client.installation_id,
                "app_title": cc.client.app_title,
                "custom": cc.custom,
                "env": cc.env,
            },
            "trace": os.environ.get("_X_AMZN_TRACE_ID"),
            "repr": repr(context),
        }
    return event
"""


@pytest.fixture
def app_root(tmp_path: Path) -> Path:
    return write_files(tmp_path, {"app.py": APP})


def response_path(request_id: str) -> str:
    return f"{PREFIX}/invocation/{request_id}/response"


# --- INVOKE --------------------------------------------------------------------------------


def test_results_are_posted_as_json_over_one_connection(python: str, app_root: Path) -> None:
    with run_runtime(python, app_root, "app.handler") as run:
        echo = run.api.add_event({"kind": "echo", "text": "h\u00e9llo"})
        none = run.api.add_event({"kind": "none"})
        dec = run.api.add_event({"kind": "decimal"})
        raw = run.api.add_event({"kind": "bytes"})
        posts = [run.api.next_post() for _ in range(4)]

        assert [p.path for p in posts] == [response_path(r) for r in (echo, none, dec, raw)]
        assert posts[0].json() == {"kind": "echo", "text": "h\u00e9llo"}
        assert posts[1].body == b"null"
        assert posts[2].body.decode() == (
            '{"price": 19.99, "count": 3, "exact": 12345678901234567890.123456789, '
            '"list": [-0.5, 1.5, "x"]}'
        )
        assert posts[3].body == b"\x00raw bytes"
        assert all("Content-Length" in p.headers for p in posts)
        # Keep-alive: every exchange (4 posts, 5 nexts so far) came over one connection.
        assert len(set(run.api.peers)) == 1
        assert run.process.poll() is None


def test_handler_exception_is_posted_with_user_frames(python: str, app_root: Path) -> None:
    with run_runtime(python, app_root, "app.handler") as run:
        request_id = run.api.add_event({"kind": "fail"})
        post = run.api.next_post()
        after = run.api.add_event({"kind": "echo"})
        assert run.api.next_post().path == response_path(after)  # the loop goes on

    assert post.path == f"{PREFIX}/invocation/{request_id}/error"
    assert post.headers["Lambda-Runtime-Function-Error-Type"] == "Exception"
    line = APP.splitlines().index('        raise Exception("Handler fails")') + 1
    assert post.json() == {
        "errorMessage": "Handler fails",
        "errorType": "Exception",
        "requestId": request_id,
        "stackTrace": [
            f'  File "{app_root / "app.py"}", line {line}, in handler\n'
            '    raise Exception("Handler fails")\n'
        ],
    }
    assert (
        "[ERROR] Exception: Handler fails\nTraceback (most recent call last):\n"
        f'  File "{app_root / "app.py"}", line {line}, in handler\n'
        '    raise Exception("Handler fails")\n'
    ) in post.stdout.decode()


def test_marshal_and_unmarshal_errors(python: str, app_root: Path) -> None:
    with run_runtime(python, app_root, "app.handler") as run:
        bad_result = run.api.add_event({"kind": "unmarshalable"})
        marshal = run.api.next_post()
        bad_event = run.api.add_event(None, raw=b"{not json")
        unmarshal = run.api.next_post()

    assert marshal.path == f"{PREFIX}/invocation/{bad_result}/error"
    assert marshal.headers["Lambda-Runtime-Function-Error-Type"] == "Runtime.MarshalError"
    assert marshal.json()["errorMessage"] == (
        "Unable to marshal response: Object of type object is not JSON serializable")
    assert marshal.json()["requestId"] == bad_result
    assert unmarshal.path == f"{PREFIX}/invocation/{bad_event}/error"
    assert unmarshal.json()["errorType"] == "Runtime.UnmarshalError"
    assert unmarshal.json()["errorMessage"].startswith("Unable to unmarshal input: Expecting")


def test_context_from_headers_and_environment(python: str, app_root: Path) -> None:
    deadline = int(time.time() * 1000) + 120_000
    client_context = {"client": {"installation_id": "inst-1", "app_title": "App"},
                      "custom": {"k": "v"}, "env": {"platform": "test"}}
    with run_runtime(python, app_root, "app.handler") as run:
        first = run.api.add_event(
            {"kind": "context"},
            Lambda_Runtime_Deadline_Ms=str(deadline),
            Lambda_Runtime_Trace_Id="Root=1-5e1b4151-5ac6c58f5b5dbd4e1d5b5d5b;Sampled=1",
            Lambda_Runtime_Client_Context=json.dumps(client_context),
            Lambda_Runtime_Cognito_Identity=json.dumps(
                {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}),
        )
        with_everything = run.api.next_post().json()
        run.api.add_event({"kind": "context"})
        bare = run.api.next_post().json()

    assert 110_000 < with_everything.pop("remaining") <= 120_000
    assert with_everything.pop("repr").startswith(f"LambdaContext([aws_request_id={first},")
    assert with_everything == {
        "aws_request_id": first,
        "function_name": "fn",
        "function_version": "$LATEST",
        "invoked_function_arn": "arn:aws:lambda:us-east-1:000000000000:function:fn",
        "memory_limit_in_mb": "128",
        "log_group_name": "/aws/lambda/fn",
        "log_stream_name": "2024/01/15/[$LATEST]0123456789abcdef",
        "identity": ["id-1", "pool-1"],
        "client_context": {"installation_id": "inst-1", "app_title": "App",
                           "custom": {"k": "v"}, "env": {"platform": "test"}},
        "trace": "Root=1-5e1b4151-5ac6c58f5b5dbd4e1d5b5d5b;Sampled=1",
    }
    assert bare["identity"] == [None, None]
    assert bare["client_context"] is None
    assert bare["trace"] is None


def test_output_is_flushed_before_the_post_and_logs_use_lambda_format(
        python: str, app_root: Path) -> None:
    with run_runtime(python, app_root, "app.handler") as run:
        request_id = run.api.add_event({"kind": "log"})
        post = run.api.next_post()

    stdout = post.stdout.decode()
    assert post.body == b'"logged"'
    assert stdout.endswith("printed without a newline")
    match = re.search(
        r"^\[WARNING\]\t(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z\t([^\t]*)\tcareful now\n",
        stdout, re.M)
    assert match is not None, stdout
    assert match.group(2) == request_id
    logged_at = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S.%f")
    now = datetime.now(UTC).replace(tzinfo=None)
    assert abs((now - logged_at).total_seconds()) < 60  # UTC, not local time
    assert "info line" not in stdout  # Python's default level (WARNING) is left alone


def test_log_level_from_environment(python: str, app_root: Path) -> None:
    with run_runtime(python, app_root, "app.handler", env={"AWS_LAMBDA_LOG_LEVEL": "INFO"}) as run:
        request_id = run.api.add_event({"kind": "log"})
        stdout = run.api.next_post().stdout.decode()
    assert "[INFO]\t" in stdout and f"\t{request_id}\tinfo line\n" in stdout
    assert "debug line" not in stdout


def test_json_log_format(python: str, app_root: Path) -> None:
    """With AWS_LAMBDA_LOG_FORMAT=JSON, records are Lambda's JSON records at the level of
    AWS_LAMBDA_LOG_LEVEL, print stays plain text and an error is one JSON record."""
    env = {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO"}
    with run_runtime(python, app_root, "app.handler", env=env) as run:
        request_id = run.api.add_event({"kind": "log"})
        logged = run.api.next_post().stdout.decode()
        failed_id = run.api.add_event({"kind": "fail"})
        failed = run.api.next_post().stdout.decode()
    *records, printed = logged.split("\n")
    assert printed == "printed without a newline"
    parsed = [json.loads(line) for line in records]
    assert [(r["level"], r["logger"], r["message"]) for r in parsed] == [
        ("WARNING", "root", "careful now"), ("INFO", "app", "info line")]
    for record in parsed:
        assert set(record) == {"timestamp", "level", "message", "logger", "requestId"}
        assert record["requestId"] == request_id
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["timestamp"])
    # The unfinished printed line went out with the next invocation's output.
    error = json.loads(failed[failed.rindex('{"timestamp"'):])
    assert error["level"] == "ERROR" and error["errorType"] == "Exception"
    assert error["requestId"] == failed_id and error["stackTrace"]


def test_nested_handler_path(python: str, tmp_path: Path) -> None:
    write_files(tmp_path, {
        "pkg/sub/mod.py": "def handler(event, context):\n    return ['nested', event]\n"})
    with run_runtime(python, tmp_path, "pkg/sub/mod.handler") as run:
        run.api.add_event({"a": 1})
        assert run.api.next_post().json() == ["nested", {"a": 1}]


def test_exit_builtin_ends_the_environment(python: str, app_root: Path) -> None:
    with run_runtime(python, app_root, "app.handler") as run:
        run.api.add_event({"kind": "exit"})
        assert run.wait() == 3
        assert run.api.posts.empty()


# --- Runtime API edge cases ----------------------------------------------------------------


def test_refused_post_is_logged_and_the_loop_continues(python: str, app_root: Path) -> None:
    def status_for(path: str, body: bytes) -> int:
        return 413 if b"big" in body else 202

    with run_runtime(python, app_root, "app.handler", status_for=status_for) as run:
        run.api.add_event({"kind": "echo", "payload": "big"})
        run.api.next_post()
        after = run.api.add_event({"kind": "echo"})
        assert run.api.next_post().path == response_path(after)
        assert "413" in run.stderr()


def test_reconnects_when_the_server_drops_the_connection(python: str, app_root: Path) -> None:
    with run_runtime(python, app_root, "app.handler", close_after_post=True) as run:
        ids = [run.api.add_event({"kind": "echo", "n": n}) for n in range(3)]
        posts = [run.api.next_post() for _ in ids]
    assert [p.path for p in posts] == [response_path(r) for r in ids]
    assert len({p.peer for p in posts}) == 3  # a new connection after each drop


def test_chunked_response_is_refused_clearly(python: str, app_root: Path) -> None:
    with run_runtime(python, app_root, "app.handler", chunked=True) as run:
        run.api.add_event({"kind": "echo"})
        assert run.wait() == 1
        assert "no Content-Length (transfer-encoding: chunked)" in run.stderr()


# --- INIT faults ---------------------------------------------------------------------------

INIT_FAULTS = {
    "missing-module": (
        {}, "nope.handler", "Runtime.ImportModuleError",
        "Unable to import module 'nope': No module named 'nope'"),
    "missing-dependency": (
        {"dep.py": "import not_installed_anywhere\n"}, "dep.handler",
        "Runtime.ImportModuleError",
        "Unable to import module 'dep': No module named 'not_installed_anywhere'"),
    "missing-function": (
        {"app.py": "x = 1\n"}, "app.nothing", "Runtime.HandlerNotFound",
        "Handler 'nothing' missing on module 'app'"),
    "malformed": (
        {}, "app", "Runtime.MalformedHandlerName",
        "Bad handler 'app': not enough values to unpack (expected 2, got 1)"),
    "syntax-error": (
        {"bad.py": "def handler(:\n    pass\n"}, "bad.handler", "Runtime.UserCodeSyntaxError",
        "Syntax error in module 'bad': "),
    "exception-at-import": (
        {"boom.py": 'raise Exception("Runtime startup fails")\n'}, "boom.handler", "Exception",
        "Runtime startup fails"),
}


@pytest.mark.parametrize("case", INIT_FAULTS, ids=str)
def test_init_faults(python: str, tmp_path: Path, case: str) -> None:
    files, handler, error_type, message = INIT_FAULTS[case]
    write_files(tmp_path, files)
    with run_runtime(python, tmp_path, handler) as run:
        post = run.api.next_post()
        assert run.wait() == 1

    assert post.path == f"{PREFIX}/init/error"
    assert post.headers["Lambda-Runtime-Function-Error-Type"] == error_type
    error = post.json()
    assert set(error) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert error["errorType"] == error_type
    assert error["requestId"] == ""
    if case == "syntax-error":
        assert error["errorMessage"].startswith(message)
        assert error["stackTrace"][0].startswith(f'  File "{tmp_path / "bad.py"}" Line 1\n')
    else:
        assert error["errorMessage"] == message
    if case == "exception-at-import":
        assert error["stackTrace"][-1] == (
            f'  File "{tmp_path / "boom.py"}", line 1, in <module>\n'
            '    raise Exception("Runtime startup fails")\n')
        assert "importlib" in error["stackTrace"][0]  # AWS keeps importlib's frames too
        assert not any("lambda_runtime" in frame for frame in error["stackTrace"])
    elif case != "syntax-error":
        assert error["stackTrace"] == []
    # The log line was in the pipe before the post arrived.
    assert f"[ERROR] {error_type}: {error['errorMessage']}\nTraceback (most recent call last):" \
        in post.stdout.decode()
