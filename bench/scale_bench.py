"""Environments at scale: cold starts, bursts, teardown and density, with the full sandbox.

Every server runs the namespaces tier with internet egress (a bridge and nftables table of
the benchmark's own, so a strato already running here is left alone; loopback only when this
host cannot give egress, which the table then says) and a no-op Python function of
``--memory`` MB. Figures:

- cold start, new environment → result, p50 / p99: the first invoke of each of
  ``--samples`` functions, one after another, 0.2 s apart (a new environment each time,
  the ones before staying warm, as when a function scales out), after ``WARM_UP`` untimed
  ones, over a keep-alive connection with requests signed beforehand;
- ``--functions`` × ``--per-function`` concurrent cold invokes (500 across 50 by default):
  new environments per second from the first request sent to the last answer, successes,
  and the CPU time the server's process tree and the kernel's threads spent per environment
  (schedstat; a figure that shared, busy cores do not distort as much as the rate);
- ``--provisioned`` provisioned environments requested at once on one version: time until
  the configuration is READY, and how many failed;
- ``--held`` provisioned environments, idle: total PSS of the server's whole process tree
  (and per environment), then SIGTERM: time until the server has exited, and whether any
  process, cgroup or network interface of it is left;
- the platform process's resident memory with one function warm and idle;
- the ``--held`` environments' PSS again for functions of ``--density-runtimes`` (the
  interpreter changes how many inherited pages an environment writes: 3.12's immortal
  objects are written to far less).

Cold starts, bursts and provisioning are the median of ``--runs`` runs, each on a fresh
server; the ``--held`` figures come from ``--held-runs`` (1: it is the slowest part).
Results go to ``bench/results/scale.json`` and to the README table between the
``bench:scale`` markers. Measurements, not tests: nothing asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import re
import secrets
import signal
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
from strato.sandbox.network import EgressConfig, EgressNetwork  # noqa: E402
from tests.conftest import make_zip  # noqa: E402
from tests.support.signing import sign  # noqa: E402

NOOP = {"app.py": "def handler(event, context):\n    return None\n"}
ROLE = "arn:aws:iam::000000000000:role/bench"
ACCESS_KEY = "bench"
SECRET_KEY = secrets.token_urlsafe(30)
EGRESS = EgressConfig(bridge="stratosc0", subnet="10.230.0.0/16", table="stratosc0")
#: Cold starts on each cold-start server before the timed ones (the zygote learns, from the
#: first environments made from spares, which pages spares should copy ahead).
WARM_UP = 10
TICKS = os.sysconf("SC_CLK_TCK")


class Server:
    """A ``strato serve`` of the benchmark's own, with a signing boto3 client."""

    def __init__(self, data_dir: Path, egress: str, account_concurrency: int) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        env = {**os.environ, "STRATO_ADMIN_CREDENTIALS": f"{ACCESS_KEY}:{SECRET_KEY}",
               "STRATO_EGRESS": egress, "STRATO_EGRESS_BRIDGE": EGRESS.bridge,
               "STRATO_EGRESS_SUBNET": EGRESS.subnet}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "strato.cli.main", "serve", "--port", str(self.port),
             "--data-dir", str(data_dir), "--log-level", "warning", "--keep-alive", "600",
             "--account-concurrency", str(account_concurrency)],
            stdout=subprocess.PIPE, text=True, env=env)
        assert self.process.stdout is not None
        self.process.stdout.readline()
        self.client = boto3.client(
            "lambda", endpoint_url=f"http://127.0.0.1:{self.port}", region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            config=Config(retries={"max_attempts": 3}, read_timeout=300, max_pool_connections=16))

    def create(self, name: str, runtime: str, memory: int) -> None:
        self.client.create_function(FunctionName=name, Runtime=runtime, Handler="app.handler",
                                    Role=ROLE, Code={"ZipFile": make_zip(NOOP)},
                                    MemorySize=memory)
        self.client.get_waiter("function_active_v2").wait(FunctionName=name,
                                                          WaiterConfig={"Delay": 0.2})

    def request(self, name: str) -> bytes:
        """A whole invoke request of ``name``, signed now (valid for 5 minutes)."""
        url = f"http://127.0.0.1:{self.port}/2015-03-31/functions/{name}/invocations"
        headers = sign("POST", url, b"{}", access_key=ACCESS_KEY, secret_key=SECRET_KEY)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        return (f"POST /2015-03-31/functions/{name}/invocations HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{self.port}\r\n{head}Content-Length: 2\r\n\r\n{{}}").encode()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=120)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _read_answer(sock: socket.socket, buffer: bytearray) -> bytes:
    """The head of the next answer on ``sock`` (its body consumed)."""
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            head = bytes(buffer[:end]).lower()
            match = re.search(rb"content-length: (\d+)", head)
            total = end + 4 + int(match.group(1) if match else 0)
            if len(buffer) >= total:
                del buffer[:total]
                return head
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed")
        buffer += chunk


def _succeeded(head: bytes) -> bool:
    return head.startswith(b"http/1.1 200") and b"x-amz-function-error" not in head


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- the phases ----------------------------------------------------------------------------

def cold_starts(server: Server, names: list[str]) -> list[float]:
    """Milliseconds from sending each function's first invoke to its result, one function
    after another, 0.2 s apart (a new environment each time; the ones before stay warm)."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer, samples = bytearray(), []
    try:
        for name in names:
            data = server.request(name)
            time.sleep(0.2)
            started = time.perf_counter()
            sock.sendall(data)
            head = _read_answer(sock, buffer)
            samples.append((time.perf_counter() - started) * 1e3)
            if not _succeeded(head):
                raise RuntimeError(f"a cold start failed: {head[:200]!r}")
    finally:
        sock.close()
    return samples


async def _invoke_once(port: int, data: bytes) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        head = (await reader.readuntil(b"\r\n\r\n")).lower()
        match = re.search(rb"content-length: (\d+)", head)
        await reader.readexactly(int(match.group(1)) if match else 0)
        return _succeeded(head)
    finally:
        writer.close()


def burst(server: Server, names: list[str], per_function: int) -> tuple[float, int]:
    """Seconds from the first request to the last answer, and how many succeeded."""
    requests = [server.request(name) for name in names for _ in range(per_function)]

    async def run() -> tuple[float, int]:
        started = time.perf_counter()
        outcomes = await asyncio.gather(*(_invoke_once(server.port, data) for data in requests),
                                        return_exceptions=True)
        return time.perf_counter() - started, sum(1 for o in outcomes if o is True)

    return asyncio.run(run())


def provision(server: Server, name: str, count: int, timeout: float) -> tuple[float, dict[str, Any]]:
    """Seconds until ``count`` provisioned environments of a new version are READY (or the
    configuration gave up, or ``timeout``), and the configuration then."""
    version = server.client.publish_version(FunctionName=name)["Version"]
    started = time.perf_counter()
    server.client.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=count)
    while True:
        config = server.client.get_provisioned_concurrency_config(FunctionName=name,
                                                                  Qualifier=version)
        if config["Status"] != "IN_PROGRESS" or time.perf_counter() - started > timeout:
            return time.perf_counter() - started, config
        time.sleep(0.05)


# --- the host's view ---------------------------------------------------------------------

def _processes() -> dict[int, int]:
    """pid → parent pid."""
    table = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            table[int(stat.split("/")[2])] = int(fields[1])
        except (OSError, ValueError, IndexError):
            pass
    return table


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, parent in _processes().items():
        children.setdefault(parent, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def _rollup(pid: int, key: str) -> int:
    """A field of /proc/<pid>/smaps_rollup in kB (0 once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_seconds(pids: list[int]) -> float:
    """CPU time of ``pids`` (all their threads, from schedstat) and of the kernel's threads."""
    total = 0
    for pid in pids:
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
        except (OSError, ValueError):
            pass
    return total / 1e9


def kernel_threads() -> list[int]:
    return [pid for pid, parent in _processes().items() if parent == 2 or pid == 2]


def _leftovers(server_pid: int, tree: list[int]) -> dict[str, int]:
    alive = [p for p in tree if Path(f"/proc/{p}").exists()
             and Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
    cgroups = glob.glob(f"/sys/fs/cgroup/*/**/strato-{server_pid}", recursive=True)
    links = [p.name for p in Path("/sys/class/net").iterdir()
             if p.name == EGRESS.bridge or p.name.startswith(f"{EGRESS.bridge}-")]
    return {"processes": len(alive), "cgroups": len(cgroups), "interfaces": len(links)}


# --- runs ----------------------------------------------------------------------------------

def light_run(args: argparse.Namespace, egress: str) -> dict[str, float]:
    """Cold starts, the burst of cold invokes, the provisioned burst; on fresh servers."""
    result: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as data_dir:
        server = Server(Path(data_dir), egress, 1200)
        try:
            server.create("noop", args.runtime, args.memory)
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(server.request("noop"))
            _read_answer(sock, bytearray())
            sock.close()
            time.sleep(1)
            result["platform_idle_rss_mb"] = rss_mb(server.process.pid)
            names = [f"cold-{i}" for i in range(WARM_UP + args.samples)]
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda n: server.create(n, args.runtime, args.memory), names))
            cold = cold_starts(server, names)[WARM_UP:]
            result["cold_p50_ms"] = percentile(cold, 0.5)
            result["cold_p99_ms"] = percentile(cold, 0.99)
        finally:
            server.stop()
    with tempfile.TemporaryDirectory() as data_dir:
        server = Server(Path(data_dir), egress, 1200)
        try:
            names = [f"burst-{i}" for i in range(args.functions)]
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda n: server.create(n, args.runtime, args.memory), names))
            time.sleep(1)
            mine = process_tree(server.process.pid) + kernel_threads()
            cpu_before = _cpu_seconds(mine)
            seconds, ok = burst(server, names, args.per_function)
            time.sleep(0.5)  # what the last environments' exits and reports still cost
            mine = process_tree(server.process.pid) + kernel_threads()
            count = args.functions * args.per_function
            result["burst_environments_per_s"] = count / seconds
            result["burst_succeeded"] = ok
            result["burst_cpu_ms_per_environment"] = (_cpu_seconds(mine) - cpu_before) * 1e3 / count
        finally:
            server.stop()
    with tempfile.TemporaryDirectory() as data_dir:
        server = Server(Path(data_dir), egress, args.provisioned + 200)
        try:
            server.create("provisioned", args.runtime, args.memory)
            seconds, config = provision(server, "provisioned", args.provisioned, 300)
            result["provisioned_ready_s"] = seconds
            result["provisioned_failed"] = args.provisioned - config[
                "AllocatedProvisionedConcurrentExecutions"]
            result["provisioned_status_ready"] = float(config["Status"] == "READY")
        finally:
            server.stop()
    return result


def held_run(args: argparse.Namespace, egress: str) -> dict[str, float]:
    """``--held`` idle environments: their PSS, then the SIGTERM."""
    with tempfile.TemporaryDirectory() as data_dir:
        server = Server(Path(data_dir), egress, args.held + 200)
        try:
            server.create("held", args.runtime, args.memory)
            _, config = provision(server, "held", args.held, 600)
            up = config["AllocatedProvisionedConcurrentExecutions"]
            time.sleep(2)
            tree = process_tree(server.process.pid)
            pss_kb = sum(_rollup(pid, "Pss:") for pid in tree)
            platform_kb = _rollup(server.process.pid, "Pss:")
            started = time.perf_counter()
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(timeout=300)
            stopped = time.perf_counter() - started
            time.sleep(0.5)
            left = _leftovers(server.process.pid, tree)
        finally:
            server.stop()
    return {"held_up": up, "held_pss_mib": pss_kb / 1024,
            "held_pss_per_environment_mib": (pss_kb - platform_kb) / 1024 / max(1, up),
            "held_platform_pss_mib": platform_kb / 1024, "held_processes": len(tree),
            "sigterm_exit_s": stopped, "left_processes": left["processes"],
            "left_cgroups": left["cgroups"], "left_interfaces": left["interfaces"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--held-runs", type=int, default=1)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--functions", type=int, default=50)
    parser.add_argument("--per-function", type=int, default=10)
    parser.add_argument("--provisioned", type=int, default=500)
    parser.add_argument("--held", type=int, default=1000)
    parser.add_argument("--memory", type=int, default=1769)
    parser.add_argument("--runtime", default="python3.11")
    parser.add_argument("--density-runtimes", default="python3.12",
                        help="comma-separated runtimes whose --held environments' PSS is also "
                             "measured (1 run each; the interpreter changes how many pages an "
                             "environment writes)")
    args = parser.parse_args()
    reason = EgressNetwork(EGRESS).probe()
    egress = "internet" if reason is None else "none"
    if reason is not None:
        print(f"no internet egress here ({reason}): environments get loopback only",
              file=sys.stderr)
    load = os.getloadavg()[0]
    light = [light_run(args, egress) for _ in range(args.runs)]
    held = [held_run(args, egress) for _ in range(args.held_runs)]
    others = {runtime: held_run(argparse.Namespace(**{**vars(args), "runtime": runtime}), egress)
              for runtime in filter(None, args.density_runtimes.split(","))}
    median = {key: statistics.median(run[key] for run in light) for key in light[0]}
    median.update({key: statistics.median(run[key] for run in held) for key in held[0]})
    result = {"light_runs": light, "held_runs": held, "median": median,
              "density_other_runtimes": others,
              "arguments": vars(args), "egress": egress, "cpus": os.cpu_count(),
              "load_average_at_start": load, "date": time.strftime("%Y-%m-%d")}
    out = ROOT / "bench" / "results" / "scale.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    m = median
    count = args.functions * args.per_function
    succeeded = min(run["burst_succeeded"] for run in light)
    failed = max(run["provisioned_failed"] for run in light)
    left = ("nothing left behind" if not (m["left_processes"] or m["left_cgroups"]
                                         or m["left_interfaces"])
            else f"left: {m['left_processes']:.0f} processes, {m['left_cgroups']:.0f} cgroups, "
                 f"{m['left_interfaces']:.0f} interfaces")
    table = "\n".join([
        f"| figure (median of {args.runs} runs; the {args.held:,} held environments: "
        f"{args.held_runs} run; {os.cpu_count()} shared cores, sandbox namespaces, egress "
        f"{egress}, {args.runtime} no-op function of {args.memory} MB) | value |",
        "| --- | --- |",
        f"| cold start (new environment → result) p50 / p99, {args.samples} samples per run, "
        f"a new environment each | {m['cold_p50_ms']:.2f} ms / {m['cold_p99_ms']:.2f} ms |",
        f"| {count} concurrent cold invokes across {args.functions} functions | "
        f"{m['burst_environments_per_s']:.0f} new environments/s; {succeeded}/{count} "
        "succeeded in every run |",
        f"| CPU per new environment in that burst (server's process tree and kernel threads) | "
        f"{m['burst_cpu_ms_per_environment']:.1f} ms |",
        f"| {args.provisioned} provisioned environments requested at once on one version | "
        f"all READY after {m['provisioned_ready_s']:.1f} s; {failed:.0f} failed |",
        f"| SIGTERM with {args.held:,} environments | exited after {m['sigterm_exit_s']:.1f} s; "
        f"{left} |",
        f"| total PSS of {args.held:,} idle warm environments (the server's whole process tree) | "
        f"{m['held_pss_mib']:,.0f} MiB ({m['held_pss_per_environment_mib']:.2f} MiB each) |",
        *[f"| the same with a {runtime} function (1 run) | {run['held_pss_mib']:,.0f} MiB "
          f"({run['held_pss_per_environment_mib']:.2f} MiB each) |"
          for runtime, run in others.items()],
        f"| RSS of the platform process, idle, one function warm | "
        f"{m['platform_idle_rss_mb']:.1f} MB |",
    ])
    print(table)
    write_table("scale", table)


if __name__ == "__main__":
    main()
