"""A function's logs in the JSON log format, read back through the CloudWatch Logs API
(FilterLogEvents) from a real strato server and held against the shapes AWS documents
(recordings logcfg.python_json_record, logcfg.system_json_record, logcfg.level_filtering)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from tests.e2e.conftest import CreateFunction, StratoServer, client_for
from tests.e2e.recordings import invoke, recorded

#: Logs at every level through ``logging`` (a named logger, extra members, an exception),
#: prints plain text and JSON objects with levels, optionally fails; returns what it was told
#: about its logging.
LOGGER = {"app.py": (
    "import json, logging, os\n"
    "logger = logging.getLogger('orders')\n"
    "def handler(event, context):\n"
    "    logger.debug('debug line')\n"
    "    logger.info('info line')\n"
    "    logger.warning('warning line', extra={'order': 7})\n"
    "    logger.error('error line')\n"
    "    try:\n"
    "        raise ValueError('bad order')\n"
    "    except ValueError:\n"
    "        logger.exception('failed')\n"
    "    print('plain print')\n"
    "    print(json.dumps({'level': 'debug', 'message': 'printed debug'}))\n"
    "    print(json.dumps({'level': 'ERROR', 'message': 'printed error'}))\n"
    "    if event.get('fail'):\n"
    "        raise RuntimeError('boom')\n"
    "    names = ('AWS_LAMBDA_LOG_FORMAT', 'AWS_LAMBDA_LOG_LEVEL', 'AWS_LAMBDA_LOG_GROUP_NAME')\n"
    "    return {**{n: os.environ.get(n) for n in names}, 'context': context.log_group_name}\n"
)}


def _messages(strato: StratoServer, group: str,
              until: Callable[[list[str]], bool]) -> list[str]:
    """The messages of ``group`` once ``until`` holds for them (the writer stores in batches),
    within a deadline."""
    logs = client_for(strato.endpoint, "logs")
    deadline = time.monotonic() + 15
    while True:
        try:
            events = logs.filter_log_events(logGroupName=group)["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        messages = [e["message"] for e in events]
        if until(messages):
            return messages
        assert time.monotonic() < deadline, messages
        time.sleep(0.05)  # polling for a condition, bounded


def _records(messages: list[str]) -> list[Any]:
    """Each message as JSON when it is, else as the text it is."""
    parsed: list[Any] = []
    for message in messages:
        try:
            parsed.append(json.loads(message))
        except ValueError:
            parsed.append(message)
    return parsed


def _has_report(request_id: str) -> Callable[[list[str]], bool]:
    def found(messages: list[str]) -> bool:
        return any(isinstance(r, dict) and r.get("type") == "platform.report"
                   and r["record"]["requestId"] == request_id for r in _records(messages))
    return found


def _of(records: list[Any], request_id: str) -> list[Any]:
    """The records of one invocation: from its platform.start to its platform.report."""
    start = next(i for i, r in enumerate(records) if isinstance(r, dict)
                 and r.get("type") == "platform.start" and r["record"]["requestId"] == request_id)
    end = next(i for i, r in enumerate(records) if i > start and isinstance(r, dict)
               and r.get("type") == "platform.report")
    return records[start:end + 1]


def test_python_logging_as_json_records_with_level_filtering(
    strato: StratoServer, lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    """A Text function switched to JSON with ApplicationLogLevel WARN: its warm environment
    goes (the runtime is told the new format), ``logging`` records become Lambda's JSON
    records, those below WARN are dropped (JSON lines printed included), ``print`` stays
    plain text, and the platform writes platform.start / platform.report records."""
    group = f"/aws/lambda/{function_name}"
    create_function(LOGGER)
    response, text_result = invoke(lambda_client, function_name)
    assert text_result["AWS_LAMBDA_LOG_FORMAT"] is None and text_result["AWS_LAMBDA_LOG_LEVEL"] is None
    text_id = response["ResponseMetadata"]["RequestId"]
    _messages(strato, group, lambda m: f"END RequestId: {text_id}\n" in m)

    lambda_client.update_function_configuration(
        FunctionName=function_name, LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "WARN"})
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=function_name)
    response, result = invoke(lambda_client, function_name)
    assert result["AWS_LAMBDA_LOG_FORMAT"] == "JSON" and result["AWS_LAMBDA_LOG_LEVEL"] == "WARN"
    request_id = response["ResponseMetadata"]["RequestId"]
    records = _of(_records(_messages(strato, group, _has_report(request_id))), request_id)

    system = recorded("logcfg.system_json_record")["value"]
    start, *application, report = records
    assert sorted(start) == system["envelope"] and start["type"] == "platform.start"
    assert sorted(start["record"]) == system["start_record"]
    assert start["record"] == {"requestId": request_id, "version": "$LATEST"}
    assert sorted(report) == system["envelope"]
    assert report["record"]["status"] == "success"
    # A new environment: its first invocation waited for INIT.
    assert sorted(report["record"]["metrics"]) == sorted([*system["report_metrics"], "initDurationMs"])
    assert report["record"]["metrics"]["memorySizeMB"] == 128

    python = recorded("logcfg.python_json_record")["value"]
    logged = [r for r in application if isinstance(r, dict) and "logger" in r]
    assert [(r["level"], r["message"]) for r in logged] == [
        ("WARNING", "warning line"), ("ERROR", "error line"), ("ERROR", "failed")]
    for record in logged:
        assert set(python["keys"]) <= set(record), record
        assert record["logger"] == "orders" and record["requestId"] == request_id
        assert record["timestamp"].endswith("Z")
    assert logged[0]["order"] == 7  # extra= members are part of the record
    failure = logged[2]
    assert set(python["exception_keys"]) <= set(failure)
    assert (failure["errorType"], failure["errorMessage"]) == ("ValueError", "bad order")
    assert failure["location"].endswith(":handler:11")
    assert not set(python["exception_keys"]) & set(logged[0])
    # print is plain text (python["print_is_plain_text"]); a printed JSON line below the
    # level is dropped by the platform, one at or above it kept.
    assert python["print_is_plain_text"] and "plain print\n" in application
    printed = [r["message"] for r in application if isinstance(r, dict) and "logger" not in r]
    assert printed == ["printed error"]
    levels = recorded("logcfg.level_filtering")["value"]["application_order"]
    assert levels.index("WARN") > levels.index("INFO")


def test_an_unhandled_error_is_a_json_record(
    strato: StratoServer, lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    create_function(LOGGER, LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "ERROR"})
    response, payload = invoke(lambda_client, function_name, {"fail": True})
    assert response["FunctionError"] == "Unhandled" and payload["errorType"] == "RuntimeError"
    request_id = response["ResponseMetadata"]["RequestId"]
    group = f"/aws/lambda/{function_name}"
    records = _of(_records(_messages(strato, group, _has_report(request_id))), request_id)
    error = next(r for r in records if isinstance(r, dict) and r.get("errorType") == "RuntimeError")
    assert error["level"] == "ERROR" and error["errorMessage"] == "boom"
    assert error["requestId"] == request_id and error["stackTrace"]
    assert {"timestamp", "level", "errorMessage", "errorType", "requestId", "stackTrace"} == set(error)
    assert records[-1]["record"]["status"] == "error"
    assert not [r for r in records if isinstance(r, dict) and r.get("level") == "WARNING"]


def test_system_log_level_warn_leaves_out_start_and_report(
    strato: StratoServer, lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    """platform.start and platform.report are at the system level INFO (recording
    logcfg.level_filtering): WARN leaves them out; application records still come."""
    assert recorded("logcfg.level_filtering")["value"]["start_report_level"] == "INFO"
    create_function(LOGGER, LoggingConfig={"LogFormat": "JSON", "SystemLogLevel": "WARN"})
    response, _ = invoke(lambda_client, function_name)
    request_id = response["ResponseMetadata"]["RequestId"]

    def error_logged(messages: list[str]) -> bool:
        return any(isinstance(r, dict) and r.get("message") == "error line"
                   and r["requestId"] == request_id for r in _records(messages))
    records = _records(_messages(strato, f"/aws/lambda/{function_name}", error_logged))
    assert not [r for r in records if isinstance(r, dict) and "type" in r]
    assert not [r for r in records if isinstance(r, str) and r.startswith(("START", "END", "REPORT"))]
    # ApplicationLogLevel INFO (the default): the info record is kept, the debug one not.
    messages = [r.get("message") for r in records if isinstance(r, dict)]
    assert "info line" in messages and "debug line" not in messages


def test_a_custom_log_group(
    strato: StratoServer, lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    """Logs go to the LogGroup given, which the function sees in AWS_LAMBDA_LOG_GROUP_NAME and
    its context; the default group gets nothing. The Text format stays as it was."""
    group = f"custom/{function_name}"
    create_function(LOGGER, LoggingConfig={"LogGroup": group})
    response, result = invoke(lambda_client, function_name)
    assert result["AWS_LAMBDA_LOG_GROUP_NAME"] == group and result["context"] == group
    assert result["AWS_LAMBDA_LOG_FORMAT"] is None
    request_id = response["ResponseMetadata"]["RequestId"]
    messages = _messages(strato, group, lambda m: any(
        line.startswith(f"REPORT RequestId: {request_id}") for line in m))
    assert f"START RequestId: {request_id} Version: $LATEST\n" in messages
    assert any(line.startswith("[WARNING]\t") and line.endswith("\twarning line\n") for line in messages)
    logs = client_for(strato.endpoint, "logs")
    try:
        default = logs.filter_log_events(logGroupName=f"/aws/lambda/{function_name}")["events"]
    except logs.exceptions.ResourceNotFoundException:
        default = []
    assert default == []
