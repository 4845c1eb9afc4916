"""Soak test: many invocations, a share of them failing hard, and nothing may pile up.

Starts its own strato (``--keep-alive 1``, so that idle environments are reaped within
seconds), creates a few functions, and runs ``--invocations`` invocations from
``--concurrency`` threads. Each invocation picks its fate at random: 5% crash (``os._exit``),
5% time out, 5% run out of memory, the rest succeed; each outcome is checked against the
errorType Lambda gives it.

Before (after a warm-up, once keep-alive has reaped every environment) and after (once it has
again) it samples the platform process (RSS, open fds, threads, from ``/proc/<pid>``) and what
the sandbox leaves on the host (environment cgroups, processes under the zygotes). Prints a
table, writes ``bench/results/soak.json``, and exits non-zero if any figure grew by more than
10% (any leftover environment, when there were none before) or an invocation's outcome was
not the expected one. Not part of the test run: ``make soak``.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.conftest import make_zip  # noqa: E402
from tests.e2e.conftest import ROLE, client_for, start_server, stop_server  # noqa: E402
from tests.e2e.hostile import HostView  # noqa: E402

SOAK = r'''
import os, time


def handler(event, context):
    fate = event["fate"]
    if fate == "crash":
        os._exit(1)
    if fate == "timeout":
        time.sleep(30)
    if fate == "oom":
        blocks = [b"x" * (1 << 20) for _ in range(3 * 128)]
        return len(blocks)
    return os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
'''
#: The fates an invocation can draw, their weights, and the errorType each must produce.
FATES = {"ok": (85, None), "crash": (5, "Runtime.ExitError"),
         "timeout": (5, "Sandbox.Timedout"), "oom": (5, "Runtime.OutOfMemory")}
FUNCTIONS = 3
GROWTH_LIMIT = 0.10
REAP_TIMEOUT_S = 60.0


def sample(host: HostView) -> dict[str, int]:
    """The platform's footprint and what the sandbox holds on the host."""
    status = dict(line.split(":", 1) for line in
                  Path(f"/proc/{host.server_pid}/status").read_text().splitlines())
    return {
        "rss_kb": int(status["VmRSS"].split()[0]),
        "open_fds": len(list(Path(f"/proc/{host.server_pid}/fd").iterdir())),
        "threads": int(status["Threads"]),
        "environment_cgroups": len(host.environment_cgroups()),
        "processes_under_zygotes": len(host.environment_processes()),
    }


def wait_for_reaping(host: HostView) -> float:
    """Wait until keep-alive has reaped every environment; seconds waited (or the limit)."""
    started = time.monotonic()
    while time.monotonic() - started < REAP_TIMEOUT_S:
        if not host.environment_cgroups() and not host.environment_processes():
            break
        time.sleep(0.2)
    return time.monotonic() - started


def run(client_factory: Any, names: list[str], count: int, concurrency: int,
        rng: random.Random) -> dict[str, Any]:
    """``count`` invocations from ``concurrency`` threads; outcome tallies and mismatches."""
    fates = rng.choices(list(FATES), weights=[w for w, _ in FATES.values()], k=count)
    work = collections.deque((rng.choice(names), fate) for fate in fates)
    lock = threading.Lock()
    tally: collections.Counter[str] = collections.Counter()
    mismatches: list[dict[str, Any]] = []
    durations: dict[str, list[float]] = collections.defaultdict(list)

    def worker() -> None:
        client = client_factory()
        while True:
            with lock:
                if not work:
                    client.close()
                    return
                name, fate = work.popleft()
            started = time.monotonic()
            try:
                response = client.invoke(FunctionName=name, Payload=json.dumps({"fate": fate}).encode())
                payload = json.loads(response["Payload"].read() or b"null")
                got = payload.get("errorType") if response.get("FunctionError") else None
            except Exception as exc:  # an API failure is an outcome to report, not a crash
                got = f"API error: {exc}"
            elapsed = time.monotonic() - started
            with lock:
                tally[f"{fate} -> {got or 'ok'}"] += 1
                durations[fate].append(elapsed)
                if got != FATES[fate][1]:
                    mismatches.append({"function": name, "fate": fate, "got": got})

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "seconds": round(time.monotonic() - started, 1),
        "outcomes": dict(sorted(tally.items())),
        "mismatches": mismatches,
        "median_ms": {fate: round(sorted(d)[len(d) // 2] * 1000, 1) for fate, d in durations.items()},
    }


def grew(before: int, after: int) -> bool:
    return after > before * (1 + GROWTH_LIMIT) if before else after > 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invocations", type=int, default=10_000)
    parser.add_argument("--warm-up", type=int, default=200,
                        help="invocations (same mix) before the first sample")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--tier", default="auto", help="STRATO_SANDBOX for the server")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "soak.json")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="strato-soak-") as scratch:
        data_dir = Path(scratch) / "data"
        data_dir.parent.chmod(0o711)  # the fallback tier reaches code by its host path
        server = start_server(data_dir, "--keep-alive", "1", env={"STRATO_SANDBOX": args.tier})
        client = client_for(server.endpoint)
        try:
            host = HostView(server.process.pid)
            names = [f"soak-{i}" for i in range(FUNCTIONS)]
            for name in names:
                client.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                                       Handler="app.handler", Code={"ZipFile": make_zip({"app.py": SOAK})},
                                       Timeout=3, MemorySize=128)
                client.get_waiter("function_active_v2").wait(FunctionName=name)
            warm_up = run(lambda: client_for(server.endpoint), names, args.warm_up,
                          args.concurrency, rng)
            reap_before = wait_for_reaping(host)
            before = sample(host)
            soak = run(lambda: client_for(server.endpoint), names, args.invocations,
                       args.concurrency, rng)
            reap_after = wait_for_reaping(host)
            after = sample(host)
        finally:
            client.close()
            stop_server(server)
    grown = [key for key in before if grew(before[key], after[key])]
    result = {
        "invocations": args.invocations, "concurrency": args.concurrency, "tier": args.tier,
        "seed": args.seed, "fates": {k: w for k, (w, _) in FATES.items()},
        "warm_up": {"invocations": args.warm_up, "mismatches": len(warm_up["mismatches"])},
        "seconds": soak["seconds"], "outcomes": soak["outcomes"], "median_ms": soak["median_ms"],
        "mismatches": soak["mismatches"][:20], "mismatch_count": len(soak["mismatches"]),
        "reaped_within_s": {"before": round(reap_before, 1), "after": round(reap_after, 1)},
        "before": before, "after": after, "grown_beyond_10_percent": grown,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.invocations} invocations, {args.concurrency} threads, {soak['seconds']} s "
          f"(tier {args.tier})")
    for outcome, count in soak["outcomes"].items():
        print(f"  {outcome:<40} {count:>6}")
    print(f"\n{'figure':<26}{'before':>12}{'after':>12}{'growth':>10}")
    for key in before:
        change = (f"{(after[key] - before[key]) / before[key]:+.1%}" if before[key]
                  else f"{after[key] - before[key]:+d}")
        print(f"{key:<26}{before[key]:>12}{after[key]:>12}{change:>10}")
    print(f"\nwritten to {args.output}")
    if grown or soak["mismatches"]:
        print(f"FAIL: grew beyond 10%: {grown or 'nothing'}; "
              f"unexpected outcomes: {len(soak['mismatches'])}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
