"""A function's log through the CloudWatch Logs API (FilterLogEvents, GetLogEvents), driven
by boto3's ``logs`` client against a real strato server, held against AWS's recording."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.e2e.conftest import CreateFunction, StratoServer, client_for
from tests.e2e.recordings import assert_matches, recorded

#: AWS's recording test's handler and event: print a body of several lines.
PRINTER = {"index.py": "def handler(event, context):\n    print(event['body'])\n"}


def _all_events(logs: Any, group: str, request_id: str) -> list[dict[str, Any]]:
    """FilterLogEvents of ``group`` once the REPORT line of ``request_id`` is stored (the
    writer stores in batches), within a deadline."""
    deadline = time.monotonic() + 10
    while True:
        events: list[dict[str, Any]] = logs.filter_log_events(logGroupName=group)["events"]
        if any(e["message"].startswith(f"REPORT RequestId: {request_id}") for e in events):
            return events
        assert time.monotonic() < deadline, [e["message"] for e in events]
        time.sleep(0.05)  # polling for a condition, bounded


def test_log_event_messages_keep_their_newline(
    strato: StratoServer, lambda_client: Any, create_function: CreateFunction, function_name: str
) -> None:
    """Each line a function prints is one event whose message ends with the line's newline,
    a carriage return kept inside it, START/END/REPORT lines alike (AWS's
    test_multi_line_prints), through FilterLogEvents and GetLogEvents."""
    expected = recorded("logs.text.multi_line_prints", function_name=function_name)
    create_function(PRINTER, handler="index.handler", runtime="python3.13")
    response = lambda_client.invoke(FunctionName=function_name,
                                    Payload=json.dumps({"body": expected["request"]["body"]}).encode())
    request_id = response["ResponseMetadata"]["RequestId"]
    logs = client_for(strato.endpoint, "logs")
    group = f"/aws/lambda/{function_name}"
    filtered = [e["message"] for e in _all_events(logs, group, request_id)]
    stream = logs.describe_log_streams(logGroupName=group)["logStreams"][0]["logStreamName"]
    got = [e["message"] for e in logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]]
    assert got == filtered
    # AWS's first line, INIT_START, names its runtime build; strato writes no such line.
    assert_matches(filtered, expected["value"][1:], path="logs.text.multi_line_prints")
