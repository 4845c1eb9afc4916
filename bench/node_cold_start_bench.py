"""Cold start of a Node.js function (nodejs<major>.x, a no-op CommonJS handler) with the full
sandbox (namespaces tier): each sample invokes a new function, so a new environment, and
times the invoke from the client (new environment → result) and the REPORT's Init Duration.

Each run measures two servers one after the other on the same host: with standby
environments (node booted ahead of its function, ``sandbox/standby.py``; the default) and
without (``STRATO_STANDBYS=0``: node exec'd for each environment), so that their ratio is
taken under the same load. A sample was served by a standby when node's own uptime, which
the handler returns, is longer than the invoke took. The first sample of each server is not
counted: it starts strato's zygote and makes the first standbys.

Results go to ``bench/results/node_cold_start.json`` and to the README table between the
``bench:node-cold-start`` markers, with the median over ``--runs`` runs of ``--samples``
samples each of every figure (p50, p99). Target: p50 ≤ 60 ms.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.readme_table import write_table  # noqa: E402
from tests.conftest import make_zip  # noqa: E402
from tests.e2e.conftest import ROLE, client_for, start_server, stop_server  # noqa: E402

HANDLER = "exports.handler = async () => process.uptime();\n"
#: The two servers of each run: what they are called, and their settings.
MODES = {"standby": {}, "exec": {"STRATO_STANDBYS": "0"}}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def one_run(args: argparse.Namespace, settings: dict[str, str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="strato-node-bench-") as data:
        os.chmod(data, 0o711)
        server = start_server(Path(data), "--keep-alive", "600",
                              env={"STRATO_SANDBOX": "namespaces", "STRATO_EGRESS": "none",
                                   **settings})
        try:
            client = client_for(server.endpoint)
            package = make_zip({"index.js": HANDLER})
            totals, inits, standby = [], [], []
            for _ in range(args.samples + 1):  # the first one warms strato's own zygote
                name = f"node-bench-{uuid.uuid4().hex[:8]}"
                client.create_function(FunctionName=name, Runtime=args.runtime, Role=ROLE,
                                       Handler="index.handler", Code={"ZipFile": package},
                                       MemorySize=args.memory)
                client.get_waiter("function_active_v2").wait(
                    FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
                began = time.perf_counter()
                response = client.invoke(FunctionName=name, Payload=b"{}", LogType="Tail")
                totals.append((time.perf_counter() - began) * 1000)
                standby.append(json.loads(response["Payload"].read()) * 1000 > totals[-1])
                report = base64.b64decode(response["LogResult"]).decode()
                found = re.search(r"Init Duration: ([\d.]+) ms", report)
                inits.append(float(found.group(1)) if found else float("nan"))
                client.delete_function(FunctionName=name)
            totals, inits, standby = totals[1:], inits[1:], standby[1:]
            return {"cold_p50_ms": statistics.median(totals),
                    "cold_p99_ms": percentile(totals, 0.99),
                    "init_p50_ms": statistics.median(inits),
                    "init_p99_ms": percentile(inits, 0.99),
                    "standby_share": sum(standby) / len(standby),
                    # The cold starts a standby served alone (NaN: none was).
                    "standby_served_p50_ms": statistics.median(
                        [t for t, s in zip(totals, standby, strict=True) if s] or [math.nan])}
        finally:
            stop_server(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--runtime", default="nodejs20.x")
    # CPU is in proportion to memory (1,769 MB = one vCPU): at 128 MB node's start is paced
    # by a 7 % share of a core.
    parser.add_argument("--memory", type=int, default=1769)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    for _ in range(args.runs):
        for mode, settings in MODES.items():
            runs[mode].append(one_run(args, settings))
    median = {mode: {key: statistics.median(run[key] for run in results)
                     for key in results[0]} for mode, results in runs.items()}
    ratio = statistics.median(s["cold_p50_ms"] / e["cold_p50_ms"]
                              for s, e in zip(runs["standby"], runs["exec"], strict=True))
    result = {"runs": runs, "median": median, "standby_to_exec_p50_ratio": ratio,
              "arguments": vars(args), "cpus": os.cpu_count(), "load_average_at_start": load,
              "date": time.strftime("%Y-%m-%d")}
    out = ROOT / "bench" / "results" / "node_cold_start.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    standby, fresh = median["standby"], median["exec"]
    table = "\n".join([
        f"| figure (median of {args.runs} runs of {args.samples} samples; {os.cpu_count()} "
        f"shared cores, sandbox namespaces, {args.runtime} no-op function of {args.memory} MB) "
        "| standby environments (default) | node exec'd per environment (`STRATO_STANDBYS=0`) "
        "| target |",
        "| --- | --- | --- | --- |",
        f"| cold start (new environment → result) p50 / p99 | {standby['cold_p50_ms']:.1f} ms / "
        f"{standby['cold_p99_ms']:.1f} ms | {fresh['cold_p50_ms']:.1f} ms / "
        f"{fresh['cold_p99_ms']:.1f} ms | p50 ≤ 60 ms |",
        f"| of which Init Duration p50 / p99 | {standby['init_p50_ms']:.1f} ms / "
        f"{standby['init_p99_ms']:.1f} ms | {fresh['init_p50_ms']:.1f} ms / "
        f"{fresh['init_p99_ms']:.1f} ms | |",
        f"| cold starts served by a standby (the others found none booted yet: samples come "
        f"faster than standbys boot) | {standby['standby_share']:.0%} | "
        f"{fresh['standby_share']:.0%} | |",
        f"| cold start p50 of those a standby served | "
        f"{standby['standby_served_p50_ms']:.1f} ms | | p50 ≤ 60 ms |",
        f"| p50 with standbys / p50 without (same run) | {ratio:.2f} | | |",
    ])
    write_table("node-cold-start", table)
    print(table)


if __name__ == "__main__":
    main()
