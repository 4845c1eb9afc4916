"""Concurrency controls: the account's limit, reserved concurrency of functions (and the 429s
it causes) and provisioned concurrency of versions and aliases, driven by boto3 against real
strato servers and compared with AWS's recordings."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import make_zip
from tests.e2e.conftest import ROLE, CreateFunction, StratoServer, start_server, stop_server
from tests.e2e.recordings import (
    assert_recorded,
    check_error,
    error_of,
    function_arn,
    invoke,
    recorded,
    reporter,
)
from tests.support.waiting import wait_until

WAIT = {"Delay": 1, "MaxAttempts": 60}


def _without_retries(endpoint: str) -> Any:
    """A client that reports every 429 (botocore retries throttled calls by default, which
    would hide a throttle behind a later success)."""
    return boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"mode": "standard", "total_max_attempts": 1},
                                      read_timeout=120, parameter_validation=False))


@pytest.fixture(scope="module")
def direct(strato: StratoServer) -> Any:
    """The session server's client without retries."""
    return _without_retries(strato.endpoint)
#: How long a provisioned configuration may take to become READY.
READY_WITHIN_S = 20.0


def _unreserved(client: Any) -> int:
    return int(client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"])


def _throttled_while(client: Any, name: str, busy: Callable[[], bool]) -> dict[str, Any] | None:
    """Invoke ``name`` quickly, one invocation at a time, while ``busy()``, until one is
    throttled; that 429's error response (None if every one ran)."""
    throttles: list[dict[str, Any]] = []

    def throttled_or_idle() -> bool:
        if not busy():
            return True
        try:
            invoke(client, name)
        except ClientError as exc:
            throttles.append(exc.response)
            return True
        return False

    wait_until(throttled_or_idle, "a throttle while the slow invocations hold their leases", interval=0.02)
    return throttles[0] if throttles else None


def _admitted(client: Any, name: str, payload: Any) -> tuple[dict[str, Any], Any]:
    """Invoke, again after each 429 (for up to 10 s): a probe of ``_throttled_while`` may hold
    the lease at the moment this invocation arrives."""
    def attempt() -> tuple[dict[str, Any], Any] | None:
        try:
            return invoke(client, name, payload)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TooManyRequestsException":
                raise
            return None

    # The probe's invocation takes milliseconds.
    return wait_until(attempt, f"{name} to admit the invocation", timeout=10, interval=0.02)


@contextlib.contextmanager
def slow_invocations(client: Any, name: str, count: int, seconds: float) -> Iterator[Callable[[], bool]]:
    """``count`` invocations of ``name`` sleeping ``seconds``, running in the background while
    the block runs; yields "are they still running?". They all succeed.

    Once they all run, the function holds ``count`` leases for ``seconds``: an invocation
    that is throttled while a single other probe runs at a time shows the limit."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures: list[Future[Any]] = [
            pool.submit(_admitted, client, name, {"sleep": seconds}) for _ in range(count)]
        yield lambda: not all(f.done() for f in futures)
        for future in futures:
            assert "FunctionError" not in future.result()[0]


# account settings and reserved concurrency ------------------------------------------------


def test_account_settings_count_reservations(lambda_client: Any, create_function: CreateFunction,
                                             function_name: str) -> None:
    """GetAccountSettings reports the account's 1,000 concurrent executions; a reservation
    takes its size off UnreservedConcurrentExecutions until it is deleted, or the function is."""
    create_function(reporter("v1"), handler="index.handler")
    settings = lambda_client.get_account_settings()
    assert settings["AccountLimit"]["ConcurrentExecutions"] == 1000
    before = _unreserved(lambda_client)
    lambda_client.put_function_concurrency(FunctionName=function_name, ReservedConcurrentExecutions=7)
    assert _unreserved(lambda_client) == before - 7
    lambda_client.put_function_concurrency(FunctionName=function_name, ReservedConcurrentExecutions=3)
    assert _unreserved(lambda_client) == before - 3
    lambda_client.delete_function_concurrency(FunctionName=function_name)
    assert _unreserved(lambda_client) == before
    lambda_client.put_function_concurrency(FunctionName=function_name, ReservedConcurrentExecutions=5)
    lambda_client.delete_function(FunctionName=function_name)
    assert _unreserved(lambda_client) == before


def test_function_concurrency_crud_matches_aws(lambda_client: Any, create_function: CreateFunction,
                                               function_name: str) -> None:
    """Put/Get/DeleteFunctionConcurrency answer as AWS recorded (conc.crud.*, conc.delete), and
    GetFunction shows the reservation (fn.concurrency.in_get_function)."""
    create_function(reporter("v1"), handler="index.handler")
    default = lambda_client.get_function_concurrency(FunctionName=function_name)
    assert_recorded(default, "conc.crud.get_function_concurrency_default", exact=True)
    assert "ReservedConcurrentExecutions" not in default
    assert "Concurrency" not in lambda_client.get_function(FunctionName=function_name)
    assert_recorded(lambda_client.put_function_concurrency(FunctionName=function_name,
                                                           ReservedConcurrentExecutions=0),
                    "conc.crud.put_function_concurrency", exact=True)
    assert_recorded(lambda_client.get_function_concurrency(FunctionName=function_name),
                    "conc.crud.get_function_concurrency_updated", exact=True)
    lambda_client.put_function_concurrency(FunctionName=function_name, ReservedConcurrentExecutions=3)
    got = lambda_client.get_function(FunctionName=function_name)
    assert got["Concurrency"] == recorded("fn.concurrency.in_get_function")["value"]["Concurrency"]
    assert_recorded(lambda_client.delete_function_concurrency(FunctionName=function_name), "conc.delete", exact=True)
    deleted = lambda_client.get_function_concurrency(FunctionName=function_name)
    assert_recorded(deleted, "conc.crud.get_function_concurrency_deleted", exact=True)
    assert "ReservedConcurrentExecutions" not in deleted


def test_zero_reserved_concurrency_throttles_every_invoke(
    lambda_client: Any, direct: Any, create_function: CreateFunction, function_name: str
) -> None:
    """With 0 reserved, every synchronous invoke is a 429 TooManyRequestsException with Reason
    ReservedFunctionConcurrentInvocationLimitExceeded (conc.throttled_zero); deleting the
    reservation lets it run again."""
    create_function(reporter("v1"), handler="index.handler")
    lambda_client.put_function_concurrency(FunctionName=function_name, ReservedConcurrentExecutions=0)
    for _ in range(3):
        check_error(direct, "conc.throttled_zero", lambda: invoke(direct, function_name))
    lambda_client.delete_function_concurrency(FunctionName=function_name)
    assert invoke(lambda_client, function_name)[1]["label"] == "v1"


def test_reserved_one_throttles_a_second_concurrent_invoke(
    lambda_client: Any, direct: Any, create_function: CreateFunction, function_name: str
) -> None:
    """With 1 reserved, an invoke while another one runs is a 429 with Reason
    ReservedFunctionConcurrentInvocationLimitExceeded (conc.throttled_busy); the running one
    finishes, and afterwards invokes run again."""
    create_function(reporter("v1"), handler="index.handler")
    lambda_client.put_function_concurrency(FunctionName=function_name, ReservedConcurrentExecutions=1)
    with slow_invocations(direct, function_name, 1, 1.5) as busy:
        throttled = _throttled_while(direct, function_name, busy)
    assert throttled is not None, "no invocation was throttled"
    expected = recorded("conc.throttled_busy")
    assert (throttled["Error"]["Code"], throttled["ResponseMetadata"]["HTTPStatusCode"],
            throttled["Error"]["Message"], throttled["Reason"]) == (
        expected["error_code"], expected["http_status"], expected["message"], expected["reason"])
    assert invoke(lambda_client, function_name)[1]["label"] == "v1"


def test_a_reservation_must_leave_100_unreserved(lambda_client: Any, create_function: CreateFunction,
                                                 function_name: str) -> None:
    """A reservation leaving less than 100 unreserved is refused with AWS's message and changes
    nothing; one leaving exactly 100 is accepted."""
    create_function(reporter("v1"), handler="index.handler")
    unreserved = _unreserved(lambda_client)
    check_error(lambda_client, "conc.above_account_limit", lambda: lambda_client.put_function_concurrency(
        FunctionName=function_name, ReservedConcurrentExecutions=unreserved - 99))
    assert "ReservedConcurrentExecutions" not in lambda_client.get_function_concurrency(FunctionName=function_name)
    assert _unreserved(lambda_client) == unreserved
    lambda_client.put_function_concurrency(FunctionName=function_name, ReservedConcurrentExecutions=unreserved - 100)
    assert _unreserved(lambda_client) == 100
    lambda_client.delete_function_concurrency(FunctionName=function_name)
    assert _unreserved(lambda_client) == unreserved


def test_reserved_concurrency_is_for_functions_only(lambda_client: Any, create_function: CreateFunction,
                                                    function_name: str) -> None:
    """A qualified ARN is refused (conc.qualified_arn), an unknown function is not found
    (conc.not_found); nothing is reserved."""
    create_function(reporter("v1"), handler="index.handler", Publish=True)
    unreserved = _unreserved(lambda_client)
    for qualified in (function_arn(function_name, "1"), function_arn(function_name, "$LATEST")):
        check_error(lambda_client, "conc.qualified_arn", partial(lambda_client.put_function_concurrency,
                                                              FunctionName=qualified, ReservedConcurrentExecutions=1))
    check_error(lambda_client, "conc.not_found", lambda: lambda_client.put_function_concurrency(
        FunctionName="doesnotexist", ReservedConcurrentExecutions=1))
    assert _unreserved(lambda_client) == unreserved


# the account's limit -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StratoServer]:
    """A server whose account may run 2 executions at once."""
    server = start_server(tmp_path_factory.mktemp("small-account") / "data",
                          env={"STRATO_ACCOUNT_CONCURRENCY": "2"})
    yield server
    stop_server(server)


def test_the_account_limit_throttles_unreserved_functions(small_account: StratoServer) -> None:
    """With an account limit of 2, a third concurrent invoke is a 429 with Reason
    ConcurrentInvocationLimitExceeded; no reservation is possible (it would leave less than
    100 unreserved)."""
    client = _without_retries(small_account.endpoint)
    settings = client.get_account_settings()["AccountLimit"]
    assert (settings["ConcurrentExecutions"], settings["UnreservedConcurrentExecutions"]) == (2, 2)
    client.create_function(FunctionName="busy", Runtime="python3.11", Role=ROLE, Handler="index.handler",
                           Code={"ZipFile": make_zip(reporter("v1"))})
    client.get_waiter("function_active_v2").wait(FunctionName="busy", WaiterConfig=WAIT)
    check_error(client, "conc.above_account_limit", lambda: client.put_function_concurrency(
        FunctionName="busy", ReservedConcurrentExecutions=1))
    with slow_invocations(client, "busy", 2, 1.5) as busy:
        throttled = _throttled_while(client, "busy", busy)
    assert throttled is not None, "no invocation was throttled"
    assert (throttled["Error"]["Code"], throttled["ResponseMetadata"]["HTTPStatusCode"],
            throttled["Error"]["Message"], throttled["Reason"]) == (
        "TooManyRequestsException", 429, "Rate Exceeded.", "ConcurrentInvocationLimitExceeded")
    assert invoke(client, "busy")[1]["label"] == "v1"


# provisioned concurrency -------------------------------------------------------------------


def _ready(client: Any, name: str, qualifier: str) -> dict[str, Any]:
    """GetProvisionedConcurrencyConfig once it says READY (within ``READY_WITHIN_S``)."""
    def ready() -> dict[str, Any] | None:
        config = dict(client.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier))
        return config if config["Status"] == "READY" else None

    return wait_until(ready, f"{name}:{qualifier} to be READY", timeout=READY_WITHIN_S, interval=0.1)


def _tail(response: dict[str, Any]) -> list[str]:
    return base64.b64decode(response["LogResult"]).decode().splitlines()


def test_provisioned_concurrency_on_a_version(lambda_client: Any, create_function: CreateFunction,
                                              function_name: str) -> None:
    """PutProvisionedConcurrencyConfig on version 1 answers 202 IN_PROGRESS and becomes READY
    with 2 allocated; invocations of the version run initialised environments
    (``provisioned-concurrency``, no Init Duration), a burst beyond them spills over to
    on-demand environments, and ``$LATEST`` stays on-demand. Delete is a 204, then not found."""
    create_function(reporter("v1"), handler="index.handler", Publish=True)
    lambda_client.get_waiter("function_active_v2").wait(FunctionName=function_name, Qualifier="1",
                                                        WaiterConfig=WAIT)
    put = lambda_client.put_provisioned_concurrency_config(FunctionName=function_name, Qualifier="1",
                                                           ProvisionedConcurrentExecutions=2)
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert (put["Status"], put["RequestedProvisionedConcurrentExecutions"]) == ("IN_PROGRESS", 2)
    ready = _ready(lambda_client, function_name, "1")
    assert (ready["Status"], ready["RequestedProvisionedConcurrentExecutions"],
            ready["AllocatedProvisionedConcurrentExecutions"],
            ready["AvailableProvisionedConcurrentExecutions"]) == ("READY", 2, 2, 2)
    listed = lambda_client.list_provisioned_concurrency_configs(FunctionName=function_name)
    assert [(c["FunctionArn"], c["Status"], c["AllocatedProvisionedConcurrentExecutions"])
            for c in listed["ProvisionedConcurrencyConfigs"]] == [(function_arn(function_name, "1"), "READY", 2)]

    response, payload = invoke(lambda_client, function_name, Qualifier="1", LogType="Tail")
    assert (response["ExecutedVersion"], payload["initialization_type"]) == ("1", "provisioned-concurrency")
    report = _tail(response)[-1]
    assert report.startswith("REPORT RequestId:") and "Init Duration" not in report
    assert invoke(lambda_client, function_name)[1]["initialization_type"] == "on-demand"

    with ThreadPoolExecutor(max_workers=4) as pool:
        burst = list(pool.map(lambda _: invoke(lambda_client, function_name, {"sleep": 1}, Qualifier="1"),
                              range(4)))
    assert all(r["StatusCode"] == 200 and "FunctionError" not in r for r, _ in burst)
    kinds = sorted(p["initialization_type"] for _, p in burst)
    assert kinds == ["on-demand", "on-demand", "provisioned-concurrency", "provisioned-concurrency"]

    deleted = lambda_client.delete_provisioned_concurrency_config(FunctionName=function_name, Qualifier="1")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error_of(lambda: lambda_client.get_provisioned_concurrency_config(
        FunctionName=function_name, Qualifier="1"))[:2] == ("ProvisionedConcurrencyConfigNotFoundException", 404)
    assert lambda_client.list_provisioned_concurrency_configs(
        FunctionName=function_name)["ProvisionedConcurrencyConfigs"] == []


def test_provisioned_concurrency_on_an_alias(lambda_client: Any, create_function: CreateFunction,
                                             function_name: str) -> None:
    """A configuration on an alias becomes READY, is listed under the alias ARN, and serves
    invocations through the alias."""
    create_function(reporter("v1"), handler="index.handler", Publish=True)
    lambda_client.get_waiter("function_active_v2").wait(FunctionName=function_name, Qualifier="1",
                                                        WaiterConfig=WAIT)
    lambda_client.create_alias(FunctionName=function_name, Name="live", FunctionVersion="1")
    put = lambda_client.put_provisioned_concurrency_config(FunctionName=function_name, Qualifier="live",
                                                           ProvisionedConcurrentExecutions=1)
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    ready = _ready(lambda_client, function_name, "live")
    assert (ready["Status"], ready["AllocatedProvisionedConcurrentExecutions"]) == ("READY", 1)
    listed = lambda_client.list_provisioned_concurrency_configs(FunctionName=function_name)
    assert [c["FunctionArn"] for c in listed["ProvisionedConcurrencyConfigs"]] == [
        function_arn(function_name, "live")]
    response, payload = invoke(lambda_client, function_name, Qualifier="live", LogType="Tail")
    assert (response["ExecutedVersion"], payload["initialization_type"]) == ("1", "provisioned-concurrency")
    assert payload["invoked_function_arn"] == function_arn(function_name, "live")
    assert "Init Duration" not in _tail(response)[-1]


def test_provisioned_concurrency_bad_input(lambda_client: Any, create_function: CreateFunction,
                                           function_name: str) -> None:
    """``$LATEST``, more than the function's reservation and unknown qualifiers are refused
    with AWS's errors; Get and Delete of a configuration that does not exist are 404s. No
    configuration is made."""
    create_function(reporter("v1"), handler="index.handler", Publish=True)

    def put(qualifier: str, count: int) -> Callable[[], Any]:
        return lambda: lambda_client.put_provisioned_concurrency_config(
            FunctionName=function_name, Qualifier=qualifier, ProvisionedConcurrentExecutions=count)

    assert error_of(put("$LATEST", 1)) == (
        "InvalidParameterValueException", 400,
        "Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
    lambda_client.put_function_concurrency(FunctionName=function_name, ReservedConcurrentExecutions=1)
    code, status, _ = error_of(put("1", 2))
    assert (code, status) == ("InvalidParameterValueException", 400)
    lambda_client.delete_function_concurrency(FunctionName=function_name)
    assert error_of(put("7", 1)) == ("ResourceNotFoundException", 404,
                                     f"Function not found: {function_arn(function_name, '7')}")
    assert error_of(put("no-such-alias", 1))[:2] == ("ResourceNotFoundException", 404)
    for call in (lambda_client.get_provisioned_concurrency_config,
                 lambda_client.delete_provisioned_concurrency_config):
        assert error_of(partial(call, FunctionName=function_name, Qualifier="1"))[:2] == (
            "ProvisionedConcurrencyConfigNotFoundException", 404)
    assert lambda_client.list_provisioned_concurrency_configs(
        FunctionName=function_name)["ProvisionedConcurrencyConfigs"] == []

