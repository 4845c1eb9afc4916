"""An in-memory ``LayerStore`` (contract in ``store.layer_base``), for tests. Calls are atomic
under one lock."""

from __future__ import annotations

import threading

from strato.domain.layers import LayerId, LayerVersion
from strato.errors import NotFoundError, RevisionMismatchError


class MemoryLayerStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[LayerId, dict[int, LayerVersion]] = {}
        self._last: dict[LayerId, int] = {}

    def publish(self, record: LayerVersion) -> LayerVersion:
        with self._lock:
            number = self._last.get(record.layer, 0) + 1
            self._last[record.layer] = number
            stored = record.replace(version=number)
            self._versions.setdefault(record.layer, {})[number] = stored
            return stored

    def get(self, layer: LayerId, version: int) -> LayerVersion | None:
        with self._lock:
            return self._versions.get(layer, {}).get(version)

    def put_policy(self, record: LayerVersion, expected_policy_revision: str | None) -> None:
        with self._lock:
            versions = self._versions.get(record.layer, {})
            current = versions.get(record.version)
            if current is None:
                raise NotFoundError(f"layer version {record.layer}:{record.version} is gone")
            if current.policy_revision_id != expected_policy_revision:
                raise RevisionMismatchError("the layer version's policy changed")
            versions[record.version] = current.replace(
                statements=record.statements, policy_revision_id=record.policy_revision_id)

    def delete(self, layer: LayerId, version: int) -> bool:
        with self._lock:
            return self._versions.get(layer, {}).pop(version, None) is not None

    def list_versions(self, layer: LayerId) -> list[LayerVersion]:
        with self._lock:
            versions = self._versions.get(layer, {})
            return [versions[n] for n in sorted(versions, reverse=True)]

    def list_layers(self, account: str) -> list[LayerId]:
        with self._lock:
            return sorted((layer for layer, versions in self._versions.items()
                           if layer.account == account and versions), key=lambda found: found.name)

    def code_references(self) -> set[str]:
        with self._lock:
            return {record.code.sha256_hex for versions in self._versions.values()
                    for record in versions.values()}
