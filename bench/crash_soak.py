"""Crash soak: the SIGKILL loop of ``tests/e2e/test_crash_recovery.py``, many more times.

Starts its own strato (``--unsafe-no-sandbox``: functions append to a host file; the sandbox
is not what this measures) on a fresh data dir, deploys the same scenario (two functions
invoked asynchronously, one with an OnFailure destination and one with a DeadLetterConfig;
a built-in SQS queue with a RedrivePolicy feeding a function through an event source
mapping; a share of poison work that always fails), then ``--loops`` times sends a burst,
SIGKILLs the server at a random moment and restarts it on the same data dir. Once everything
has drained it prints accepted / executed / dead-lettered / lost / duplicates, writes
``bench/results/crash_soak.json``, and exits non-zero if any accepted work was lost (or a
dead letter reached the wrong queue, a good asynchronous event was dead-lettered, or work
was left in a queue).
Duplicates are reported, not failed: delivery is at-least-once. Not part of the test run:
``make crash-soak LOOPS=500``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.e2e.test_crash_recovery import (  # noqa: E402
    DRAIN_TIMEOUT_S,
    TIME_SCALE,
    CrashRig,
    drain,
    leftover_environments,
    run_loops,
    summary_lines,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loops", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time-scale", type=int, default=TIME_SCALE,
                        help="the server's --time-scale (retry waits run this many times faster)")
    parser.add_argument("--drain-timeout", type=float, default=2 * DRAIN_TIMEOUT_S)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "crash_soak.json")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="strato-crash-soak-") as scratch:
        workdir = Path(scratch)
        rig = CrashRig(workdir, time_scale=args.time_scale)
        rig.start()
        try:
            rig.deploy()

            def progress(loop: int, accepted: int) -> None:
                if loop % 50 == 0 or loop == args.loops:
                    print(f"  loop {loop}/{args.loops}: {accepted} accepted, "
                          f"{time.monotonic() - started:.0f} s", flush=True)

            accepted = run_loops(rig, args.loops, random.Random(args.seed), progress)
            outcome = drain(rig, accepted, timeout_s=args.drain_timeout)
        finally:
            rig.stop()
        # Every start says it runs unconfined; what else the servers said is worth keeping.
        log_tail = [line for line in rig.server_log.read_text().splitlines()
                    if "--unsafe-no-sandbox" not in line][-20:]
        report = outcome.report(loops=args.loops, restarts=rig.restarts,
                                seconds=time.monotonic() - started)
        report["leftover_environment_pids"] = leftover_environments(rig.ledger)
    report.update(seed=args.seed, time_scale=args.time_scale, refused_by_code=dict(rig.refusals),
                  unreadable_dead_letters=rig.unreadable_dead_letters[:10],
                  server_log_tail=log_tail)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    for line in summary_lines(report):
        print(line)
    print(f"\nwritten to {args.output}")
    failed = (outcome.lost() or outcome.misrouted() or outcome.async_good_dead_lettered()
              or outcome.stuck() or rig.unreadable_dead_letters)
    if failed:
        print(f"FAIL: lost {len(outcome.lost())} ({outcome.lost()[:10]}), misrouted "
              f"{len(outcome.misrouted())}, good async events dead-lettered "
              f"{len(outcome.async_good_dead_lettered())}, left in the source queue "
              f"{outcome.source_backlog}, unfinished async events {outcome.async_backlog}, "
              f"unreadable dead letters {len(rig.unreadable_dead_letters)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
