"""``strato events <function>`` and ``strato events redrive <function> [--to-version N]``.

Clients of the event ledger (``/_strato/events``, see ``strato.api.ledger_api``), signing
their requests with the credentials the AWS CLI would use, as ``strato logs`` does. The
listing is a table, oldest event first: state, attempts, age, next attempt, last error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

from strato.cli import errors

DEFAULT_ENDPOINT = "http://127.0.0.1:9000"
_COLUMNS = ("REQUEST ID", "STATE", "ATTEMPTS", "AGE", "NEXT ATTEMPT", "CONDITION", "LAST ERROR")


def _signed(method: str, url: str, body: bytes = b"") -> urllib.request.Request:
    """``method url`` signed with SigV4 (service ``lambda``) by botocore."""
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    session = botocore.session.get_session()
    credentials = session.get_credentials()
    if credentials is None:
        raise SystemExit(f"strato: no AWS credentials to sign with: {errors.CREDENTIALS_HINT}")
    region = os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    headers = {"Content-Type": "application/json"} if body else {}
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(credentials.get_frozen_credentials(), "lambda", region).add_auth(request)
    return urllib.request.Request(url, data=body or None, method=method,
                                  headers={k: str(v) for k, v in request.headers.items()})


def _call(method: str, url: str, body: bytes = b"") -> dict[str, Any]:
    try:
        with urllib.request.urlopen(_signed(method, url, body), timeout=60) as response:
            document: dict[str, Any] = json.loads(response.read() or b"{}")
            return document
    except urllib.error.HTTPError as error:
        detail = error.read().decode("utf-8", "replace")
        try:
            parsed = json.loads(detail)
            detail = parsed.get("message") or parsed.get("Message") or detail
        except ValueError:
            pass
        code = error.headers.get("x-amzn-ErrorType", "").split(":")[0] or str(error.code)
        line = f"strato: {code}: {detail}"
        if code in ("UnrecognizedClientException", "InvalidSignatureException"):
            line += f" ({errors.CREDENTIALS_HINT})"
        raise SystemExit(line) from error
    except urllib.error.URLError as error:
        endpoint = url.split("/_strato/")[0]
        raise SystemExit(errors.unreachable(endpoint, error.reason)) from error
    except OSError as error:  # a connection reset or timed out mid-answer
        raise SystemExit(errors.unreachable(url.split("/_strato/")[0], error)) from error


def _age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def table(events: list[dict[str, Any]]) -> str:
    """The ledger's events as a table with aligned columns."""
    rows = [_COLUMNS] + [
        (e["RequestId"], e["State"], str(e["Attempts"]), _age(float(e["AgeSeconds"])),
         e["NextAttemptAt"] or "-", e["Condition"] or "-", (e["LastError"] or "-")[:80])
        for e in events
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def _list(args: argparse.Namespace, function: str) -> int:
    events: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    marker: str | None = None
    while True:
        query: dict[str, str] = {"function": function, "limit": "1000"}
        if args.state:
            query["state"] = args.state
        if marker:
            query["marker"] = marker
        page = _call("GET", f"{args.endpoint_url}/_strato/events?{urlencode(query)}")
        events += page["Events"]
        counts = page["Counts"]
        marker = page.get("NextMarker")
        if not marker or (args.limit and len(events) >= args.limit):
            break
    if args.limit:
        events = events[-args.limit:]
    summary = ", ".join(f"{state} {count}" for state, count in counts.items() if count)
    print(f"events of {function}: {summary or 'none'}")
    if events:
        print(table(events))
    return 0


def _redrive(args: argparse.Namespace, function: str) -> int:
    body: dict[str, str] = {"FunctionName": function}
    if args.to_version is not None:
        body["ToVersion"] = str(args.to_version)
    result = _call("POST", f"{args.endpoint_url}/_strato/events/redrive",
                   json.dumps(body).encode())
    count = result["Redriven"]
    target = f" to version {args.to_version}" if args.to_version is not None else ""
    print(f"re-queued {count} failed event{'s' if count != 1 else ''} of {function}{target}")
    return 0


def run(args: argparse.Namespace) -> int:
    words: list[str] = args.words
    if len(words) == 2 and words[0] == "redrive":
        return _redrive(args, words[1])
    if len(words) == 1:
        if args.to_version is not None:
            print("strato: --to-version is an option of `strato events redrive`", file=sys.stderr)
            return 2
        return _list(args, words[0])
    print("usage: strato events FUNCTION | strato events redrive FUNCTION [--to-version N]",
          file=sys.stderr)
    return 2


def add_parser(commands: Any) -> None:
    """Add ``events`` to the ``strato`` sub-command parsers."""
    parser = commands.add_parser(
        "events", help="list a function's asynchronous events; `events redrive` re-queues failed ones",
        usage="strato events FUNCTION [--state S] | strato events redrive FUNCTION [--to-version N]")
    parser.add_argument("words", nargs="+", metavar="FUNCTION")
    parser.add_argument("--state", default=None,
                        help="only events in these states (comma-separated: queued, in_flight, "
                             "retrying, succeeded, failed)")
    parser.add_argument("--limit", type=int, default=None, help="only the newest N events")
    parser.add_argument("--to-version", default=None,
                        help="redrive: run the re-queued events on this version")
    parser.add_argument("--endpoint-url",
                        default=os.environ.get("STRATO_ENDPOINT", DEFAULT_ENDPOINT))
    parser.set_defaults(run=run)
