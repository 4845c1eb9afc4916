"""Layers inside execution environments, in both sandbox tiers: a module imported from a
layer's ``python`` directory, an executable of its ``bin`` on PATH, later layers winning, and
a function that keeps working once its layer version is deleted.

The namespaces tier shows the merged layers at /opt; the fallback tier has no /opt and names
the merged tree's host path in the same search paths (docs/layers.md)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import make_zip
from tests.e2e.hostile import TIERS, TierServer, create, serve_tier, succeed, unique
from tests.e2e.recordings import recorded

HANDLER = {"app.py": (
    "import os, subprocess, sys\n"
    "def handler(event, context):\n"
    "    import layered, shared\n"
    "    hello = subprocess.run(['hello'], capture_output=True, text=True).stdout.strip()\n"
    "    return {'layered': layered.VALUE, 'shared': shared.VALUE, 'hello': hello,\n"
    "            'path': os.environ['PATH'], 'ld': os.environ.get('LD_LIBRARY_PATH', ''),\n"
    "            'sys_path': sys.path, 'layered_file': layered.__file__}\n"
)}


def layer_zip(files: dict[str, str], executable: tuple[str, ...] = ()) -> bytes:
    return make_zip(files, modes={name: 0o755 for name in executable})


@pytest.fixture(scope="module", params=TIERS)
def tier(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[TierServer]:
    with serve_tier(request.param, tmp_path_factory) as server:
        yield server


def publish(client: Any, files: dict[str, str], executable: tuple[str, ...] = ()) -> str:
    response = client.publish_layer_version(
        LayerName=f"layer-{uuid.uuid4().hex[:8]}",
        Content={"ZipFile": layer_zip(files, executable)})
    arn: str = response["LayerVersionArn"]
    return arn


def test_layers_are_merged_in_order_under_opt(tier: TierServer) -> None:
    client = tier.client
    first = publish(client, {
        "python/layered.py": "VALUE = 'first'\n",
        "python/shared.py": "VALUE = 'first'\n",
        "bin/hello": "#!/bin/sh\necho first\n",
    }, executable=("bin/hello",))
    second = publish(client, {
        "python/shared.py": "VALUE = 'second'\n",
        "bin/hello": "#!/bin/sh\necho second\n",
    }, executable=("bin/hello",))
    name = unique("layers")
    create(client, name, HANDLER, Layers=[first, second])
    result = succeed(client, name)
    # The first layer's files stay; where both have a file, the later layer's wins.
    assert (result["layered"], result["shared"], result["hello"]) == ("first", "second", "second")
    opt = result["layered_file"].removesuffix("/python/layered.py")
    expected = recorded("layers.merge_order")["value"]
    assert expected["later_wins"]
    if tier.tier == "namespaces":
        assert opt == "/opt"
    else:  # no /opt without a root of the environment's own: the host path of the tree
        assert opt.startswith(str(tier.server.data_dir))
    assert expected["PATH"].replace("/opt", opt) in result["path"].split(":")
    assert expected["LD_LIBRARY_PATH"].replace("/opt", opt) in result["ld"].split(":")
    for entry in expected["python"]:
        assert entry.replace("/opt", opt).replace("<<runtime>>", "python3.11") in result["sys_path"]


def test_a_function_keeps_a_deleted_layer_version(tier: TierServer) -> None:
    client = tier.client
    arn = publish(client, {"python/layered.py": "VALUE = 'kept'\n",
                           "python/shared.py": "VALUE = 'kept'\n",
                           "bin/hello": "#!/bin/sh\necho kept\n"}, executable=("bin/hello",))
    name = unique("kept")
    create(client, name, HANDLER, Layers=[arn])
    assert succeed(client, name)["layered"] == "kept"
    layer_name, version = arn.rsplit(":", 2)[1:]
    client.delete_layer_version(LayerName=layer_name, VersionNumber=int(version))
    # Deleting a function collects unused packages; a configuration change starts new
    # environments, which must still find the layer.
    doomed = unique("doomed")
    create(client, doomed, HANDLER)
    client.delete_function(FunctionName=doomed)
    client.update_function_configuration(FunctionName=name, Environment={"Variables": {"MARK": "1"}})
    client.get_waiter("function_updated_v2").wait(FunctionName=name)
    assert succeed(client, name)["hello"] == "kept"
