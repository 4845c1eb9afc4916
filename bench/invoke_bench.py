"""Invoke benchmark: strato beside the reference data path, measured in the same run.

The reference (``reference-faas``: ``mini_faas.py``, an Invoke + Runtime API server on one
uvloop event loop, with ``mini_runtime.py`` workers; no authentication, sandbox, persistence or
logs) is the fastest a Python data path goes on this machine. Each run measures it and then
strato, one after the other (reference, strato, reference, strato…), so that both see the same
machine; the figures are the medians of ``--runs`` runs, and each ratio (strato ÷ reference)
is the median of the per-run ratios. On a shared machine absolute figures drift from one
minute to the next: the ratios are the figures to compare.

Both are driven by the same client code with the same sample counts:

- warm latency p50/p99: ``WARM_SAMPLES`` sequential invokes on one keep-alive connection,
  pre-built request bytes (after ``WARM_UP`` unmeasured ones);
- invokes/s at 8 and at 32 keep-alive connections: wrk with one thread (C, so the client takes
  little of the 2 cores), after a 1 s warm-up; an asyncio client when wrk is not installed.

strato alone: cold start p50/p99 (a new environment → result, ``COLD_SAMPLES`` per run), the
idle RSS of the ``strato serve`` process after a few warm invokes, and the same warm figures
through an alias routing 90/10 between two versions. strato serves a no-op Python function
(``--memory``, default 1,769 MB: one vCPU) in the sandbox tier the host allows.

strato's requests are signed (SigV4, as every client of strato must; ``--auth none`` measures an
unauthenticated server for comparison). The server is started with an administrator key pair
(``STRATO_ADMIN_CREDENTIALS``); each phase signs its request afresh with botocore's signer
before it starts, outside the timed part, and replays it for the phase: a signature stays valid
for 5 minutes and the server verifies every request in full (nothing is cached per signature),
so a replayed request costs the server what a fresh one does. ``--seconds`` is therefore capped
well under 5 minutes.

Results go to ``bench/results/invoke.json`` (every run, the medians, the ratios) and to the
README table between the ``bench:invoke`` markers. These are measurements, not tests: nothing
asserts, the targets are stated beside the figures.
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
from dataclasses import dataclass
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
#: Where the reference data path is, unless --reference or this variable says otherwise.
REFERENCE_ENV = "STRATO_BENCH_REFERENCE"
DEFAULT_REFERENCE = ROOT.parent / "shared" / "reference-faas"
#: Runtime workers the reference is started with (as its own reference_bench.py does).
REFERENCE_WORKERS = 4
WARM_UP = 200
WARM_SAMPLES = 5000
COLD_SAMPLES = 30
LOAD_CONNECTIONS = (8, 32)


@dataclass(frozen=True)
class Target:
    """A server invokes are sent to: strato (requests signed unless ``--auth none``) or the
    reference (never signed)."""

    port: int
    signed: bool

    def headers(self, host: str, name: str, body: bytes = b"{}") -> dict[str, str]:
        """The authentication headers of an invoke of ``name`` sent to ``host``, signed now."""
        if not self.signed:
            return {}
        return sign("POST", f"http://{host}/2015-03-31/functions/{name}/invocations", body,
                    access_key=ACCESS_KEY, secret_key=SECRET_KEY)


# --- the servers ---------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(data_dir: Path, auth: str) -> tuple[subprocess.Popen[str], int]:
    """``strato serve`` on a free port, returned once it listens."""
    port = free_port()
    env = {**os.environ, "STRATO_ADMIN_CREDENTIALS": f"{ACCESS_KEY}:{SECRET_KEY}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "strato.cli.main", "serve", "--port", str(port), "--data-dir",
         str(data_dir), "--log-level", "warning", "--keep-alive", "600", "--auth", auth],
        stdout=subprocess.PIPE, text=True, env=env,
    )
    assert process.stdout is not None
    process.stdout.readline()
    return process, port


def reference_dir(given: str | None) -> Path:
    """The reference's directory (``--reference``, else ``$STRATO_BENCH_REFERENCE``, else
    ``../shared/reference-faas`` beside the repository); exits with the reason if it lacks the
    reference's server or runtime."""
    directory = Path(given or os.environ.get(REFERENCE_ENV) or DEFAULT_REFERENCE)
    missing = [name for name in ("mini_faas.py", "mini_runtime.py") if not (directory / name).is_file()]
    if missing:
        sys.exit(f"invoke_bench: the reference data path is not at {directory} (no "
                 f"{', '.join(missing)}): give its directory with --reference or ${REFERENCE_ENV}")
    return directory


def start_reference(directory: Path) -> tuple[list[subprocess.Popen[bytes]], int]:
    """The reference's runtime workers and server (uvloop), with this interpreter, in the
    order to stop them; returned once the server accepts connections (a worker's first /next
    may come later: the warm-up invokes wait for it)."""
    port = free_port()
    server = subprocess.Popen([sys.executable, str(directory / "mini_faas.py"), str(port), "uvloop"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                sys.exit(f"invoke_bench: the reference server in {directory} did not start "
                         "(is uvloop installed for this interpreter?)")
            time.sleep(0.05)
    workers = [subprocess.Popen([sys.executable, str(directory / "mini_runtime.py"), str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for _ in range(REFERENCE_WORKERS)]
    return [*workers, server], port


# --- the client ----------------------------------------------------------------------------

def request_bytes(target: Target, name: str, body: bytes = b"{}") -> bytes:
    """A whole invoke request (signed now for strato: valid for 5 minutes)."""
    head = "".join(f"{k}: {v}\r\n" for k, v in target.headers("bench", name, body).items())
    return (f"POST /2015-03-31/functions/{name}/invocations HTTP/1.1\r\nHost: bench\r\n{head}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def read_response(sock: socket.socket, buffer: bytearray) -> None:
    """Read one response from ``sock`` (bytes beyond it stay in ``buffer``); raises unless 200."""
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


def warm_latency(target: Target, name: str, count: int) -> list[float]:
    """``count`` sequential invokes on one keep-alive connection: each one's latency in µs."""
    sock = socket.create_connection(("127.0.0.1", target.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data, buffer, samples = request_bytes(target, name), bytearray(), []
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


def wrk_script(target: Target, name: str) -> str:
    """wrk's Lua settings: an invoke (signed now for ``127.0.0.1:port``, wrk's Host header)."""
    headers = target.headers(f"127.0.0.1:{target.port}", name)
    return WRK_SCRIPT + "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())


def run_wrk(wrk: str, target: Target, name: str, connections: int, seconds: float) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(wrk_script(target, name))
    url = f"http://127.0.0.1:{target.port}/2015-03-31/functions/{name}/invocations"
    try:
        return subprocess.run([wrk, "-t1", f"-c{connections}", f"-d{int(seconds)}s", "-s", script.name, url],
                              capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)


def throughput(target: Target, name: str, connections: int, seconds: float) -> float:
    """Invokes per second with ``connections`` keep-alive connections, after a 1 s warm-up:
    wrk (one thread) when it is installed, else an asyncio client."""
    wrk = shutil.which("wrk")
    if wrk:
        run_wrk(wrk, target, name, connections, 1)
        out = run_wrk(wrk, target, name, connections, seconds)
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
        data = request_bytes(target, name)
        warm_stop = time.perf_counter() + 1.0
        await asyncio.gather(*(_client(target.port, data, warm_stop, [0]) for _ in range(connections)))
        started = time.perf_counter()
        await asyncio.gather(*(_client(target.port, data, started + seconds, counter)
                               for _ in range(connections)))
        return counter[0] / (time.perf_counter() - started)

    return asyncio.run(run())


def cold_starts(client: Any, target: Target, name: str, count: int) -> list[float]:
    """``count`` invokes each right after a configuration change (so each needs a new
    environment): each one's latency in ms."""
    sock = socket.create_connection(("127.0.0.1", target.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer, samples = bytearray(), []
    for i in range(count):
        client.update_function_configuration(FunctionName=name, Description=f"cold {i}")
        client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
        data = request_bytes(target, name)  # signed outside the timed part
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


# --- one run of each -----------------------------------------------------------------------

def warm_and_load(target: Target, name: str, seconds: float) -> dict[str, float]:
    """The figures measured alike on strato and on the reference."""
    warm_latency(target, name, WARM_UP)
    warm = warm_latency(target, name, WARM_SAMPLES)
    figures = {"warm_p50_us": percentile(warm, 0.5), "warm_p99_us": percentile(warm, 0.99)}
    for connections in LOAD_CONNECTIONS:
        figures[f"throughput_{connections}"] = throughput(target, name, connections, seconds)
    return figures


def reference_run(directory: Path, seconds: float) -> dict[str, float]:
    processes, port = start_reference(directory)
    try:
        return warm_and_load(Target(port, signed=False), "noop", seconds)
    finally:
        for process in processes:
            process.kill()
            process.wait()


def strato_run(seconds: float, auth: str, memory: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data_dir:
        process, port = start(Path(data_dir), auth)
        target = Target(port, signed=auth != "none")
        try:
            client = boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{port}",
                                  region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                                  aws_secret_access_key=SECRET_KEY)
            client.create_function(FunctionName="noop", Runtime="python3.11", Handler="app.handler",
                                   Role="arn:aws:iam::000000000000:role/bench",
                                   Code={"ZipFile": make_zip(NOOP)}, MemorySize=memory)
            client.get_waiter("function_active_v2").wait(FunctionName="noop")
            warm_latency(target, "noop", WARM_UP)
            idle_rss = rss_mb(process.pid)
            figures = warm_and_load(target, "noop", seconds)
            alias = routed_alias(client, "noop")
            warm_latency(target, alias, WARM_UP)
            alias_warm = warm_latency(target, alias, WARM_SAMPLES)
            alias_t8 = throughput(target, alias, 8, seconds)
            cold = cold_starts(client, target, "noop", COLD_SAMPLES)
        finally:
            process.terminate()
            process.wait(timeout=30)
    return {
        **figures,
        "cold_p50_ms": percentile(cold, 0.5), "cold_p99_ms": percentile(cold, 0.99),
        "idle_rss_mb": idle_rss,
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


# --- the report ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str  # "us", "ms", "MB" or "/s"
    target: str = ""


def figures(client: str) -> list[Figure]:
    """The table's rows, with the targets of issue 10."""
    return [
        Figure("warm_p50_us", "warm invoke latency p50 (sequential, one connection)", "us", "≤ 1.2×"),
        Figure("warm_p99_us", "warm invoke latency p99", "us", "≤ 1 ms"),
        Figure("throughput_8", f"invokes/s, 8 connections ({client})", "/s", "≥ 0.8×"),
        Figure("throughput_32", f"invokes/s, 32 connections ({client})", "/s", "≥ 0.8×"),
        Figure("cold_p50_ms", "cold start (new environment → result) p50", "ms", "≤ 5 ms"),
        Figure("cold_p99_ms", "cold start p99", "ms", "≤ 20 ms"),
        Figure("idle_rss_mb", "idle RSS of the platform process", "MB", "≤ 60 MB"),
        Figure("alias_warm_p50_us", "through an alias routing 90/10: warm p50", "us"),
        Figure("alias_warm_p99_us", "through that alias: warm p99", "us"),
        Figure("alias_throughput_8", f"through that alias: invokes/s, 8 connections ({client})", "/s"),
    ]


def show(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "us":
        return f"{value:.0f} µs"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:.0f}"


def table(summary: dict[str, dict[str, float]], args: argparse.Namespace, client: str,
          sandbox: str) -> str:
    rows = [
        f"| figure (median of {args.runs} runs, reference and strato alternating; {os.cpu_count()} "
        f"shared cores; strato: auth {args.auth}, sandbox {sandbox}, function {args.memory} MB) "
        "| strato | reference | strato ÷ reference (median of the runs' ratios) | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for figure in figures(client):
        ratio = summary["ratio"].get(figure.key)
        rows.append(
            f"| {figure.label} | {show(summary['strato'][figure.key], figure.unit)} | "
            f"{show(summary['reference'].get(figure.key), figure.unit)} | "
            f"{'—' if ratio is None else f'{ratio:.2f}×'} | {figure.target or '—'} |")
    return "\n".join(rows)


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each load phase")
    parser.add_argument("--auth", choices=("sigv4", "none"), default="sigv4",
                        help="sigv4 (default): every request to strato signed and verified; "
                             "none: an unauthenticated server, for comparison")
    parser.add_argument("--memory", type=int, default=1769,
                        help="MemorySize of the benchmarked function (default 1769 MB: one full "
                             "vCPU, so the figures measure strato, not the function's CPU share)")
    parser.add_argument("--reference", metavar="DIR",
                        help=f"the reference data path's directory (default ${REFERENCE_ENV}, "
                             f"else {DEFAULT_REFERENCE})")
    args = parser.parse_args()
    if args.auth == "sigv4" and args.seconds > MAX_SIGNED_SECONDS:
        parser.error(f"a signature is valid for 5 minutes: keep --seconds at most {MAX_SIGNED_SECONDS}")
    reference = reference_dir(args.reference)
    runs = []
    for _ in range(args.runs):
        measured_reference = reference_run(reference, args.seconds)
        measured_strato = strato_run(args.seconds, args.auth, args.memory)
        ratio = {key: measured_strato[key] / value for key, value in measured_reference.items()}
        runs.append({"reference": measured_reference, "strato": measured_strato, "ratio": ratio})
    summary = {side: median_of([run[side] for run in runs]) for side in ("strato", "reference", "ratio")}
    client = "wrk -t1" if shutil.which("wrk") else "asyncio client"
    sandbox = sandbox_tier()
    result = {"runs": runs, "median": summary, "cpus": os.cpu_count(), "load_client": client,
              "auth": args.auth, "memory_mb": args.memory, "sandbox": sandbox,
              "reference": str(reference), "reference_workers": REFERENCE_WORKERS,
              "warm_samples": WARM_SAMPLES, "cold_samples": COLD_SAMPLES, "seconds": args.seconds,
              "targets": {figure.key: figure.target for figure in figures(client) if figure.target},
              "date": time.strftime("%Y-%m-%d")}
    out = ROOT / "bench" / "results" / "invoke.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    rendered = table(summary, args, client, sandbox)
    print(rendered)
    write_table("invoke", rendered)


if __name__ == "__main__":
    main()
