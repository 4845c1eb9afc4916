"""Resolving a qualifier on the invoke path: versions, aliases and weighted routing."""

from __future__ import annotations

import math
import random
from types import MappingProxyType

import pytest

from strato.domain.models import LATEST, Alias
from strato.services.registry import FunctionEntry, FunctionRegistry, pick_version, resolve
from tests.support.store_contracts import make_version


def _entry(*aliases: Alias) -> FunctionEntry:
    latest = make_version("fn")
    versions = {str(n): make_version("fn", version=str(n)) for n in (1, 2, 3)}
    return FunctionEntry(latest, MappingProxyType(versions),
                         MappingProxyType({a.name: a for a in aliases}))


def test_unqualified_and_latest_resolve_to_latest() -> None:
    entry = _entry()
    assert resolve(entry, None) is entry.latest
    assert resolve(entry, LATEST) is entry.latest


def test_versions_and_plain_aliases_resolve_to_their_version() -> None:
    entry = _entry(Alias("fn", "live", "2", "r"), Alias("fn", "dev", LATEST, "r"))
    assert resolve(entry, "1") is entry.versions["1"]
    assert resolve(entry, "live") is entry.versions["2"]
    assert resolve(entry, "dev") is entry.latest


def test_unknown_qualifiers_resolve_to_nothing() -> None:
    entry = _entry(Alias("fn", "gone", "9", "r"))
    assert resolve(entry, "7") is None
    assert resolve(entry, "nope") is None
    assert resolve(entry, "gone") is None  # its version no longer exists


def test_weighted_alias_routes_by_the_draw() -> None:
    alias = Alias("fn", "canary", "1", "r", additional_weights={"2": 0.1})
    assert pick_version(alias, 0.0) == "2"
    assert pick_version(alias, 0.0999) == "2"
    assert pick_version(alias, 0.1) == "1"
    assert pick_version(alias, 0.9999) == "1"
    entry = _entry(alias)
    assert resolve(entry, "canary", draw=0.05) is entry.versions["2"]
    assert resolve(entry, "canary", draw=0.5) is entry.versions["1"]


@pytest.mark.parametrize("weight", [0.0, 0.1, 0.5, 1.0])
def test_weighted_alias_split_is_within_binomial_bounds(weight: float) -> None:
    random.seed(20261206)
    entry = _entry(Alias("fn", "canary", "1", "r", additional_weights={"2": weight}))
    trials = 20_000
    hits = sum(resolve(entry, "canary") is entry.versions["2"] for _ in range(trials))
    bound = 4.5 * math.sqrt(trials * weight * (1 - weight))
    assert abs(hits - trials * weight) <= bound


def test_registry_put_replaces_and_removes() -> None:
    registry = FunctionRegistry()
    first = _entry()
    assert registry.put("fn", first) is None
    assert registry.get("fn") is first
    assert registry.put("fn", None) is first
    assert registry.get("fn") is None and len(registry) == 0
