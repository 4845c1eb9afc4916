"""Invoke benchmark: starts strato, deploys a no-op Python function, measures with a raw
keep-alive HTTP client (no SDK overhead in the numbers).

Figures: warm invoke latency p50/p99 (sequential), throughput at 8 and 32 concurrent clients,
cold start (new environment → result) p50/p99, idle RSS of the platform. Each figure is the
median of ``--runs`` runs. Results go to ``bench/results/invoke.json`` and to the README table
between the ``bench:invoke`` markers. These are measurements, not tests: nothing asserts.

Requests are signed (SigV4, as every client of strato must; ``--auth none`` measures an
unauthenticated server for comparison). The server is started with an administrator key pair
(``STRATO_ADMIN_CREDENTIALS``); each phase signs its request afresh with botocore's signer
before it starts, outside the timed part, and replays it for the phase: a signature stays valid
for 5 minutes and the server verifies every request in full (nothing is cached per signature),
so a replayed request costs the server what a fresh one does. ``--seconds`` is therefore capped
well under 5 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.readme_table import write_table  # noqa: E402
from tests.conftest import make_zip  # noqa: E402
from tests.support.signing import sign  # noqa: E402

NOOP = {"app.py": "def handler(event, context):\n    return None\n"}
#: The administrator key pair the benchmark's server is started with.
ACCESS_KEY = "bench"
SECRET_KEY = secrets.token_urlsafe(30)
#: Longest --seconds with signed requests: one signature serves a whole phase.
MAX_SIGNED_SECONDS = 240


def start(data_dir: Path, auth: str) -> tuple[subprocess.Popen[str], int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "STRATO_ADMIN_CREDENTIALS": f"{ACCESS_KEY}:{SECRET_KEY}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "strato.cli.main", "serve", "--port", str(port), "--data-dir",
         str(data_dir), "--log-level", "warning", "--keep-alive", "600", "--auth", auth],
        stdout=subprocess.PIPE, text=True, env=env,
    )
    assert process.stdout is not None
    process.stdout.readline()
    return process, port


def signed_headers(host: str, name: str, body: bytes = b"{}") -> dict[str, str]:
    """``X-Amz-Date`` and ``Authorization`` of an invoke of ``name`` sent to ``host``, signed now."""
    return sign("POST", f"http://{host}/2015-03-31/functions/{name}/invocations", body,
                access_key=ACCESS_KEY, secret_key=SECRET_KEY)


def request_bytes(name: str, body: bytes = b"{}") -> bytes:
    """A whole invoke request, freshly signed (valid for 5 minutes)."""
    head = "".join(f"{k}: {v}\r\n" for k, v in signed_headers("bench", name, body).items())
    return (f"POST /2015-03-31/functions/{name}/invocations HTTP/1.1\r\nHost: bench\r\n{head}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def read_response(sock: socket.socket, buffer: bytearray) -> None:
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            match = re.search(rb"content-length: (\d+)", bytes(buffer[:end]).lower())
            total = end + 4 + int(match.group(1) if match else 0)
            if len(buffer) >= total:
                status = bytes(buffer[9:12])
                del buffer[:total]
                if status != b"200":
                    raise RuntimeError(f"invoke failed with {status!r}")
                return
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed")
        buffer += chunk


def warm_latency(port: int, name: str, count: int) -> list[float]:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data, buffer, samples = request_bytes(name), bytearray(), []
    for _ in range(count):
        started = time.perf_counter()
        sock.sendall(data)
        read_response(sock, buffer)
        samples.append((time.perf_counter() - started) * 1e6)
    sock.close()
    return samples


async def _client(port: int, data: bytes, stop_at: float, counter: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.perf_counter() < stop_at:
        writer.write(data)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))  # type: ignore[union-attr]
        await reader.readexactly(length)
        counter[0] += 1
    writer.close()


WRK_SCRIPT = 'wrk.method = "POST"\nwrk.body = "{}"\nwrk.headers["Content-Type"] = "application/json"\n'


def wrk_script(port: int, name: str) -> str:
    """wrk's Lua settings: an invoke signed now for ``127.0.0.1:port`` (wrk's Host header)."""
    headers = signed_headers(f"127.0.0.1:{port}", name)
    return WRK_SCRIPT + "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())


def run_wrk(wrk: str, port: int, name: str, clients: int, seconds: float) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(wrk_script(port, name))
    url = f"http://127.0.0.1:{port}/2015-03-31/functions/{name}/invocations"
    try:
        return subprocess.run([wrk, "-t1", f"-c{clients}", f"-d{int(seconds)}s", "-s", script.name, url],
                              capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)


def throughput(port: int, name: str, clients: int, seconds: float) -> float:
    """Invokes per second with ``clients`` keep-alive connections: wrk (C, one thread) when it
    is installed, so that the client takes little of the 2 cores; else an asyncio client."""
    wrk = shutil.which("wrk")
    if wrk:
        run_wrk(wrk, port, name, clients, 1)
        out = run_wrk(wrk, port, name, clients, seconds)
        if "Non-2xx" in out:
            raise RuntimeError(f"invokes failed under load:\n{out}")
        return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def run() -> float:
        counter = [0]
        data = request_bytes(name)
        # Warm enough environments first, then measure.
        warm_stop = time.perf_counter() + 1.0
        await asyncio.gather(*(_client(port, data, warm_stop, [0]) for _ in range(clients)))
        started = time.perf_counter()
        await asyncio.gather(*(_client(port, data, started + seconds, counter) for _ in range(clients)))
        return counter[0] / (time.perf_counter() - started)

    return asyncio.run(run())


def cold_starts(client: Any, port: int, name: str, count: int) -> list[float]:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer, samples = bytearray(), []
    for i in range(count):
        client.update_function_configuration(FunctionName=name, Description=f"cold {i}")
        client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
        data = request_bytes(name)  # signed outside the timed part
        started = time.perf_counter()
        sock.sendall(data)
        read_response(sock, buffer)
        samples.append((time.perf_counter() - started) * 1e3)
    sock.close()
    return samples


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def one_run(seconds: float, auth: str, memory: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data_dir:
        process, port = start(Path(data_dir), auth)
        try:
            client = boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{port}",
                                  region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                                  aws_secret_access_key=SECRET_KEY)
            client.create_function(FunctionName="noop", Runtime="python3.11", Handler="app.handler",
                                   Role="arn:aws:iam::000000000000:role/bench",
                                   Code={"ZipFile": make_zip(NOOP)}, MemorySize=memory)
            client.get_waiter("function_active_v2").wait(FunctionName="noop")
            warm_latency(port, "noop", 200)
            idle_rss = rss_mb(process.pid)
            warm = warm_latency(port, "noop", 5000)
            alias = routed_alias(client, "noop")
            warm_latency(port, alias, 500)
            alias_warm = warm_latency(port, alias, 5000)
            alias_t8 = throughput(port, alias, 8, seconds)
            cold = cold_starts(client, port, "noop", 30)
            t8 = throughput(port, "noop", 8, seconds)
            t32 = throughput(port, "noop", 32, seconds)
        finally:
            process.terminate()
            process.wait(timeout=30)
    return {
        "warm_p50_us": percentile(warm, 0.5), "warm_p99_us": percentile(warm, 0.99),
        "cold_p50_ms": percentile(cold, 0.5), "cold_p99_ms": percentile(cold, 0.99),
        "throughput_8": t8, "throughput_32": t32, "idle_rss_mb": idle_rss,
        "alias_warm_p50_us": percentile(alias_warm, 0.5),
        "alias_warm_p99_us": percentile(alias_warm, 0.99), "alias_throughput_8": alias_t8,
    }


def routed_alias(client: Any, name: str) -> str:
    """Publish versions 1 and 2 of ``name`` and an alias sending 10% to version 2; returns
    ``name:alias`` (the spelling invokes use)."""
    client.publish_version(FunctionName=name)
    client.update_function_configuration(FunctionName=name, Environment={"Variables": {"VERSION": "2"}})
    client.get_waiter("function_updated_v2").wait(FunctionName=name)
    client.publish_version(FunctionName=name)
    client.create_alias(FunctionName=name, Name="live", FunctionVersion="1",
                        RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})
    return f"{name}:live"


def sandbox_tier() -> str:
    """The tier ``strato serve`` uses on this host (what the figures were measured with)."""
    from strato.config import Settings
    from strato.sandbox import tiers

    return tiers.choose(tiers.probe(), Settings.from_environment().sandbox).value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--auth", choices=("sigv4", "none"), default="sigv4",
                        help="sigv4 (default): every request signed and verified; none: an "
                             "unauthenticated server, for comparison")
    parser.add_argument("--memory", type=int, default=1769,
                        help="MemorySize of the benchmarked function (default 1769 MB: one full "
                             "vCPU, so the figures measure strato, not the function's CPU share)")
    args = parser.parse_args()
    if args.auth == "sigv4" and args.seconds > MAX_SIGNED_SECONDS:
        parser.error(f"a signature is valid for 5 minutes: keep --seconds at most {MAX_SIGNED_SECONDS}")
    runs = [one_run(args.seconds, args.auth, args.memory) for _ in range(args.runs)]
    summary = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    client = "wrk -t1" if shutil.which("wrk") else "asyncio client"
    result = {"runs": runs, "median": summary, "cpus": os.cpu_count(), "load_client": client,
              "auth": args.auth, "memory_mb": args.memory, "sandbox": sandbox_tier(),
              "date": time.strftime("%Y-%m-%d")}
    out = ROOT / "bench" / "results" / "invoke.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    table = "\n".join([
        f"| figure (median of {args.runs} runs, {os.cpu_count()} cores, auth {args.auth}, "
        f"sandbox {result['sandbox']}, function {args.memory} MB) | value |",
        "| --- | --- |",
        f"| warm invoke latency p50 / p99 | {summary['warm_p50_us']:.0f} µs / {summary['warm_p99_us']:.0f} µs |",
        f"| throughput, 8 clients ({client}) | {summary['throughput_8']:.0f} invokes/s |",
        f"| throughput, 32 clients ({client}) | {summary['throughput_32']:.0f} invokes/s |",
        f"| cold start (new environment → result) p50 / p99 | {summary['cold_p50_ms']:.2f} ms / {summary['cold_p99_ms']:.2f} ms |",
        f"| idle RSS of the platform process | {summary['idle_rss_mb']:.1f} MB |",
        f"| through an alias routing 90/10 between two versions: warm p50 / p99 | {summary['alias_warm_p50_us']:.0f} µs / {summary['alias_warm_p99_us']:.0f} µs |",
        f"| through that alias: throughput, 8 clients ({client}) | {summary['alias_throughput_8']:.0f} invokes/s |",
    ])
    print(table)
    write_table("invoke", table)


if __name__ == "__main__":
    main()
