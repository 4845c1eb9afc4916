"""The repository of layer versions (``domain.layers``): one Protocol, two backends
(``memory_layers`` for tests, ``sqlite_layers`` for a server).

Contracts:

- Version numbers of a layer are assigned by ``publish``, one higher than the highest ever
  given to that layer, and never reused (deleting every version does not reset them).
- Writes are atomic; a ``put`` with an ``expected_policy_revision`` that is not the stored
  one changes nothing and raises RevisionMismatchError.
- Listings are plain data: filtering by runtime or architecture is the service's.
"""

from __future__ import annotations

from typing import Protocol

from strato.domain.layers import LayerId, LayerVersion


class LayerStore(Protocol):
    def publish(self, record: LayerVersion) -> LayerVersion:
        """Store ``record`` as the layer's next version (its ``version`` is ignored); returns
        it with the number it was given."""

    def get(self, layer: LayerId, version: int) -> LayerVersion | None:
        """The version, or None if it was never published or was deleted."""

    def put_policy(self, record: LayerVersion, expected_policy_revision: str | None) -> None:
        """Replace the stored version's policy (statements and policy revision) by
        ``record``'s. Raises NotFoundError if the version is gone, RevisionMismatchError if
        its policy revision is not ``expected_policy_revision``."""

    def delete(self, layer: LayerId, version: int) -> bool:
        """Delete one version; False if there was none (idempotent)."""

    def list_versions(self, layer: LayerId) -> list[LayerVersion]:
        """Every existing version of the layer, newest first."""

    def list_layers(self, account: str) -> list[LayerId]:
        """The layers of ``account`` that have at least one version, by name."""

    def code_references(self) -> set[str]:
        """The sha256 hex of every existing layer version's package (for code-store GC)."""
