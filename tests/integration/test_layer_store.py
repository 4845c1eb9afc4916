"""The layer store's contract (``store.layer_base``), run against both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from strato.domain.layers import LayerId, LayerVersion
from strato.domain.models import CodeRef
from strato.domain.permissions import PermissionStatement, PrincipalKind, StatementPrincipal
from strato.errors import NotFoundError, RevisionMismatchError
from strato.store.layer_base import LayerStore
from strato.store.memory_layers import MemoryLayerStore
from strato.store.sqlite_layers import SqliteLayerStore

LAYER = LayerId("000000000000", "tools")


def record(sha: str = "a" * 64, layer: LayerId = LAYER) -> LayerVersion:
    return LayerVersion(layer=layer, version=0, code=CodeRef(sha, 10), unzipped_size=20,
                        created=datetime(2025, 1, 2, tzinfo=UTC), description="d",
                        license_info="MIT", compatible_runtimes=("python3.12",),
                        compatible_architectures=("x86_64",))


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LayerStore]:
    if request.param == "memory":
        yield MemoryLayerStore()
        return
    sqlite = SqliteLayerStore(tmp_path / "layers.db")
    yield sqlite
    sqlite.close()


def test_versions_are_numbered_and_never_reused(store: LayerStore) -> None:
    assert [store.publish(record()).version for _ in range(2)] == [1, 2]
    assert store.delete(LAYER, 1) and store.delete(LAYER, 2)
    assert not store.delete(LAYER, 2)
    assert store.list_versions(LAYER) == [] and store.list_layers(LAYER.account) == []
    third = store.publish(record())
    assert third.version == 3
    assert store.get(LAYER, 3) == third
    assert store.get(LAYER, 1) is None


def test_listings_and_references(store: LayerStore) -> None:
    store.publish(record("a" * 64))
    store.publish(record("b" * 64))
    other = LayerId("111122223333", "other")
    store.publish(record("c" * 64, layer=other))
    assert [v.version for v in store.list_versions(LAYER)] == [2, 1]
    assert store.list_layers(LAYER.account) == [LAYER]
    assert store.list_layers(other.account) == [other]
    assert store.code_references() == {"a" * 64, "b" * 64, "c" * 64}


def test_policy_is_replaced_under_its_revision(store: LayerStore) -> None:
    stored = store.publish(record())
    statement = PermissionStatement("s", "lambda:GetLayerVersion",
                                    StatementPrincipal(PrincipalKind.ANY, "*"))
    granted = stored.replace(statements=(statement,), policy_revision_id="r1")
    store.put_policy(granted, None)
    assert store.get(LAYER, 1) == granted
    with pytest.raises(RevisionMismatchError):
        store.put_policy(granted.replace(statements=()), None)
    store.delete(LAYER, 1)
    with pytest.raises(NotFoundError):
        store.put_policy(granted, "r1")
