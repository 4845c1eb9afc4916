"""Function URL benchmark: what serving a URL costs beside a plain Invoke of the same function.

One ``strato serve`` (SigV4 on, sandbox tier the host allows) with one Python function that
answers an HTTP response, a URL of AuthType NONE (public, through its resource policy) and one
of AuthType AWS_IAM on it. Each run measures, one after the other on the same warm
environment, the warm latency of ``WARM_SAMPLES`` sequential requests on one keep-alive
connection (after ``WARM_UP`` unmeasured ones) of:

- ``invoke``: Invoke (signed once per phase and replayed, as ``invoke_bench.py`` does);
- ``url``: a GET of the NONE URL (the event built, the resource policy checked, the result
  mapped to HTTP);
- ``url_iam``: the same GET on the AWS_IAM URL, signed once per phase and replayed (verified in
  full each time).

The figures are the medians over ``--runs`` runs; the ratio (URL p50 ÷ Invoke p50, target at
most 1.2) is the median of the per-run ratios. Results go to ``bench/results/url.json`` and
to the README table between the ``bench:url`` markers. Measurements, not tests: nothing
asserts.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.invoke_bench import (  # noqa: E402
    ACCESS_KEY,
    SECRET_KEY,
    percentile,
    read_response,
    start,
)
from bench.readme_table import write_table  # noqa: E402
from tests.conftest import make_zip  # noqa: E402
from tests.support.signing import sign  # noqa: E402

HANDLER = {"app.py": ("def handler(event, context):\n"
                      "    return {'statusCode': 200, 'body': 'ok'}\n")}
WARM_UP = 200
WARM_SAMPLES = 3000
NAME = "url-bench"


def warm(request: bytes, port: int, count: int) -> list[float]:
    """``count`` sequential requests on one keep-alive connection: each one's latency in µs."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer, samples = bytearray(), []
    for _ in range(count):
        started = time.perf_counter()
        sock.sendall(request)
        read_response(sock, buffer)
        samples.append((time.perf_counter() - started) * 1e6)
    sock.close()
    return samples


def raw(method: str, target: str, host: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n{head}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def requests_of(port: int, none_url: str, iam_url: str) -> dict[str, bytes]:
    """Each phase's request, signed now where it must be (valid for 5 minutes)."""
    host = f"127.0.0.1:{port}"
    invoke = f"/2015-03-31/functions/{NAME}/invocations"
    iam_path = urlsplit(iam_url).path
    return {
        "invoke": raw("POST", invoke, host, sign(
            "POST", f"http://{host}{invoke}", b"{}", access_key=ACCESS_KEY,
            secret_key=SECRET_KEY), b"{}"),
        "url": raw("GET", urlsplit(none_url).path, host, {}),
        "url_iam": raw("GET", iam_path, host, sign(
            "GET", f"http://{host}{iam_path}", b"", access_key=ACCESS_KEY,
            secret_key=SECRET_KEY)),
    }


def setup(port: int) -> tuple[str, str]:
    client: Any = boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{port}",
                               region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                               aws_secret_access_key=SECRET_KEY)
    client.create_function(FunctionName=NAME, Runtime="python3.11", Handler="app.handler",
                           Role="arn:aws:iam::000000000000:role/bench", MemorySize=1769,
                           Code={"ZipFile": make_zip(HANDLER)})
    client.get_waiter("function_active_v2").wait(FunctionName=NAME)
    none_url = client.create_function_url_config(FunctionName=NAME, AuthType="NONE")["FunctionUrl"]
    client.add_permission(FunctionName=NAME, StatementId="public", Principal="*",
                          Action="lambda:InvokeFunctionUrl", FunctionUrlAuthType="NONE")
    client.create_alias(FunctionName=NAME, Name="iam", FunctionVersion="$LATEST")
    iam_url = client.create_function_url_config(FunctionName=NAME, Qualifier="iam",
                                                AuthType="AWS_IAM")["FunctionUrl"]
    return str(none_url), str(iam_url)


def one_run(port: int, none_url: str, iam_url: str) -> dict[str, float]:
    figures: dict[str, float] = {}
    for phase, request in requests_of(port, none_url, iam_url).items():
        warm(request, port, WARM_UP)
        samples = warm(request, port, WARM_SAMPLES)
        figures[f"{phase}_p50_us"] = percentile(samples, 0.5)
        figures[f"{phase}_p99_us"] = percentile(samples, 0.99)
    figures["url_ratio"] = figures["url_p50_us"] / figures["invoke_p50_us"]
    figures["url_iam_ratio"] = figures["url_iam_p50_us"] / figures["invoke_p50_us"]
    return figures


def table(summary: dict[str, float], runs: int) -> str:
    rows = [("Invoke (SigV4)", "invoke", None),
            ("function URL, AuthType NONE", "url", "url_ratio"),
            ("function URL, AuthType AWS_IAM (SigV4)", "url_iam", "url_iam_ratio")]
    lines = [f"| warm request, same function ({runs} runs) | p50 | p99 | p50 ÷ Invoke's (target ≤ 1.2) |",
             "|---|---|---|---|"]
    for label, key, ratio in rows:
        shown = f"{summary[ratio]:.2f}" if ratio else "1"
        lines.append(f"| {label} | {summary[f'{key}_p50_us'] / 1000:.2f} ms | "
                     f"{summary[f'{key}_p99_us'] / 1000:.2f} ms | {shown} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="strato-url-bench-"))
    process, port = start(data, "sigv4")
    try:
        none_url, iam_url = setup(port)
        runs = [one_run(port, none_url, iam_url) for _ in range(args.runs)]
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)
    summary = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    result = {"runs": runs, "median": summary, "target": "url p50 <= 1.2 x invoke p50"}
    out = ROOT / "bench" / "results" / "url.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    rendered = table(summary, args.runs)
    print(rendered)
    write_table("url", rendered)


if __name__ == "__main__":
    main()
