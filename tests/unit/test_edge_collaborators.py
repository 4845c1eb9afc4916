"""What the composition root hands the edges and the pool: log reading, code URLs, Lambda's
environment variables. Pure or in-memory: each against a fake through its Protocol."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

from strato.codestore.signed_urls import CodeUrlSigner
from strato.scheduler.environment_variables import LambdaVariables
from strato.services.logs import LogService, matches
from strato.store.base import LogEvent
from strato.store.memory_logs import MemoryLogStore
from tests.support.store_contracts import make_version

GROUP = "/aws/lambda/fn"


def _service() -> LogService:
    store = MemoryLogStore(clock=lambda: 7)
    store.append([LogEvent(GROUP, "a", 1, "START x\nhello world"), LogEvent(GROUP, "b", 2, "bye"),
                  LogEvent(GROUP, "a", 3, "hello again")])
    return LogService(store)


def test_filter_patterns_need_every_term_or_the_quoted_phrase() -> None:
    assert matches("anything", None) and matches("anything", "")
    assert matches("hello big world", "hello world")
    assert not matches("hello big world", '"hello world"')
    assert matches("say hello world", '"hello world"')


def test_filtered_lines_expand_records_and_page_by_record() -> None:
    service = _service()
    first = service.filter_lines(GROUP, streams=None, stream_prefix=None, start_ms=None,
                                 end_ms=None, after=0, limit=2, pattern="hello")
    assert [(line.stream, line.message, line.position) for line in first.lines] == [
        ("a", "hello world\n", 1)]
    assert first.next_position == 2
    rest = service.filter_lines(GROUP, streams=None, stream_prefix="a", start_ms=None,
                                end_ms=None, after=2, limit=2, pattern=None)
    assert [line.message for line in rest.lines] == ["hello again\n"]
    assert rest.next_position is None


def test_stream_lines_and_streams() -> None:
    service = _service()
    lines = service.stream_lines(GROUP, "a", start_ms=None, end_ms=None, after=0, limit=None)
    assert [line.message for line in lines.lines] == ["START x\n", "hello world\n", "hello again\n"]
    assert (lines.first_position, lines.last_position) == (1, 3)
    empty = service.stream_lines(GROUP, "a", start_ms=None, end_ms=None, after=3, limit=None)
    assert (empty.lines, empty.first_position, empty.last_position) == ([], 3, 3)
    names = [s.stream for s in service.streams(GROUP, prefix=None, by_last_event=True,
                                               descending=True, limit=None)]
    assert names == ["a", "b"]


def test_a_code_url_is_valid_until_it_expires_and_only_under_its_key() -> None:
    signer = CodeUrlSigner(b"k" * 32)
    url = signer.url("ab" * 32, "http://host:9000")
    parts = urlsplit(url)
    assert parts.path == f"/_strato/code/{'ab' * 32}.zip"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert signer.valid("ab" * 32, query["expires"], query["signature"])
    assert not signer.valid("cd" * 32, query["expires"], query["signature"])
    assert not CodeUrlSigner(b"j" * 32).valid("ab" * 32, query["expires"], query["signature"])
    assert not signer.valid("ab" * 32, "not-a-number", query["signature"])
    expired = CodeUrlSigner(b"k" * 32, ttl_s=-10)
    past = {k: v[0] for k, v in parse_qs(urlsplit(expired.url("ab" * 32, "")).query).items()}
    assert int(past["expires"]) < time.time()
    assert not expired.valid("ab" * 32, past["expires"], past["signature"])


class _Layout:
    def path_variables(self, runtime: str, task_root: str,
                       runtime_dir: str | None = None) -> dict[str, str]:
        return {"PATH": "/p", "LAMBDA_RUNTIME_DIR": "/r", "SEEN": f"{runtime} {task_root}"}


def test_lambda_variables_name_the_environment_and_end_with_the_functions_own() -> None:
    version = make_version(environment={"GREETING": "hi"})
    variables = LambdaVariables(_Layout(), "eu-west-1")(
        version, "127.0.0.1:9001", "stream-1", "/var/task", "provisioned-concurrency")
    assert variables["PATH"] == "/p" and variables["LAMBDA_RUNTIME_DIR"] == "/r"
    assert variables["SEEN"] == f"{version.runtime} /var/task"
    assert variables["AWS_REGION"] == variables["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert variables["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:9001"
    assert variables["AWS_LAMBDA_LOG_STREAM_NAME"] == "stream-1"
    assert variables["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"
    assert variables["LAMBDA_TASK_ROOT"] == "/var/task"
    assert variables["_HANDLER"] == version.handler
    assert list(variables)[-1] == "GREETING" and variables["GREETING"] == "hi"
