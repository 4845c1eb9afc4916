"""Layers across accounts: a principal of another account publishes layers in its own
account; the platform's functions may use (and its principals read) one of its layer versions
only once that version's policy grants the platform's account ``lambda:GetLayerVersion``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import make_zip
from tests.e2e.conftest import ROLE, StratoServer, client_for, start_server, stop_server
from tests.e2e.hostile import unique
from tests.e2e.test_permission_enforcement import PARTNER, PLATFORM, create_credentials, denied

HANDLER = make_zip({"app.py": "import shared\ndef handler(event, context):\n"
                              "    return shared.VALUE\n"})
LAYER = make_zip({"python/shared.py": "VALUE = 'shared across accounts'\n"})


@dataclass
class Accounts:
    server: StratoServer
    admin: Any  # the platform account's administrator
    partner: Any  # an administrator of another account


@dataclass
class _Caller:
    """What ``denied`` takes: a caller with a ``client``."""

    client: Any


@pytest.fixture(scope="module")
def accounts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Accounts]:
    data_dir = tmp_path_factory.mktemp("layers-accounts") / "data"
    key, secret = create_credentials(data_dir, "partner", PARTNER, None)
    server = start_server(data_dir)
    yield Accounts(server, client_for(server.endpoint),
                   client_for(server.endpoint, access_key=key, secret_key=secret))
    stop_server(server)


def test_another_accounts_layer_needs_its_permission(accounts: Accounts) -> None:
    partner, admin = accounts.partner, accounts.admin
    layer = partner.publish_layer_version(LayerName=unique("partner-layer"),
                                          Content={"ZipFile": LAYER})
    arn = layer["LayerVersionArn"]
    assert f":{PARTNER}:layer:" in arn
    name = unique("uses-partner-layer")

    def create() -> Any:
        return admin.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                                     Handler="app.handler", Code={"ZipFile": HANDLER},
                                     Layers=[arn])

    caller = _Caller(admin)
    message = denied(caller, create)
    assert message.startswith("User: ") and message.endswith(
        f"is not authorized to perform: lambda:GetLayerVersion on resource: {arn} because no "
        "resource-based policy allows the lambda:GetLayerVersion action")
    denied(caller, lambda: admin.get_layer_version_by_arn(Arn=arn))
    with pytest.raises(admin.exceptions.ResourceNotFoundException):
        admin.get_function(FunctionName=name)  # nothing was written
    # The platform's account lists its own layers, not the partner's.
    assert arn not in json.dumps(admin.list_layers()["Layers"])

    partner.add_layer_version_permission(
        LayerName=layer["LayerArn"].rsplit(":", 1)[1], VersionNumber=layer["Version"],
        StatementId="platform", Action="lambda:GetLayerVersion", Principal=PLATFORM)
    assert admin.get_layer_version_by_arn(Arn=arn)["LayerVersionArn"] == arn
    create()
    admin.get_waiter("function_active_v2").wait(FunctionName=name,
                                                WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    response = admin.invoke(FunctionName=name)
    assert json.loads(response["Payload"].read()) == "shared across accounts"
