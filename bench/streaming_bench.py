"""Response streaming benchmark: time to first byte and total time of a streamed response.

A Python generator handler (strato's way to stream from Python) yields a chunk, sleeps 200 ms
and yields another; boto3's ``invoke_with_response_stream`` reads the event stream. Time to
first byte is from sending the request to the first ``PayloadChunk`` read by the client, total
time to the ``InvokeComplete``; a buffered response would make the first byte wait for the
whole 200 ms. Warm invocations only (one unmeasured first). Each run starts its own
``strato serve``; the figures are medians over ``--runs`` runs of each run's p50 and p99.

Results go to ``bench/results/streaming.json`` and to the README table between the
``bench:streaming`` markers. Measurements, not tests: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.readme_table import write_table  # noqa: E402
from tests.conftest import make_zip  # noqa: E402

HANDLER = """import time

def handler(event, context):
    yield "first chunk"
    time.sleep(0.2)
    yield "second chunk"
"""
ACCESS_KEY = "bench"
SECRET_KEY = secrets.token_urlsafe(30)
ROLE = "arn:aws:iam::000000000000:role/lambda-role"
RESULTS = ROOT / "bench" / "results" / "streaming.json"


def start(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "STRATO_ADMIN_CREDENTIALS": f"{ACCESS_KEY}:{SECRET_KEY}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "strato.cli.main", "serve", "--port", "0", "--data-dir",
         str(data_dir), "--log-level", "warning"], stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    banner = process.stdout.readline()
    endpoint = banner.split("listening on ", 1)[1].split()[0].rstrip(",")
    return process, endpoint


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def one_run(samples: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data_dir:
        process, endpoint = start(Path(data_dir))
        try:
            client = boto3.client(
                "lambda", endpoint_url=endpoint, region_name="us-east-1",
                aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                config=Config(retries={"max_attempts": 1}, read_timeout=60))
            client.create_function(FunctionName="streamer", Runtime="python3.11", Role=ROLE,
                                   Handler="app.handler",
                                   Code={"ZipFile": make_zip({"app.py": HANDLER})})
            client.get_waiter("function_active_v2").wait(FunctionName="streamer")
            first: list[float] = []
            total: list[float] = []
            for index in range(samples + 1):
                started = time.perf_counter()
                response = client.invoke_with_response_stream(FunctionName="streamer",
                                                              Payload=b"{}")
                first_at = None
                for event in response["EventStream"]:
                    if "PayloadChunk" in event and first_at is None:
                        first_at = time.perf_counter()
                ended = time.perf_counter()
                if index and first_at is not None:  # the first is a cold start
                    first.append((first_at - started) * 1000)
                    total.append((ended - started) * 1000)
        finally:
            process.terminate()
            process.wait(timeout=20)
    return {"ttfb_p50_ms": statistics.median(first), "ttfb_p99_ms": percentile(first, 0.99),
            "total_p50_ms": statistics.median(total), "total_p99_ms": percentile(total, 0.99),
            "samples": len(first)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=30, help="warm invocations per run")
    args = parser.parse_args()
    runs = [one_run(args.samples) for _ in range(args.runs)]
    medians = {key: statistics.median(run[key] for run in runs)
               for key in ("ttfb_p50_ms", "ttfb_p99_ms", "total_p50_ms", "total_p99_ms")}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"runs": runs, "medians": medians}, indent=2) + "\n")
    table = "\n".join([
        f"| figure (median of {args.runs} runs of {args.samples} warm invocations; 2 shared "
        "cores; a Python generator: a chunk, 200 ms, a chunk) | p50 | p99 |",
        "| --- | --- | --- |",
        f"| time to first byte (request sent → first PayloadChunk read) | "
        f"{medians['ttfb_p50_ms']:.2f} ms | {medians['ttfb_p99_ms']:.2f} ms |",
        f"| total (request sent → InvokeComplete read) | {medians['total_p50_ms']:.2f} ms | "
        f"{medians['total_p99_ms']:.2f} ms |",
    ])
    write_table("streaming", table)
    print(table)


if __name__ == "__main__":
    main()
