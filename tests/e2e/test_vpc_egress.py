"""VpcConfig: stored and returned as AWS does, and mapped to no egress at all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_zip
from tests.e2e.conftest import ROLE, StratoServer, client_for, start_server, stop_server
from tests.e2e.hostile import internet

INTERFACES = (
    "import socket\n"
    "def handler(event, context):\n"
    "    return sorted(name for _, name in socket.if_nameindex())\n"
)
VPC = {"SubnetIds": ["subnet-0abc"], "SecurityGroupIds": ["sg-0abc"]}


@pytest.fixture(scope="module")
def internet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StratoServer]:
    server = start_server(tmp_path_factory.mktemp("vpc"),
                          env=internet("stv", "10.215.0.0/16"))
    yield server
    stop_server(server)


def _create(client: Any, name: str, **extra: Any) -> dict[str, Any]:
    created = client.create_function(
        FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": INTERFACES})}, **extra)
    client.get_waiter("function_active_v2").wait(FunctionName=name)
    return dict(created)


def _interfaces(client: Any, name: str) -> list[str]:
    response = client.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in response, response["Payload"].read()
    return list(json.loads(response["Payload"].read()))


def test_functions_outside_a_vpc_get_a_network_interface(internet_server: StratoServer) -> None:
    client = client_for(internet_server.endpoint)
    _create(client, "outside")
    assert _interfaces(client, "outside") == ["eth0", "lo"]
    assert "VpcConfig" not in client.get_function_configuration(FunctionName="outside")


def test_a_function_in_a_vpc_has_loopback_only(internet_server: StratoServer) -> None:
    client = client_for(internet_server.endpoint)
    created = _create(client, "inside", VpcConfig=VPC)
    assert created["VpcConfig"]["SubnetIds"] == VPC["SubnetIds"]
    assert created["VpcConfig"]["SecurityGroupIds"] == VPC["SecurityGroupIds"]
    assert _interfaces(client, "inside") == ["lo"]


def test_moving_a_function_out_of_its_vpc_gives_it_egress(
        internet_server: StratoServer) -> None:
    client = client_for(internet_server.endpoint)
    _create(client, "mover", VpcConfig=VPC)
    assert _interfaces(client, "mover") == ["lo"]
    client.update_function_configuration(
        FunctionName="mover", VpcConfig={"SubnetIds": [], "SecurityGroupIds": []})
    client.get_waiter("function_updated_v2").wait(FunctionName="mover")
    assert "VpcConfig" not in client.get_function_configuration(FunctionName="mover")
    assert _interfaces(client, "mover") == ["eth0", "lo"]


def test_vpc_config_survives_a_restart(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        _create(client_for(server.endpoint), "kept", VpcConfig=VPC)
    finally:
        stop_server(server)
    server = start_server(tmp_path)
    try:
        got = client_for(server.endpoint).get_function_configuration(FunctionName="kept")
        assert got["VpcConfig"]["SubnetIds"] == VPC["SubnetIds"]
    finally:
        stop_server(server)
