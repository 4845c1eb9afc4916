"""Crash recovery: work strato accepted survives the server being SIGKILLed at random moments.

A server is killed with SIGKILL again and again while work flows through it, and restarted
each time on the same data dir. Work takes two paths: asynchronous invokes
(``InvocationType=Event``, answered 202) of two functions, one with an OnFailure destination
and one with a DeadLetterConfig, each to a built-in SQS queue; and messages sent to a built-in
SQS queue that an event source mapping feeds to a function, with a RedrivePolicy to a
dead-letter queue. A share of the work is poison: the function always fails on it, so it
must end in its dead-letter queue after Lambda's retries (or SQS's ``maxReceiveCount``).

Once everything has drained, every piece of work strato accepted (a 202, a MessageId) must
have run to success at least once or, for poison, sit in the dead-letter queue its path
names, and neither the source queue nor the asynchronous queue (read through the event
ledger) may hold anything. Nothing accepted may be lost; duplicates (executions beyond the
first, which at-least-once delivery allows after a crash) are counted and reported, not
failed.

The functions append each id they see to a file on the host and fsync it, so the server runs
with ``--unsafe-no-sandbox``: the sandbox is not what is under test here (the hostile tests
cover it), and confinement would keep functions from writing a host file. ``--time-scale``
runs the server's clock that many times faster: Lambda's retry waits, and SQS's visibility
timeouts (which are therefore given in clock seconds).

``CrashRig``, ``plan_loop``, ``run_loops`` and ``drain`` are shared with
``bench/crash_soak.py``, which runs the same loop many more times.

Apart from crashes, one more test shows a poison message on a built-in queue reaching its
dead-letter queue after ``maxReceiveCount`` receives without holding up the messages sent
after it.
"""

from __future__ import annotations

import concurrent.futures
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from tests.conftest import make_zip
from tests.e2e.conftest import ROLE, CreateFunction, StratoServer, client_for, start_server, stop_server
from tests.support.signing import send, sign
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

#: SIGKILL-and-restart loops in the default test run.
LOOPS = 50
#: The server's clock runs this many times faster: Lambda's retry waits (a minute, then two)
#: take 0.6 and 1.2 s, and so do SQS's visibility timeouts, given in clock seconds.
TIME_SCALE = 100
#: Each loop kills the server this long (uniformly drawn, seconds) after its burst starts.
KILL_DELAY_S = (0.0, 0.3)
#: Pieces of work per path in each loop's burst; the first is poison every POISON_EVERY loops.
PER_LOOP = {"async-destination": 3, "async-dlq": 3, "sqs": 4}
POISON_EVERY = 4
#: SQS: a message is received at most this many times before it moves to the dead-letter queue.
MAX_RECEIVE_COUNT = 3
#: The function's timeout (real seconds), and the source queue's visibility timeout in real
#: seconds (the queue is given it in clock seconds, at least the function's timeout as an
#: event source mapping requires).
FUNCTION_TIMEOUT_S = 5
VISIBILITY_REAL_S = 4
MAX_VISIBILITY_TIMEOUT_S = 43_200
#: Draining ends once every accepted id is accounted for and nothing changed for QUIET_S
#: (longer than a visibility timeout, so that redeliveries in flight show up); it gives up
#: after DRAIN_TIMEOUT_S (generous: a loaded two-core machine).
QUIET_S = 6.0
DRAIN_TIMEOUT_S = 240.0

RECORDER = r'''
import json
import os


def _append(line):
    fd = os.open(os.environ["CRASH_LEDGER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def handler(event, context):
    if "Records" in event:
        items = [(json.loads(record["body"]), "sqs",
                  record.get("attributes", {}).get("ApproximateReceiveCount"))
                 for record in event["Records"]]
    else:
        items = [(event, "async", None)]
    poisoned = []
    for item, source, receive_count in items:
        _append({"id": item["id"], "source": source,
                 "outcome": "fail" if item.get("poison") else "ok",
                 "request_id": context.aws_request_id, "receive_count": receive_count})
        if item.get("poison"):
            poisoned.append(item["id"])
    if poisoned:
        raise RuntimeError("poison: " + ", ".join(poisoned))
    return {"recorded": len(items)}
'''


@dataclass(frozen=True)
class Route:
    """One way work enters strato: the function that runs it and where its poison ends."""

    function: str | None  # None: sent to the source queue, run through the mapping
    dead_letter_queue: str


PATHS = {
    "async-destination": Route("crash-destination", "crash-on-failure"),
    "async-dlq": Route("crash-dead-letter", "crash-function-dlq"),
    "sqs": Route(None, "crash-source-dlq"),
}
SOURCE_QUEUE = "crash-source"
MAPPED_FUNCTION = "crash-destination"
QUEUES = ("crash-on-failure", "crash-function-dlq", "crash-source-dlq", SOURCE_QUEUE)


@dataclass(frozen=True)
class Work:
    id: str
    path: str
    poison: bool

    def body(self) -> str:
        return json.dumps({"id": self.id, "poison": self.poison})


class CrashRig:
    """One data dir and the server on it, SIGKILLed and restarted at will, with the queues,
    functions and event source mapping of the scenario. Call ``start`` before anything else;
    every call but ``kill`` and ``stop`` needs a running server."""

    def __init__(self, workdir: Path, *, time_scale: int = TIME_SCALE) -> None:
        self.data_dir = workdir / "data"
        self.ledger = workdir / "ledger.jsonl"
        #: Every run's stderr, one after the other.
        self.server_log = workdir / "server.log"
        self.time_scale = time_scale
        self.server: StratoServer | None = None
        self.lam: Any = None
        self.sqs: Any = None
        self.queue_urls: dict[str, str] = {}
        self.restarts = 0
        self.deployed = False
        #: Queue name -> how often each id was found there (read messages are deleted).
        self.dead_letters: dict[str, Counter[str]] = {q: Counter() for q in QUEUES}
        self.unreadable_dead_letters: list[str] = []
        #: Error codes strato answered sends with (the work was then not accepted).
        self.refusals: Counter[str] = Counter()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=4)

    # -- the server's lifecycle --

    def start(self) -> None:
        """Start a server on the data dir. A start that fails because another process took the
        port it was given between its choice and its bind is tried again; any other failed
        start (such as a server that cannot recover its data dir) raises."""
        for _ in range(3):
            logged = self.server_log.stat().st_size if self.server_log.exists() else 0
            try:
                with self.server_log.open("a") as stderr:
                    self.server = start_server(
                        self.data_dir, "--unsafe-no-sandbox", "--time-scale", str(self.time_scale),
                        "--keep-alive", "30", stderr=stderr)
                break
            except RuntimeError as exc:
                with self.server_log.open() as log:
                    log.seek(logged)
                    said = log.read()
                if "address already in use" not in said.lower():
                    raise RuntimeError(f"{exc}; its stderr:\n{said[-4000:]}") from exc
        else:
            raise RuntimeError("strato did not start three times: every port it was given was taken")
        self.lam = client_for(self.server.endpoint)
        self.sqs = client_for(self.server.endpoint, "sqs")
        # Queue URLs name the endpoint, whose port changes with every start: read them again.
        self.queue_urls = {}
        if self.deployed:
            self.queue_urls = {q: self.sqs.get_queue_url(QueueName=q)["QueueUrl"] for q in QUEUES}

    def kill(self) -> None:
        """SIGKILL the server: no shutdown of any kind."""
        assert self.server is not None
        self.server.process.kill()
        self.server.process.wait(timeout=30)
        self._close()

    def restart(self) -> None:
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        if self.server is not None and self.server.process.poll() is None:
            stop_server(self.server)
        self._close()
        self._pool.shutdown(wait=True)

    def _close(self) -> None:
        assert self.server is not None
        if self.server.process.stdout is not None:
            self.server.process.stdout.close()
        for client in (self.lam, self.sqs):
            if client is not None:
                client.close()

    # -- the scenario --

    def deploy(self) -> None:
        """Create the queues, the two functions with their failure handling and the mapping."""
        for queue in QUEUES[:-1]:
            self.queue_urls[queue] = self.sqs.create_queue(QueueName=queue)["QueueUrl"]
        arns = {q: self.queue_arn(q) for q in QUEUES[:-1]}
        self.queue_urls[SOURCE_QUEUE] = self.sqs.create_queue(QueueName=SOURCE_QUEUE, Attributes={
            "VisibilityTimeout": str(self.visibility_timeout_s()),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arns[PATHS["sqs"].dead_letter_queue],
                                         "maxReceiveCount": str(MAX_RECEIVE_COUNT)}),
        })["QueueUrl"]
        package = make_zip({"app.py": RECORDER})
        for path in ("async-destination", "async-dlq"):
            name, queue = PATHS[path].function, PATHS[path].dead_letter_queue
            assert name is not None
            extra: dict[str, Any] = {}
            if path == "async-dlq":
                extra["DeadLetterConfig"] = {"TargetArn": arns[queue]}
            self.lam.create_function(
                FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                Code={"ZipFile": package}, Timeout=FUNCTION_TIMEOUT_S, MemorySize=128,
                Environment={"Variables": {"CRASH_LEDGER": str(self.ledger)}}, **extra)
            self.lam.get_waiter("function_active_v2").wait(
                FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
            config: dict[str, Any] = {"MaximumRetryAttempts": 2}
            if path == "async-destination":
                config["DestinationConfig"] = {"OnFailure": {"Destination": arns[queue]}}
            self.lam.put_function_event_invoke_config(FunctionName=name, **config)
        mapping = self.lam.create_event_source_mapping(
            EventSourceArn=self.queue_arn(SOURCE_QUEUE), FunctionName=MAPPED_FUNCTION, BatchSize=1)
        wait_until(lambda: self.lam.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Enabled",
                   timeout=60, what="the event source mapping to be Enabled")
        self.deployed = True

    def visibility_timeout_s(self) -> int:
        """The source queue's visibility timeout in clock seconds: VISIBILITY_REAL_S real ones."""
        return max(FUNCTION_TIMEOUT_S, min(MAX_VISIBILITY_TIMEOUT_S, VISIBILITY_REAL_S * self.time_scale))

    def queue_arn(self, queue: str) -> str:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_urls[queue],
                                                   AttributeNames=["QueueArn"])["Attributes"]
        return str(attributes["QueueArn"])

    def send(self, work: Work) -> bool:
        """Hand ``work`` to strato; True if strato accepted it (202, or a MessageId).

        Connection failures (the server being killed) and error answers leave it unaccepted
        (the error codes are counted in ``refusals``)."""
        try:
            path = PATHS[work.path]
            if path.function is not None:
                response = self.lam.invoke(FunctionName=path.function, InvocationType="Event",
                                           Payload=work.body().encode())
                return bool(response["StatusCode"] == 202)
            sent = self.sqs.send_message(QueueUrl=self.queue_urls[SOURCE_QUEUE],
                                         MessageBody=work.body())
            return bool(sent.get("MessageId"))
        except ClientError as exc:
            self.refusals[str(exc.response.get("Error", {}).get("Code"))] += 1
            return False
        except BotoCoreError:
            return False

    def burst(self, works: list[Work], kill_after_s: float) -> list[Work]:
        """Send ``works`` from a few threads, SIGKILL the server ``kill_after_s`` seconds after
        the first is sent, and return those strato accepted before it died."""
        futures = [(work, self._pool.submit(self.send, work)) for work in works]
        time.sleep(kill_after_s)  # the moment of the crash is what varies from loop to loop
        self.kill()
        return [work for work, future in futures if future.result(timeout=60)]

    def collect_dead_letters(self) -> None:
        """Read (and delete) every message now in the dead-letter queues into ``dead_letters``."""
        for queue in QUEUES[:-1]:
            while True:
                messages = self.sqs.receive_message(
                    QueueUrl=self.queue_urls[queue], MaxNumberOfMessages=10, WaitTimeSeconds=0,
                    VisibilityTimeout=60).get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    ident = dead_letter_id(message["Body"])
                    if ident is None:
                        self.unreadable_dead_letters.append(message["Body"][:200])
                    else:
                        self.dead_letters[queue][ident] += 1
                self.sqs.delete_message_batch(QueueUrl=self.queue_urls[queue], Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])

    def source_backlog(self) -> int:
        """Messages still in the source queue, visible or in flight."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_urls[SOURCE_QUEUE],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"])

    def async_backlog(self) -> dict[str, int]:
        """Asynchronous events not finished yet, by state, from the event ledger."""
        assert self.server is not None
        url = f"{self.server.endpoint}/_strato/events?limit=1"
        response = send("GET", url, headers=sign("GET", url))
        assert response.status == 200, response.body
        counts: dict[str, int] = json.loads(response.body)["Counts"]
        return {state: counts.get(state, 0) for state in ("queued", "in_flight", "retrying")}


def dead_letter_id(body: str) -> str | None:
    """The id of the work a dead-lettered message carries: a destination record holds the
    event as ``requestPayload``; a DeadLetterConfig or RedrivePolicy message is the event or
    the message body itself."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if isinstance(document, dict) and isinstance(document.get("requestPayload"), dict):
        document = document["requestPayload"]
    ident = document.get("id") if isinstance(document, dict) else None
    return ident if isinstance(ident, str) else None


@dataclass
class Ledger:
    """What the functions wrote: per id, how many attempts succeeded and failed."""

    ok: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    request_ids: dict[str, set[str]] = field(default_factory=dict)
    lines: int = 0
    torn_lines: int = 0

    @classmethod
    def read(cls, path: Path) -> Ledger:
        ledger = cls()
        if not path.exists():
            return ledger
        for line in path.read_text().splitlines():
            ledger.lines += 1
            try:
                entry = json.loads(line)
            except ValueError:
                ledger.torn_lines += 1  # a function killed in the middle of its write
                continue
            (ledger.ok if entry["outcome"] == "ok" else ledger.failed)[entry["id"]] += 1
            ledger.request_ids.setdefault(entry["id"], set()).add(entry["request_id"])
        return ledger


def plan_loop(loop: int, rng: random.Random) -> list[Work]:
    """The burst of loop ``loop``: PER_LOOP pieces of work per path, shuffled; on a path's
    turn (every POISON_EVERY loops) its first piece is poison."""
    works = [Work(f"{path}-{loop:05d}-{n}", path,
                  poison=n == 0 and loop % POISON_EVERY == index % POISON_EVERY)
             for index, (path, count) in enumerate(PER_LOOP.items()) for n in range(count)]
    rng.shuffle(works)
    return works


def run_loops(rig: CrashRig, loops: int, rng: random.Random,
              progress: Callable[[int, int], None] | None = None) -> dict[str, Work]:
    """``loops`` times: a burst, SIGKILL at a random moment, restart. Returns the accepted work
    by id. The server runs again when it returns."""
    accepted: dict[str, Work] = {}
    for loop in range(loops):
        for work in rig.burst(plan_loop(loop, rng), rng.uniform(*KILL_DELAY_S)):
            accepted[work.id] = work
        rig.restart()
        if progress is not None:
            progress(loop + 1, len(accepted))
    return accepted


@dataclass
class Outcome:
    """Where every accepted piece of work ended, once drained."""

    accepted: dict[str, Work]
    ledger: Ledger
    dead_letters: dict[str, Counter[str]]
    #: Messages left in the source queue, and unfinished asynchronous events by state.
    source_backlog: int
    async_backlog: dict[str, int]
    drain_s: float
    timed_out: bool

    def stuck(self) -> bool:
        """Whether anything is still queued: a message in the source queue, an unfinished
        asynchronous event."""
        return bool(self.source_backlog or sum(self.async_backlog.values()))

    def dead_lettered(self, ident: str) -> list[str]:
        return [queue for queue, ids in self.dead_letters.items() if ident in ids]

    def lost(self) -> list[str]:
        """Accepted work neither run to success nor in a dead-letter queue; for poison, not in
        the dead-letter queue its path names."""
        return sorted(
            ident for ident, work in self.accepted.items()
            if (PATHS[work.path].dead_letter_queue not in self.dead_lettered(ident) if work.poison
                else not self.ledger.ok[ident] and not self.dead_lettered(ident)))

    def misrouted(self) -> list[str]:
        """Dead letters found in a queue other than the one their path names."""
        return sorted(ident for queue, ids in self.dead_letters.items() for ident in ids
                      if ident in self.accepted
                      and queue != PATHS[self.accepted[ident].path].dead_letter_queue)

    def async_good_dead_lettered(self) -> list[str]:
        """Good work of the asynchronous paths that was dead-lettered. No policy allows it: it
        succeeds whenever it runs, and its maximum age (six hours of clock time) is beyond the
        run. A good SQS message may be: each SIGKILL while it is in flight counts a receive
        towards ``maxReceiveCount``."""
        return sorted(i for i, w in self.accepted.items()
                      if not w.poison and w.path != "sqs" and self.dead_lettered(i))

    def report(self, *, loops: int, restarts: int, seconds: float) -> dict[str, Any]:
        good = [i for i, w in self.accepted.items() if not w.poison]
        poison = [i for i, w in self.accepted.items() if w.poison]
        executed = [i for i in good if self.ledger.ok[i]]
        duplicates = {i: self.ledger.ok[i] - 1 for i in good if self.ledger.ok[i] > 1}
        dead_lettered = [i for i in self.accepted if self.dead_lettered(i)]
        # Lambda's policy: the first attempt and two retries; SQS: maxReceiveCount receives.
        policy_attempts = {"sqs": MAX_RECEIVE_COUNT}
        extra_attempts = {i: self.ledger.failed[i] - policy_attempts.get(self.accepted[i].path, 3)
                          for i in poison}
        ran_unaccepted = sorted(i for i in self.ledger.ok if i not in self.accepted)
        return {
            "loops": loops, "restarts": restarts, "seconds": round(seconds, 1),
            "drain_seconds": round(self.drain_s, 1), "drain_timed_out": self.timed_out,
            "source_backlog": self.source_backlog, "async_backlog": self.async_backlog,
            "accepted": len(self.accepted),
            "accepted_by_path": dict(Counter(w.path for w in self.accepted.values())),
            "accepted_poison": len(poison),
            "executed": len(executed),
            "dead_lettered": len(dead_lettered),
            "good_dead_lettered": sorted(i for i in good if self.dead_lettered(i))[:50],
            "async_good_dead_lettered": len(self.async_good_dead_lettered()),
            "lost": len(self.lost()), "lost_ids": self.lost()[:50],
            "misrouted_dead_letters": self.misrouted()[:50],
            "duplicates": sum(duplicates.values()),
            "duplicated_ids": len(duplicates),
            "duplicates_by_path": dict(Counter(self.accepted[i].path for i in duplicates)),
            "duplicate_dead_letters": sum(n - 1 for ids in self.dead_letters.values()
                                          for n in ids.values() if n > 1),
            "poison_attempts_beyond_policy": sum(n for n in extra_attempts.values() if n > 0),
            "poison_attempts_short_of_policy": sum(-n for n in extra_attempts.values() if n < 0),
            "poison_attempts_by_path": {
                path: dict(sorted(Counter(self.ledger.failed[i] for i in poison
                                          if self.accepted[i].path == path).items()))
                for path in PATHS},
            "async_request_ids_per_id_max": max(
                (len(self.ledger.request_ids.get(i, ())) for i in self.accepted
                 if self.accepted[i].path != "sqs"), default=0),
            "executed_without_being_accepted": len(ran_unaccepted),
            "ledger_lines": self.ledger.lines, "torn_ledger_lines": self.ledger.torn_lines,
        }


def drain(rig: CrashRig, accepted: dict[str, Work], *, timeout_s: float = DRAIN_TIMEOUT_S,
          quiet_s: float = QUIET_S) -> Outcome:
    """Wait until every accepted id is accounted for, neither the source queue nor the
    asynchronous queue holds anything, and nothing changed for ``quiet_s``; or until
    ``timeout_s``. The server must be running."""
    started = time.monotonic()
    last_change, last_state = started, None
    while True:
        rig.collect_dead_letters()
        ledger = Ledger.read(rig.ledger)
        outcome = Outcome(accepted, ledger, rig.dead_letters, rig.source_backlog(),
                          rig.async_backlog(), time.monotonic() - started, False)
        state = (ledger.lines, sum(sum(ids.values()) for ids in rig.dead_letters.values()),
                 outcome.source_backlog, tuple(outcome.async_backlog.values()))
        now = time.monotonic()
        if state != last_state:
            last_change, last_state = now, state
        if not outcome.lost() and not outcome.stuck() and now - last_change >= quiet_s:
            return outcome
        if now - started > timeout_s:
            outcome.timed_out = True
            return outcome
        # Not wait_until: at the deadline this returns what it found (the soak reports it), and
        # the state must also have stood still for ``quiet_s``.
        time.sleep(0.5)


def leftover_environments(ledger: Path) -> list[int]:
    """Pids of processes still carrying the functions' environment (CRASH_LEDGER=<ledger>)."""
    marker = f"CRASH_LEDGER={ledger}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
            except OSError:
                continue  # gone, or not ours to read
    return pids


def summary_lines(report: dict[str, Any]) -> Iterable[str]:
    yield (f"{report['loops']} SIGKILL loops ({report['restarts']} restarts) in "
           f"{report['seconds']} s, drained in {report['drain_seconds']} s")
    for key in ("accepted", "accepted_poison", "executed", "dead_lettered", "lost", "duplicates",
                "duplicate_dead_letters", "executed_without_being_accepted"):
        yield f"  {key:<34}{report[key]:>8}"


@pytest.mark.timeout(600)
def test_accepted_work_survives_sigkill_loops(tmp_path: Path) -> None:
    """Across LOOPS SIGKILLs at random moments, every async invoke answered 202 and every SQS
    message whose SendMessage succeeded ran to success or reached its dead-letter queue (poison
    always its own path's, good async events never), and nothing is left queued; duplicates
    are reported in ``crash_recovery.json``."""
    started = time.monotonic()
    rig = CrashRig(tmp_path)
    rig.start()
    try:
        rig.deploy()
        accepted = run_loops(rig, LOOPS, random.Random(20240611))
        outcome = drain(rig, accepted)
    finally:
        rig.stop()
    report = outcome.report(loops=LOOPS, restarts=rig.restarts, seconds=time.monotonic() - started)
    report["leftover_environment_pids"] = leftover_environments(rig.ledger)
    report["refused_by_code"] = dict(rig.refusals)
    (tmp_path / "crash_recovery.json").write_text(json.dumps(report, indent=2) + "\n")
    print("\n".join(summary_lines(report)), f"\nreport: {tmp_path / 'crash_recovery.json'}")

    # Every path and kind of work took part (each is sent at least LOOPS // POISON_EVERY times).
    took_part = {(w.path, w.poison) for w in outcome.accepted.values()}
    assert took_part == {(path, poison) for path in PATHS for poison in (False, True)}, report
    assert not outcome.lost(), f"accepted and lost: {report['lost_ids']} (server log {rig.server_log})"
    assert not outcome.misrouted(), report
    assert not outcome.async_good_dead_lettered(), report
    assert not outcome.stuck(), f"left in the queues after draining: {report}"
    assert not rig.unreadable_dead_letters, rig.unreadable_dead_letters[:5]


#: Prints when it saw which message, and fails on the poison one.
STAMPER = """
import json
import time


def handler(event, context):
    for record in event["Records"]:
        print("SEEN " + json.dumps({"body": record["body"], "at": time.time()}))
        if record["body"] == "poison":
            raise Exception("poisoned")
"""


def seen_messages(logs: Any, function: str) -> list[dict[str, Any]]:
    """Every ``SEEN`` line the function printed so far."""
    request: dict[str, Any] = {"logGroupName": f"/aws/lambda/{function}"}
    seen: list[dict[str, Any]] = []
    while True:
        try:
            page = logs.filter_log_events(**request)
        except ClientError:  # no log group before the first invocation
            return seen
        seen += [json.loads(e["message"].strip()[len("SEEN "):]) for e in page["events"]
                 if e["message"].startswith("SEEN ")]
        if not page.get("nextToken"):
            return seen
        request["nextToken"] = page["nextToken"]


def test_a_poison_message_is_dead_lettered_without_holding_up_the_messages_behind_it(
    strato: StratoServer, create_function: CreateFunction, lambda_client: Any, function_name: str,
) -> None:
    """A message the function always fails on, first in a built-in queue, is received exactly
    ``maxReceiveCount`` times and then moved to the dead-letter queue; the five messages sent
    after it all ran before its last attempt: it never blocked them."""
    sqs = client_for(strato.endpoint, "sqs")
    logs = client_for(strato.endpoint, "logs")
    dlq_url = sqs.create_queue(QueueName=f"{function_name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # Each receive of the poison is one attempt (the mapping invokes the function with every
    # message it receives); its last comes two visibility timeouts after its first.
    url = sqs.create_queue(QueueName=function_name, Attributes={
        "VisibilityTimeout": "5",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}),
    })["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    create_function({"app.py": STAMPER}, Timeout=2)
    goods = [f"good-{n}" for n in range(5)]
    for body in ["poison", *goods]:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    mapping = lambda_client.create_event_source_mapping(EventSourceArn=arn, FunctionName=function_name,
                                                        BatchSize=1)
    try:
        dead: list[dict[str, Any]] = []

        def dead_lettered() -> bool:
            dead.extend(sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages", []))
            return bool(dead)

        wait_until(dead_lettered, timeout=90, what="the poison message in the dead-letter queue")
        assert [m["Body"] for m in dead] == ["poison"]
        wait_until(lambda: len(seen_messages(logs, function_name)) >= len(goods) + 3,
                   timeout=60, what="the function's log of every attempt")
        wait_until(lambda: int(sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
                "ApproximateNumberOfMessages"]) == 0, timeout=30, what="an empty source queue")
        seen = seen_messages(logs, function_name)
        poison_attempts = sorted(s["at"] for s in seen if s["body"] == "poison")
        assert len(poison_attempts) == 3, seen
        first_runs: dict[str, float] = {}
        for s in seen:
            if s["body"] != "poison":
                first_runs[s["body"]] = min(s["at"], first_runs.get(s["body"], s["at"]))
        assert sorted(first_runs) == goods
        assert max(first_runs.values()) < poison_attempts[-1], seen
    finally:
        lambda_client.delete_event_source_mapping(UUID=mapping["UUID"])
