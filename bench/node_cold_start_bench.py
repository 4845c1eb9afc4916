"""Cold start of a Node.js function (nodejs<major>.x, a no-op CommonJS handler) with the full
sandbox (namespaces tier): each sample invokes a new function, so a new environment, and
times the invoke from the client (new environment → result) and the REPORT's Init Duration.

Results go to ``bench/results/node_cold_start.json`` and to the README table between the
``bench:node-cold-start`` markers, with the median and p99 over ``--runs`` runs of
``--samples`` samples each. Target: p50 ≤ 60 ms.
"""

from __future__ import annotations

import argparse
import base64
import json
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

HANDLER = "exports.handler = async () => 'ok';\n"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def one_run(args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="strato-node-bench-") as data:
        os.chmod(data, 0o711)
        server = start_server(Path(data), "--keep-alive", "600",
                              env={"STRATO_SANDBOX": "namespaces", "STRATO_EGRESS": "none"})
        try:
            client = client_for(server.endpoint)
            package = make_zip({"index.js": HANDLER})
            totals, inits = [], []
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
                report = base64.b64decode(response["LogResult"]).decode()
                found = re.search(r"Init Duration: ([\d.]+) ms", report)
                inits.append(float(found.group(1)) if found else float("nan"))
                client.delete_function(FunctionName=name)
            totals, inits = totals[1:], inits[1:]
            return {"cold_p50_ms": statistics.median(totals),
                    "cold_p99_ms": percentile(totals, 0.99),
                    "init_p50_ms": statistics.median(inits),
                    "init_p99_ms": percentile(inits, 0.99)}
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
    runs = [one_run(args) for _ in range(args.runs)]
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    result = {"runs": runs, "median": median, "arguments": vars(args), "cpus": os.cpu_count(),
              "load_average_at_start": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d")}
    out = ROOT / "bench" / "results" / "node_cold_start.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    table = "\n".join([
        f"| figure (median of {args.runs} runs of {args.samples} samples; {os.cpu_count()} "
        f"shared cores, sandbox namespaces, {args.runtime} no-op function of {args.memory} MB) | value | target |",
        "| --- | --- | --- |",
        f"| cold start (new environment → result) p50 / p99 | {median['cold_p50_ms']:.1f} ms / "
        f"{median['cold_p99_ms']:.1f} ms | p50 ≤ 60 ms |",
        f"| of which Init Duration (node's start and the handler's load) p50 / p99 | "
        f"{median['init_p50_ms']:.1f} ms / {median['init_p99_ms']:.1f} ms | |",
    ])
    write_table("node-cold-start", table)
    print(table)


if __name__ == "__main__":
    main()
