"""Java cold starts: how long a java runtime's new execution environment takes to answer.

One ``strato serve`` (the namespaces tier, no egress) per run, a no-op Java handler
(``Map`` in, ``Map`` out, through the POJO path) of ``--memory`` MB on every Java major the
host has. Figures, per runtime: the cold start (a configuration change, then an invoke: new
environment → result, over boto3) p50 / p99 of ``--samples`` invokes after ``WARM_UP`` untimed
ones, the INIT phase as the REPORT line's Init Duration reports it, and a warm invoke's p50.
Results go to ``bench/results/java.json`` and the README table between the ``bench:java``
markers. Measurements, not tests: nothing asserts.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.readme_table import write_table  # noqa: E402
from tests.conftest import make_zip  # noqa: E402
from tests.e2e.conftest import ROLE, client_for, start_server, stop_server  # noqa: E402
from tests.e2e.java_support import HOMES, compile_classes  # noqa: E402

NOOP = {"bench/Noop.java": """
package bench;

import com.amazonaws.services.lambda.runtime.Context;
import java.util.Map;

public class Noop {
    public Map<String, Object> handleRequest(Map<String, Object> event, Context context) {
        return event;
    }
}
"""}
WARM_UP = 2
RESULTS = ROOT / "bench" / "results" / "java.json"
_INIT = re.compile(r"Init Duration: ([\d.]+) ms")


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(client: Any, name: str, samples: int) -> dict[str, float]:
    cold, init = [], []
    for i in range(WARM_UP + samples):
        client.update_function_configuration(FunctionName=name, Description=f"cold {i}")
        client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
        started = time.perf_counter()
        response = client.invoke(FunctionName=name, Payload=b'{"n": 1}', LogType="Tail")
        elapsed = (time.perf_counter() - started) * 1e3
        assert "FunctionError" not in response, response["Payload"].read()
        if i >= WARM_UP:
            cold.append(elapsed)
            found = _INIT.search(base64.b64decode(response["LogResult"]).decode())
            if found:
                init.append(float(found.group(1)))
    warm = []
    for _ in range(50):
        started = time.perf_counter()
        client.invoke(FunctionName=name, Payload=b'{"n": 1}')
        warm.append((time.perf_counter() - started) * 1e3)
    return {"cold_p50_ms": percentile(cold, 0.5), "cold_p99_ms": percentile(cold, 0.99),
            "init_p50_ms": percentile(init, 0.5) if init else 0.0,
            "warm_p50_ms": statistics.median(warm)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--memory", type=int, default=512)
    args = parser.parse_args()
    runtimes = [f"java{major}" for major in (17, 21, 25) if HOMES.find(major)]
    work = Path(tempfile.mkdtemp(prefix="java-bench-"))
    work.chmod(0o755)
    package = make_zip(compile_classes(work / "build", NOOP))
    server = start_server(work / "data", env={"STRATO_SANDBOX": "namespaces"})
    figures: dict[str, dict[str, float]] = {}
    try:
        client = client_for(server.endpoint)
        for runtime in runtimes:
            name = f"noop-{runtime}"
            client.create_function(FunctionName=name, Runtime=runtime, Role=ROLE,
                                   Handler="bench.Noop", Code={"ZipFile": package},
                                   MemorySize=args.memory)
            client.get_waiter("function_active_v2").wait(FunctionName=name)
            figures[runtime] = measure(client, name, args.samples)
            print(runtime, json.dumps(figures[runtime]))
    finally:
        stop_server(server)
    runs = json.loads(RESULTS.read_text())["runs"] if RESULTS.exists() else []
    runs.append({"memory_mb": args.memory, "samples": args.samples, "figures": figures})
    RESULTS.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    rows = ["| runtime | cold start p50 / p99 | Init Duration p50 | warm invoke p50 |",
            "|---|---|---|---|"]
    for runtime, f in figures.items():
        rows.append(f"| {runtime} | {f['cold_p50_ms']:.0f} ms / {f['cold_p99_ms']:.0f} ms | "
                    f"{f['init_p50_ms']:.0f} ms | {f['warm_p50_ms']:.1f} ms |")
    write_table("java", "\n".join(rows))


if __name__ == "__main__":
    main()
