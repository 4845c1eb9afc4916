"""strato's built-in Python runtime: the INIT phase, then the INVOKE loop.

https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html and
https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html. ``main`` is the
composition root: it reads the environment once, builds the Runtime API client and the log
handler, resolves ``_HANDLER`` (user code's module level runs here), then serves events until
the process is killed. An INIT failure is posted to ``/runtime/init/error`` and ends the
process with status 1; an invocation failure is posted to ``/invocation/{id}/error`` and the
loop goes on. A handler that returns a generator (a generator function's handler does) streams
its response: each bytes or str it yields is sent as it comes (the Runtime API's streaming
response mode), and an exception raised while it runs ends the stream with that error (strato's
own way to stream from Python: Lambda's Python runtimes offer none). Everything printed for an
invocation is flushed before its result is posted: the platform reads the log pipe as soon as
the post arrives.

Imports happen at module level only, so a zygote that imported this module forks environments
that import nothing before running user code.
"""

from __future__ import annotations

import builtins
import decimal
import json
import os
import re
import sys
import types

from . import log_format
from .channel import ChannelClient
from .client import RuntimeApiError, RuntimeClient
from .context import FunctionSettings, make_context
from .faults import (
    MARSHAL_ERROR,
    UNMARSHAL_ERROR,
    Fault,
    exception_error,
    log_text,
)
from .handler import load_handler

#: Where a Python layer's packages are (https://docs.aws.amazon.com/lambda/latest/dg/packaging-layers.html).
_OPT_PYTHON = "/opt/python"

TYPE_CHECKING = False  # not typing's: the annotations need no import at run time
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, MutableMapping
    from typing import Any, NoReturn

    from .client import Invocation

    #: A handler: ``(event, context)`` to its result.
    Handler = Callable[[Any, Any], object]

# AWS's python3.12+ runtimes serialise results with ensure_ascii=False (awslambdaric's Encoder).
_ENSURE_ASCII = sys.version_info < (3, 12)
# Decimals are written with all their digits, like simplejson's RawJSON in awslambdaric: the
# stdlib encoder cannot emit raw text, so a placeholder string stands in and is replaced.
_DECIMAL_MARK = "\x00strato.decimal\x1f"
_DECIMAL_PLACEHOLDER = re.compile(r'"\\u0000strato\.decimal\\u001f(\d+)"')


class _ResultEncoder(json.JSONEncoder):
    def __init__(self) -> None:
        super().__init__(ensure_ascii=_ENSURE_ASCII)
        self.decimals: list[str] = []

    def default(self, o: object) -> object:
        if isinstance(o, decimal.Decimal):
            self.decimals.append("NaN" if o.is_nan() else str(o))
            return _DECIMAL_MARK + str(len(self.decimals) - 1)
        return super().default(o)


#: Encodes what plain JSON can; anything else (Decimals) goes through a ``_ResultEncoder``.
_PLAIN_ENCODER = json.JSONEncoder(ensure_ascii=_ENSURE_ASCII)


def encode_result(result: object) -> bytes:
    """The response body for a handler's return value: JSON (``None`` is ``null``), or the
    bytes themselves when the handler returned bytes. Raises ``Fault`` (MarshalError)."""
    if isinstance(result, (bytes, bytearray)):
        return bytes(result)
    try:
        return _PLAIN_ENCODER.encode(result).encode("utf-8")
    except (TypeError, ValueError):
        pass  # a Decimal, or something that cannot be marshalled: said below
    encoder = _ResultEncoder()
    try:
        text = encoder.encode(result)
    except Exception as exc:
        raise Fault(MARSHAL_ERROR, f"Unable to marshal response: {exc}") from exc
    if encoder.decimals:
        text = _DECIMAL_PLACEHOLDER.sub(lambda m: encoder.decimals[int(m.group(1))], text)
    return text.encode("utf-8")


def decode_event(body: bytes) -> Any:
    """The handler's ``event`` from the raw body. Raises ``Fault`` (UnmarshalError)."""
    try:
        return json.loads(body)
    except ValueError as exc:
        raise Fault(UNMARSHAL_ERROR, f"Unable to unmarshal input: {exc}") from exc


def flush_output() -> None:
    """Push everything printed so far into the log pipe. A user who closed or replaced
    ``sys.stdout`` with something odd must not break the runtime, so failures are ignored."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _line_buffer_output() -> None:
    # Lines reach the pipe as they are printed (a crash loses nothing); partial lines are
    # flushed before each post.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)


def _install_exit_builtins() -> None:
    # ``exit()``/``quit()`` come from the site module, which environments run without (-S).
    def _exit(code: object = None) -> NoReturn:
        raise SystemExit(code)

    for name in ("exit", "quit"):
        if not hasattr(builtins, name):
            setattr(builtins, name, _exit)


def _extend_sys_path(environ: Mapping[str, str]) -> None:
    # Lambda's order (https://docs.aws.amazon.com/lambda/latest/dg/python-package.html): the
    # function's code, then the layers' directories, then PYTHONPATH (the interpreter was
    # started with -E and did not read it): $LAMBDA_RUNTIME_DIR, where the runtime's boto3
    # is, so that a copy the function or a layer brings is the one imported.
    layers = f"{_OPT_PYTHON}/lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages"
    entries = [environ.get("LAMBDA_TASK_ROOT"), layers, _OPT_PYTHON]
    entries += (environ.get("PYTHONPATH") or "").split(os.pathsep)
    position = 0
    for entry in entries:
        if entry and entry not in sys.path[:position]:
            sys.path.insert(position, entry)
            position += 1


def _post_error(client: ChannelClient | RuntimeClient, logs: log_format.RequestLogHandler,
                request_id: str | None, error: dict[str, Any]) -> None:
    # The error's log entry is in the function's log format (one JSON record with JSON).
    sys.stdout.write(log_format.json_error_entry(error) if logs.json_format else log_text(error))
    flush_output()
    body = json.dumps(error, ensure_ascii=_ENSURE_ASCII).encode("utf-8")
    if request_id is None:
        client.post_init_error(error["errorType"], body)
    else:
        client.post_error(request_id, error["errorType"], body)


#: What a streamed response is sent as: the chunks are the handler's own bytes.
_STREAM_CONTENT_TYPE = "application/octet-stream"


def _chunk(item: object) -> bytes:
    """A streamed chunk: bytes as they are, str in UTF-8. Raises ``Fault`` (MarshalError)."""
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    if isinstance(item, str):
        return item.encode("utf-8")
    raise Fault(MARSHAL_ERROR, f"Unable to marshal response: a streamed chunk must be bytes or "
                               f"str, not {type(item).__name__}")


def _stream(client: ChannelClient | RuntimeClient, logs: log_format.RequestLogHandler,
            request_id: str, chunks: types.GeneratorType[object, None, object]) -> None:
    """Stream what the generator ``chunks`` yields as the response of ``request_id``; an
    exception it raises ends the stream with that error."""
    client.begin_stream(request_id, _STREAM_CONTENT_TYPE)
    try:
        for item in chunks:
            data = _chunk(item)
            if data:
                flush_output()
                client.write_stream(data)
    except Fault as fault:
        error = fault.to_error(request_id)
    except Exception as exc:
        error = exception_error(exc, request_id)
    else:
        flush_output()
        client.end_stream(None, None)
        return
    sys.stdout.write(log_format.json_error_entry(error) if logs.json_format else log_text(error))
    flush_output()
    client.end_stream(error["errorType"],
                      json.dumps(error, ensure_ascii=_ENSURE_ASCII).encode("utf-8"))


def _invoke(client: ChannelClient | RuntimeClient, logs: log_format.RequestLogHandler,
            handler: Handler, settings: FunctionSettings, invocation: Invocation) -> None:
    """Run one invocation and post its outcome. Only ``Exception``s are reported: a
    ``SystemExit`` from user code ends the environment, as on AWS."""
    request_id = invocation.request_id
    try:
        event = decode_event(invocation.body)
        context = make_context(settings, invocation)
        result = handler(event, context)
        streamed = isinstance(result, types.GeneratorType)
        body = b"" if streamed else encode_result(result)
    except Fault as fault:
        error = fault.to_error(request_id)
    except Exception as exc:
        error = exception_error(exc, request_id)
    else:
        if isinstance(result, types.GeneratorType):
            _stream(client, logs, request_id, result)
            return
        flush_output()
        client.post_response(request_id, body)
        return
    _post_error(client, logs, request_id, error)


def main(channel_fd: int | None = None) -> int:
    """Run the runtime in this process; returns the exit status (1 after an INIT error).
    Never returns while the Runtime API keeps handing out events.

    ``channel_fd`` is the runtime channel's socket (``channel.py``) when the platform forked
    this environment with one; otherwise the runtime speaks HTTP to
    ``AWS_LAMBDA_RUNTIME_API``."""
    environ: MutableMapping[str, str] = os.environ
    _line_buffer_output()
    _install_exit_builtins()
    address = environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address and channel_fd is None:
        sys.stderr.write("strato runtime: AWS_LAMBDA_RUNTIME_API is not set\n")
        return 1
    _extend_sys_path(environ)
    try:
        client = ChannelClient(channel_fd) if channel_fd is not None else RuntimeClient(address or "")
        logs = log_format.install(environ.get("AWS_LAMBDA_LOG_FORMAT"),
                                  environ.get("AWS_LAMBDA_LOG_LEVEL"))
        try:
            handler = load_handler(environ.get("_HANDLER", ""))
        except Fault as fault:
            _post_error(client, logs, None, fault.to_error())
            return 1
        except Exception as exc:
            _post_error(client, logs, None, exception_error(exc))
            return 1
        settings = FunctionSettings(environ)
        while True:
            invocation = client.next_invocation()
            logs.request_id = invocation.request_id
            if invocation.trace_id:
                environ["_X_AMZN_TRACE_ID"] = invocation.trace_id
            elif "_X_AMZN_TRACE_ID" in environ:
                del environ["_X_AMZN_TRACE_ID"]
            _invoke(client, logs, handler, settings, invocation)
    except RuntimeApiError as exc:
        flush_output()
        sys.stderr.write(f"strato runtime: {exc}\n")
        sys.stderr.flush()
        return 1
