"""Asynchronous invocation benchmark: how fast events are accepted (stored durably before the
202) and drained (run by a no-op function).

Figures (each the median of ``--runs`` runs; measurements, not tests: nothing asserts):

- **accept, in process**: the group-commit writer alone on ``events.db`` (``synchronous =
  FULL``: every commit is on disk), ``--concurrency`` accepts outstanding at once, as the
  server's event loop has them; with the mean number of events per commit.
- **accept over HTTP**: signed ``Invoke`` requests with ``InvocationType=Event`` from wrk (one
  thread) on keep-alive connections, each answered 202 once its event is stored. The target
  function runs one event at a time and sleeps, so the queue fills up instead of being drained
  during the measurement.
- **drain**: ``--events`` events queued while the server was down, run by a no-op Python
  function once it starts: events per second from the first success to the last (and from
  the server's start, its own start-up included), and how many execution environments it
  took (warm ones are reused: the drain is not held back by the burst scaling rate).

Results go to ``bench/results/async.json`` and to the README table between the
``bench:async`` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))
from bench.invoke_bench import ACCESS_KEY, SECRET_KEY, start  # noqa: E402
from bench.readme_table import write_table  # noqa: E402
from strato.async_invoke.events import NewEvent  # noqa: E402
from strato.async_invoke.sqlite_events import SqliteEventStore  # noqa: E402
from strato.async_invoke.writer import EventWriter  # noqa: E402
from tests.conftest import make_zip  # noqa: E402
from tests.support.signing import sign  # noqa: E402

NOOP = {"app.py": "def handler(event, context):\n    return None\n"}
SLOW = {"app.py": "import time\ndef handler(event, context):\n    time.sleep(30)\n"}
ROLE = "arn:aws:iam::000000000000:role/bench"


def client(port: int, service: str = "lambda") -> Any:
    return boto3.client(service, endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)


def deploy(lam: Any, name: str, files: dict[str, str], memory: int) -> None:
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": make_zip(files)}, MemorySize=memory)
    lam.get_waiter("function_active_v2").wait(FunctionName=name)


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.wait(timeout=30)


# accept, in process ---------------------------------------------------------------------
async def _accept_in_process(data_dir: Path, events: int, concurrency: int) -> dict[str, float]:
    store = SqliteEventStore(data_dir / "events.db")
    writer = EventWriter(store)
    payload = b'{"bench": true}'
    semaphore = asyncio.Semaphore(concurrency)

    async def accept() -> None:
        async with semaphore:
            await writer.insert(NewEvent(str(uuid.uuid4()), "bench", None, "us-east-1", payload,
                                         time.time()))

    started = time.perf_counter()
    await asyncio.gather(*(accept() for _ in range(events)))
    elapsed = time.perf_counter() - started
    result = {"accept_in_process_per_s": events / elapsed,
              "events_per_commit": writer.committed / max(1, writer.commits)}
    await writer.close()
    store.close()
    return result


def accept_in_process(events: int, concurrency: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data_dir:
        return asyncio.run(_accept_in_process(Path(data_dir), events, concurrency))


# accept over HTTP -----------------------------------------------------------------------
def wrk_script(port: int, name: str) -> str:
    headers = sign("POST", f"http://127.0.0.1:{port}/2015-03-31/functions/{name}/invocations",
                   b"{}", {"X-Amz-Invocation-Type": "Event", "Content-Type": "application/json"},
                   access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    return 'wrk.method = "POST"\nwrk.body = "{}"\n' + "".join(
        f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())


def accept_over_http(port: int, name: str, clients: int, seconds: float) -> float:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("the HTTP accept figure needs wrk (apt-get install wrk)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(wrk_script(port, name))
    url = f"http://127.0.0.1:{port}/2015-03-31/functions/{name}/invocations"
    try:
        out = subprocess.run([wrk, "-t1", f"-c{clients}", f"-d{int(seconds)}s", "-s", script.name,
                              url], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    if "Non-2xx" in out:
        raise RuntimeError(f"accepts failed under load:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


# drain ---------------------------------------------------------------------------------
def succeeded(data_dir: Path) -> int:
    with sqlite3.connect(f"file:{data_dir / 'events.db'}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT COUNT(*) FROM events WHERE state = 'succeeded'").fetchone()[0])


def success_span(data_dir: Path) -> float:
    """Seconds from the first event's success to the last one's."""
    with sqlite3.connect(f"file:{data_dir / 'events.db'}?mode=ro", uri=True) as db:
        first, last = db.execute("SELECT MIN(finished_at), MAX(finished_at) FROM events").fetchone()
    return float(last - first)


def drain(events: int, memory: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        process, port = start(data_dir, "sigv4")
        deploy(client(port), "noop", NOOP, memory)
        stop(process)
        store = SqliteEventStore(data_dir / "events.db")
        now = time.time()
        for first in range(0, events, 10_000):
            batch = [NewEvent(str(uuid.uuid4()), "noop", None, "us-east-1", b"{}", now)
                     for _ in range(first, min(events, first + 10_000))]
            store.atomically(lambda tx, batch=batch: tx.insert(batch))  # type: ignore[misc]
        store.close()
        started = time.perf_counter()
        process, port = start(data_dir, "sigv4")
        try:
            while succeeded(data_dir) < events:
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            span = success_span(data_dir)
            streams = client(port, "logs").describe_log_streams(logGroupName="/aws/lambda/noop")
        finally:
            stop(process)
    return {"drain_per_s": (events - 1) / span, "drain_from_start_per_s": events / elapsed,
            "drain_environments": len(streams["logStreams"])}


def one_run(args: argparse.Namespace) -> dict[str, float]:
    result = accept_in_process(args.events, args.concurrency)
    with tempfile.TemporaryDirectory() as data_dir:
        process, port = start(Path(data_dir), "sigv4")
        try:
            lam = client(port)
            deploy(lam, "slow", SLOW, args.memory)
            lam.put_function_concurrency(FunctionName="slow", ReservedConcurrentExecutions=1)
            accept_over_http(port, "slow", args.clients, 1)
            result["accept_http_per_s"] = accept_over_http(port, "slow", args.clients, args.seconds)
        finally:
            stop(process)
    result.update(drain(args.events, args.memory))
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--events", type=int, default=50_000,
                        help="events accepted in process and drained per run")
    parser.add_argument("--concurrency", type=int, default=512,
                        help="accepts outstanding at once in process")
    parser.add_argument("--clients", type=int, default=256, help="wrk's connections")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--memory", type=int, default=1769)
    args = parser.parse_args()
    runs = [one_run(args) for _ in range(args.runs)]
    summary = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    result = {"runs": runs, "median": summary, "cpus": os.cpu_count(), "events": args.events,
              "concurrency": args.concurrency, "clients": args.clients, "memory_mb": args.memory,
              "date": time.strftime("%Y-%m-%d")}
    out = ROOT / "bench" / "results" / "async.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    table = "\n".join([
        f"| figure (median of {args.runs} runs, {os.cpu_count()} cores, events.db synchronous=FULL) | value |",
        "| --- | --- |",
        f"| accept, in process ({args.concurrency} outstanding, group commit) | "
        f"{summary['accept_in_process_per_s']:.0f} events/s ({summary['events_per_commit']:.0f} per commit) |",
        f"| accept over HTTP, signed, {args.clients} connections (wrk -t1) | "
        f"{summary['accept_http_per_s']:.0f} events/s |",
        f"| drain of {args.events} queued events by a no-op function ({args.memory} MB) | "
        f"{summary['drain_per_s']:.0f} events/s on {summary['drain_environments']:.0f} environments |",
        f"| the same, from the server's start (its start-up included) | "
        f"{summary['drain_from_start_per_s']:.0f} events/s |",
    ])
    print(table)
    write_table("async", table)


if __name__ == "__main__":
    main()
