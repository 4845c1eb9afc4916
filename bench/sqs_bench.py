"""SQS event source mapping benchmark: messages per second end to end, from strato's
built-in queue through a mapping to a no-op function.

Each run starts strato, deploys a no-op Python function (``--memory`` MB), creates a built-in
queue, fills it with ``--messages`` messages while the mapping is disabled, then enables the
mapping and times until the queue is empty (every message received, invoked in a batch and
deleted). Configurations: BatchSize 10 (no window) and BatchSize 100 with a 1 s window, both at
the default concurrency (up to 5 batches at once), and BatchSize 10 with
``ScalingConfig.MaximumConcurrency`` 20. A last phase sends one message at a time to an idle
mapping and times it until it is deleted (latency, p50/p99 of ``--latency-samples``).

Figures are the median of ``--runs`` runs; they go to ``bench/results/sqs.json`` and to the
README table between the ``bench:sqs`` markers. Measurements, not tests: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.readme_table import write_table  # noqa: E402
from tests.conftest import make_zip  # noqa: E402

NOOP = {"app.py": "def handler(event, context):\n    return None\n"}
ACCESS_KEY = "bench"
SECRET_KEY = secrets.token_urlsafe(30)
ROLE = "arn:aws:iam::000000000000:role/bench"
#: (label, CreateEventSourceMapping settings)
CONFIGURATIONS: list[tuple[str, dict[str, Any]]] = [
    ("batch 10", {"BatchSize": 10}),
    ("batch 100, window 1 s", {"BatchSize": 100, "MaximumBatchingWindowInSeconds": 1}),
    ("batch 10, max concurrency 20", {"BatchSize": 10, "ScalingConfig": {"MaximumConcurrency": 20}}),
]


def start(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "STRATO_ADMIN_CREDENTIALS": f"{ACCESS_KEY}:{SECRET_KEY}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "strato.cli.main", "serve", "--port", str(port), "--data-dir",
         str(data_dir), "--log-level", "warning", "--keep-alive", "600"],
        stdout=subprocess.PIPE, text=True, env=env,
    )
    assert process.stdout is not None
    process.stdout.readline()
    return process, f"http://127.0.0.1:{port}"


def client(endpoint: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                        config=Config(retries={"max_attempts": 3}, max_pool_connections=16))


def fill(sqs: Any, url: str, count: int) -> None:
    """Send ``count`` messages in batches of 10 from 8 threads."""
    def send(start: int) -> None:
        entries = [{"Id": str(i), "MessageBody": json.dumps({"n": start + i})}
                   for i in range(min(10, count - start))]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(0, count, 10)))


def depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def drain_rate(lam: Any, sqs: Any, function: str, label: str, settings: dict[str, Any],
               messages: int) -> float:
    """Messages per second through a mapping with ``settings``, from a full queue to empty."""
    name = "q-" + "".join(c if c.isalnum() else "-" for c in label)
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    fill(sqs, url, messages)
    mapping = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function,
                                              Enabled=False, **settings)["UUID"]
    started = time.perf_counter()
    lam.update_event_source_mapping(UUID=mapping, Enabled=True)
    while depth(sqs, url) > 0:
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    lam.delete_event_source_mapping(UUID=mapping)
    return messages / elapsed


def latencies(lam: Any, sqs: Any, function: str, samples: int) -> list[float]:
    """Seconds from SendMessage to the message's deletion, one message at a time."""
    url = sqs.create_queue(QueueName="q-latency")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    mapping = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function)["UUID"]
    found: list[float] = []
    for n in range(samples + 1):
        started = time.perf_counter()
        sqs.send_message(QueueUrl=url, MessageBody=str(n))
        while depth(sqs, url) > 0:
            time.sleep(0.001)
        if n:  # the first one warms the environment
            found.append(time.perf_counter() - started)
    lam.delete_event_source_mapping(UUID=mapping)
    return found


def one_run(messages: int, memory: int, samples: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="strato-sqs-bench-") as tmp:
        process, endpoint = start(Path(tmp))
        try:
            lam, sqs = client(endpoint, "lambda"), client(endpoint, "sqs")
            lam.create_function(FunctionName="noop", Runtime="python3.12", Role=ROLE,
                                Handler="app.handler", Code={"ZipFile": make_zip(NOOP)},
                                MemorySize=memory)
            lam.get_waiter("function_active_v2").wait(FunctionName="noop")
            result = {label: drain_rate(lam, sqs, "noop", label, settings, messages)
                      for label, settings in CONFIGURATIONS}
            waits = sorted(latencies(lam, sqs, "noop", samples))
            result["latency_p50_ms"] = 1000 * waits[len(waits) // 2]
            result["latency_p99_ms"] = 1000 * waits[min(len(waits) - 1, int(len(waits) * 0.99))]
            return result
        finally:
            process.terminate()
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--latency-samples", type=int, default=50)
    parser.add_argument("--memory", type=int, default=1769)
    args = parser.parse_args()
    runs = [one_run(args.messages, args.memory, args.latency_samples) for _ in range(args.runs)]
    summary = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    result = {"runs": runs, "median": summary, "messages": args.messages, "cpus": os.cpu_count(),
              "memory_mb": args.memory, "date": time.strftime("%Y-%m-%d")}
    out = ROOT / "bench" / "results" / "sqs.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    rows = [f"| {label} | {summary[label]:.0f} messages/s |" for label, _ in CONFIGURATIONS]
    table = "\n".join([
        f"| SQS mapping, built-in queue → no-op function (median of {args.runs} runs, "
        f"{args.messages} messages, {os.cpu_count()} cores, function {args.memory} MB) | value |",
        "| --- | --- |",
        *rows,
        f"| one message, send → deleted, p50 / p99 | {summary['latency_p50_ms']:.1f} ms / "
        f"{summary['latency_p99_ms']:.1f} ms |",
    ])
    print(table)
    write_table("sqs", table)


if __name__ == "__main__":
    main()
